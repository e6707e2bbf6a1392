"""`eventsTrack` and `funnel` through the API: per-event rejections with global ids, who may call
(roles, API key scopes), the 500-event limit, one audit entry per call, and funnel arguments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import Role
from apps.analytics import cache
from apps.analytics.models import Event
from apps.audit.models import AuditEntry
from apps.customers.models import Customer
from tests.apps.analytics.test_events import _key
from tests.apps.orders import shop
from tests.conftest import gid, token_for

TRACK = """mutation($e: [EventInput!]!) { eventsTrack(events: $e) { accepted rejected
  errors { index code message } userErrors { field code message } } }"""
FUNNEL = """query($steps: [String!], $h: Int, $from: Date, $to: Date) {
  funnel(steps: $steps, windowHours: $h, from: $from, to: $to) {
    from to windowHours timeZone steps { type visitors conversion stepConversion dropOff } } }"""


def _now(minutes: int = 30) -> str:
    return (timezone.now() - timedelta(minutes=minutes)).isoformat()


def test_events_track_with_global_ids(gql, alpha):
    with tenant_context(alpha.tenant):
        product = shop.variant("5.00").product
        customer = Customer.objects.create(email="gql-events@example.com")
    batch = [
        {
            "type": "product_viewed",
            "time": _now(),
            "sessionId": "s",
            "product": gid(alpha, "Product", product.pk),
        },
        {
            "type": "product_viewed",
            "time": _now(),
            "sessionId": "s",
            "product": gid(alpha, "Customer", customer.pk),
        },
        {
            "type": "added_to_cart",
            "time": _now(),
            "customer": gid(alpha, "Customer", customer.pk),
            "properties": {"qty": 2},
        },
        {"type": "page_viewed", "time": "2026-03-01T10:00:00", "sessionId": "s"},
        {"type": "page_viewed", "time": _now(), "sessionId": "s", "properties": "text"},
    ]
    response = gql.post(TRACK, {"e": batch}, host=alpha.host, token=shop.staff(alpha))
    assert response.errors == [], response.body
    payload = response.data["eventsTrack"]
    assert (payload["accepted"], payload["rejected"], payload["userErrors"]) == (2, 3, [])
    assert [(e["index"], e["code"]) for e in payload["errors"]] == [
        (1, "UNKNOWN_PRODUCT"),
        (3, "INVALID_TIME"),
        (4, "INVALID_PROPERTIES"),
    ]
    with tenant_context(alpha.tenant):
        assert sorted(
            Event.objects.values_list("type", "product_id", "customer_id", "properties")
        ) == [
            ("added_to_cart", None, customer.pk, {"qty": 2}),
            ("product_viewed", product.pk, None, {}),
        ]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.OWNER, True),
        (Role.ADMIN, True),
        (Role.STAFF, True),
        (Role.ANALYST, False),
        (Role.VIEWER, False),
    ],
)
def test_events_track_by_role(gql, alpha, role, allowed):
    response = gql.post(
        TRACK,
        {"e": [{"type": "page_viewed", "time": _now(), "sessionId": "s"}]},
        host=alpha.host,
        token=token_for(alpha.email(role), alpha.tenant),
    )
    if allowed:
        assert response.data["eventsTrack"]["accepted"] == 1, response.body
    else:
        assert response.codes == ["FORBIDDEN"]


def test_events_track_with_api_keys(gql, alpha):
    event = {"e": [{"type": "page_viewed", "time": _now(), "sessionId": "s"}]}
    with_events = gql.post(TRACK, event, host=alpha.host, api_key=_key(alpha, scopes=("events",)))
    assert with_events.data["eventsTrack"]["accepted"] == 1, with_events.body
    writer = gql.post(TRACK, event, host=alpha.host, api_key=_key(alpha, scopes=("read", "write")))
    assert writer.codes == ["FORBIDDEN"] and "'events'" in writer.errors[0]["message"]
    # The events scope is for ingestion only: no other mutation.
    other = gql.post(
        'mutation { customerCreate(input: {email: "k@example.com"}) { userErrors { code } } }',
        host=alpha.host,
        api_key=_key(alpha, scopes=("events",)),
    )
    assert other.codes == ["FORBIDDEN"]


def test_more_than_500_events_store_nothing(gql, alpha):
    batch = [{"type": "page_viewed", "time": _now(), "sessionId": "s"}] * 501
    response = gql.post(TRACK, {"e": batch}, host=alpha.host, token=shop.staff(alpha))
    payload = response.data["eventsTrack"]
    assert [e["code"] for e in payload["userErrors"]] == ["TOO_MANY_EVENTS"]
    assert payload["accepted"] == 0
    with tenant_context(alpha.tenant):
        assert Event.objects.count() == 0
        assert not AuditEntry.objects.filter(action="events.track").exists()


def test_one_audit_entry_per_call_with_the_counts(gql, alpha):
    batch = [{"type": "page_viewed", "time": _now(), "sessionId": "s"}] * 3 + [
        {"type": "X", "time": _now()}
    ]
    gql.post(
        TRACK,
        {"e": batch},
        host=alpha.host,
        token=shop.staff(alpha),
        headers={"X-Request-ID": "ev-audit"},
    )
    with tenant_context(alpha.tenant):
        (entry,) = AuditEntry.objects.filter(request_id="ev-audit")
    assert (entry.action, entry.changes, entry.actor_email) == (
        "events.track",
        {"accepted": 3, "rejected": 1},
        alpha.email("staff"),
    )


def test_funnel_through_the_api(gql, alpha):
    now = timezone.now() - timedelta(hours=2)
    batch = [
        {"type": kind, "time": (now + timedelta(minutes=n)).isoformat(), "sessionId": session}
        for session, kinds in (
            ("a", ["product_viewed", "added_to_cart"]),
            ("b", ["product_viewed"]),
        )
        for n, kind in enumerate(kinds)
    ]
    gql.post(TRACK, {"e": batch}, host=alpha.host, token=shop.staff(alpha))
    with tenant_context(alpha.tenant):
        cache.bump()  # what the commit does
    response = gql.post(
        FUNNEL, {}, host=alpha.host, token=token_for(alpha.email("analyst"), alpha.tenant)
    )
    assert response.errors == [], response.body
    funnel = response.data["funnel"]
    assert (funnel["windowHours"], funnel["timeZone"]) == (24, alpha.tenant.time_zone)
    assert funnel["steps"] == [
        {
            "type": "product_viewed",
            "visitors": 2,
            "conversion": "1.0000",
            "stepConversion": "1.0000",
            "dropOff": 0,
        },
        {
            "type": "added_to_cart",
            "visitors": 1,
            "conversion": "0.5000",
            "stepConversion": "0.5000",
            "dropOff": 1,
        },
        {
            "type": "checkout_started",
            "visitors": 0,
            "conversion": "0.0000",
            "stepConversion": "0.0000",
            "dropOff": 1,
        },
        {
            "type": "purchased",
            "visitors": 0,
            "conversion": "0.0000",
            "stepConversion": None,
            "dropOff": 0,
        },
    ]


def test_viewers_see_no_funnels(gql, alpha):
    response = gql.post(
        FUNNEL, {}, host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    )
    assert response.codes == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"steps": ["product_viewed"]}, "BAD_STEPS"),
        ({"h": 0}, "BAD_WINDOW"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "BAD_RANGE"),
        ({"from": "2016-01-01", "to": "2026-01-01"}, "BAD_RANGE"),
    ],
)
def test_funnel_bad_arguments(gql, alpha, variables, reason):
    response = gql.post(
        FUNNEL, variables, host=alpha.host, token=token_for(alpha.email("analyst"), alpha.tenant)
    )
    assert response.codes == ["BAD_REQUEST"]
    assert response.errors[0]["extensions"]["reason"] == reason
