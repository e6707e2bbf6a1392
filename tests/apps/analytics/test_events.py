"""Event ingestion: every rule rejects the event that breaks it (with its index and reason) while
the others are stored; ids are looked up once per kind; EventDay equals a direct count of the
events in the tenant's time zone, after any batches and after a zone change; and `POST
/api/events` (JSON array, NDJSON, limits, API keys) through Django's ASGI handling."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts import services as account_services
from apps.accounts.models import Role
from apps.analytics import events
from apps.analytics.models import Event, EventDay, Rollup
from apps.customers.models import Customer
from tests.apps.orders import shop
from tests.conftest import token_for

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
AT = "2026-03-10T11:00:00+00:00"


def _ingest(fixture, batch, *, zone: str | None = None, now: datetime = NOW) -> events.Outcome:
    tenant = copy.copy(fixture.tenant)
    if zone:
        tenant.time_zone = zone
    return events.ingest(tenant=tenant, events=enumerate(batch), now=now)


def _stored() -> list[tuple]:
    return list(
        Event.objects.order_by("id").values_list(
            "type", "time", "session_id", "customer_id", "product_id", "order_id", "properties"
        )
    )


def _event_days() -> dict[tuple, int]:
    return {(d.day, d.type, d.product_id): d.events for d in EventDay.objects.all()}


def _direct_count(zone: str) -> dict[tuple, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (time AT TIME ZONE %s)::date, type, product_id, count(*) FROM analytics_event "
            "GROUP BY 1, 2, 3",
            [zone],
        )
        return {(day, kind, product): count for day, kind, product, count in cursor.fetchall()}


@pytest.fixture
def shop_rows(alpha):
    """A customer, a product and an order of alpha, and ids that exist nowhere in alpha."""
    with tenant_context(alpha.tenant):
        variant = shop.variant("10.00")
        order = shop.place(alpha, [(variant, 1)])
        customer = Customer.objects.create(email="ev@example.com")
        yield {
            "customer": customer.pk,
            "product": variant.product_id,
            "order": order.pk,
            "missing": 10**12,
        }


def test_each_rule_rejects_its_event_and_keeps_the_others(alpha, shop_rows):
    c, p, o, missing = (
        shop_rows["customer"],
        shop_rows["product"],
        shop_rows["order"],
        shop_rows["missing"],
    )
    ok = {"type": "product_viewed", "time": AT, "sessionId": "s-1"}
    batch = [
        {**ok, "productId": p},  # 0: stored
        [1, 2],  # 1
        {**ok, "customer_id": c},  # 2: a field of another spelling
        {**ok, "type": "Product Viewed"},  # 3
        {**ok, "type": "a" * 65},  # 4
        {"type": "page_viewed", "sessionId": "s-1"},  # 5: no time
        {**ok, "time": "yesterday"},  # 6
        {**ok, "time": "2026-03-10T11:00:00"},  # 7: no offset
        {**ok, "time": (NOW + timedelta(minutes=6)).isoformat()},  # 8
        {
            **ok,
            "time": (NOW + timedelta(minutes=4)).isoformat(),
        },  # 9: stored (within the 5 minutes)
        {**ok, "time": (NOW - timedelta(days=401)).isoformat()},  # 10
        {**ok, "sessionId": "s" * 129},  # 11
        {**ok, "sessionId": "bad\nsession"},  # 12
        {"type": "page_viewed", "time": AT},  # 13: nobody
        {**ok, "customerId": str(c)},  # 14
        {**ok, "productId": True},  # 15
        {**ok, "properties": ["a"]},  # 16
        {**ok, "properties": {f"k{i}": i for i in range(51)}},  # 17
        {**ok, "properties": {"text": "x" * 4100}},  # 18
        {**ok, "properties": {"a": {"b": {"c": 1}}}},  # 19
        {**ok, "properties": {"a": [[1]]}},  # 20
        {**ok, "properties": {"n": float("nan")}},  # 21
        {**ok, "customerId": missing},  # 22
        {**ok, "productId": missing},  # 23
        {**ok, "orderId": missing},  # 24
        {
            "type": "added_to_cart",
            "time": "2026-03-10T12:30:00+01:00",
            "customerId": c,
            "sessionId": "back\\slash",
            "properties": {
                "a": {"b": 1},
                "tags": ["x", "y"],
                "note": "tab\there",
                "name": "Über 😀",
            },
        },  # 25: stored
        {
            "type": "purchased",
            "time": "2026-03-10T11:59:00Z",
            "customerId": c,
            "productId": p,
            "orderId": o,
            "properties": {f"k{i}": i for i in range(50)},
        },  # 26: stored
    ]
    with tenant_context(alpha.tenant):
        outcome = _ingest(alpha, batch)
        stored = _stored()
    assert [(r.index, r.code) for r in outcome.rejections] == [
        (1, "NOT_AN_OBJECT"),
        (2, "UNKNOWN_FIELD"),
        (3, "INVALID_TYPE"),
        (4, "INVALID_TYPE"),
        (5, "INVALID_TIME"),
        (6, "INVALID_TIME"),
        (7, "INVALID_TIME"),
        (8, "TIME_IN_FUTURE"),
        (10, "TIME_TOO_OLD"),
        (11, "INVALID_SESSION"),
        (12, "INVALID_SESSION"),
        (13, "NO_VISITOR"),
        (14, "INVALID_ID"),
        (15, "INVALID_ID"),
        (16, "INVALID_PROPERTIES"),
        (17, "INVALID_PROPERTIES"),
        (18, "INVALID_PROPERTIES"),
        (19, "INVALID_PROPERTIES"),
        (20, "INVALID_PROPERTIES"),
        (21, "INVALID_PROPERTIES"),
        (22, "UNKNOWN_CUSTOMER"),
        (23, "UNKNOWN_PRODUCT"),
        (24, "UNKNOWN_ORDER"),
    ]
    assert all(r.message for r in outcome.rejections)
    assert "customer_id" in outcome.rejections[1].message
    assert (outcome.accepted, outcome.rejected) == (4, 23)
    at = datetime(2026, 3, 10, 11, tzinfo=UTC)
    assert stored == [
        ("product_viewed", at, "s-1", None, p, None, {}),
        ("product_viewed", NOW + timedelta(minutes=4), "s-1", None, None, None, {}),
        (
            "added_to_cart",
            datetime(2026, 3, 10, 11, 30, tzinfo=UTC),
            "back\\slash",
            c,
            None,
            None,
            {"a": {"b": 1}, "tags": ["x", "y"], "note": "tab\there", "name": "Über 😀"},
        ),
        (
            "purchased",
            datetime(2026, 3, 10, 11, 59, tzinfo=UTC),
            "",
            c,
            p,
            o,
            {f"k{i}": i for i in range(50)},
        ),
    ]


def test_a_batch_of_rejects_stores_nothing(alpha):
    with tenant_context(alpha.tenant):
        outcome = _ingest(alpha, [{"type": "x"}, "nope"])
        assert (
            outcome.accepted,
            outcome.rejected,
            Event.objects.count(),
            EventDay.objects.count(),
        ) == (0, 2, 0, 0)


def test_ids_are_looked_up_once_per_kind_whatever_the_batch(alpha, shop_rows):
    def queries(size: int) -> list[str]:
        batch = [
            {
                "type": "purchased",
                "time": AT,
                "customerId": shop_rows["customer"],
                "productId": shop_rows["product"] if i % 2 else shop_rows["missing"],
                "orderId": shop_rows["order"],
            }
            for i in range(size)
        ]
        with CaptureQueriesContext(connection) as captured:
            outcome = _ingest(alpha, batch)
        assert (outcome.accepted, outcome.rejected) == (size // 2, size - size // 2)
        return [
            q["sql"]
            for q in captured.captured_queries
            if not q["sql"].startswith("SET search_path")
        ]

    with tenant_context(alpha.tenant):
        small, large = queries(4), queries(400)
    assert len(small) == len(large)
    assert sum("SELECT id FROM" in sql for sql in large) == 3


def test_event_days_after_batches_in_the_tenant_time_zone(alpha, shop_rows):
    """Hand-checked: New York is UTC-5 until 8 March 2026 (02:00 local), UTC-4 after."""
    p = shop_rows["product"]
    batch = [
        {
            "type": "page_viewed",
            "time": "2026-03-08T04:59:00Z",
            "sessionId": "a",
        },  # 7 March, 23:59 EST
        {
            "type": "page_viewed",
            "time": "2026-03-08T05:00:00Z",
            "sessionId": "a",
        },  # 8 March, 00:00 EST
        {
            "type": "page_viewed",
            "time": "2026-03-09T03:59:00Z",
            "sessionId": "a",
        },  # 8 March, 23:59 EDT
        {
            "type": "page_viewed",
            "time": "2026-03-09T04:00:00Z",
            "sessionId": "a",
        },  # 9 March, 00:00 EDT
        {
            "type": "product_viewed",
            "time": "2026-03-08T01:00:00+09:00",
            "sessionId": "b",
            "productId": p,
        },  # 7 March
        {
            "type": "product_viewed",
            "time": "2026-03-08T10:00:00Z",
            "sessionId": "b",
            "productId": p,
        },  # 8 March
    ]
    with tenant_context(alpha.tenant):
        _ingest(alpha, batch, zone="America/New_York")
        _ingest(alpha, batch[2:], zone="America/New_York")  # a second batch adds to the same rows
        assert _event_days() == {
            (date(2026, 3, 7), "page_viewed", None): 1,
            (date(2026, 3, 8), "page_viewed", None): 3,
            (date(2026, 3, 9), "page_viewed", None): 2,
            (date(2026, 3, 7), "product_viewed", p): 2,
            (date(2026, 3, 8), "product_viewed", p): 2,
        }
        assert _event_days() == _direct_count("America/New_York")


ZONES = [
    "UTC",
    "America/New_York",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Europe/London",
]
# Around New York's and London's spring changes, and Lord Howe's half-hour one (5 April).
BASE = datetime(2026, 3, 5, tzinfo=UTC)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(zone=st.sampled_from(ZONES), seed=st.integers(0, 10**6), batches=st.integers(1, 4))
def test_event_days_equal_a_direct_count_in_any_zone(alpha, shop_rows, zone, seed, batches):
    rng = random.Random(seed)
    with tenant_context(alpha.tenant):
        Event.objects.all().delete()
        EventDay.objects.all().delete()
        for _ in range(batches):
            batch = [
                {
                    "type": rng.choice(("page_viewed", "product_viewed", "purchased")),
                    "time": (BASE + timedelta(minutes=rng.randrange(0, 40 * 24 * 60))).isoformat(),
                    "sessionId": f"s{rng.randrange(5)}",
                    **({"productId": shop_rows["product"]} if rng.random() < 0.5 else {}),
                }
                for _ in range(rng.randrange(1, 60))
            ]
            _ingest(alpha, batch, zone=zone, now=BASE + timedelta(days=41))
        assert _event_days() == _direct_count(zone)
        assert sum(_event_days().values()) == Event.objects.count()


def test_rebuild_event_days_after_a_zone_change(alpha):
    batch = [
        {"type": "page_viewed", "time": "2026-03-09T02:00:00Z", "sessionId": "a"},
        {"type": "page_viewed", "time": "2026-03-09T09:00:00Z", "sessionId": "a"},
    ]
    with tenant_context(alpha.tenant):
        _ingest(alpha, batch, zone="UTC")
        assert _event_days() == {(date(2026, 3, 9), "page_viewed", None): 2}
        events.rebuild_event_days(
            time_zone="America/Los_Angeles"
        )  # 18:00 on the 8th, 02:00 on the 9th there
        assert _event_days() == {
            (date(2026, 3, 8), "page_viewed", None): 1,
            (date(2026, 3, 9), "page_viewed", None): 1,
        }
        assert Rollup.objects.get(name=events.ROLLUP_NAME).time_zone == "America/Los_Angeles"
        # Later batches follow the zone the days were rebuilt in, even from a stale tenant object.
        _ingest(alpha, batch, zone="UTC")
        assert _event_days() == _direct_count("America/Los_Angeles")
        assert _event_days()[(date(2026, 3, 8), "page_viewed", None)] == 2


def test_rebuild_event_days_defaults_to_the_tenants_zone(alpha):
    tenant = copy.copy(alpha.tenant)
    tenant.time_zone = "Asia/Tokyo"
    with tenant_context(tenant):
        _ingest(
            alpha,
            [{"type": "page_viewed", "time": "2026-03-09T20:00:00Z", "sessionId": "a"}],
            zone="UTC",
        )
        events.rebuild_event_days()
        assert _event_days() == {(date(2026, 3, 10), "page_viewed", None): 1}


# --- POST /api/events ---------------------------------------------------------------------------------


def _key(fixture, scopes=("events",), role=Role.STAFF) -> str:
    with tenant_context(fixture.tenant):
        _, secret = account_services.create_api_key(
            actor=shop.actor(fixture, "owner"),
            tenant=fixture.tenant,
            name="ingest",
            role=role,
            scopes=list(scopes),
        )
    return secret


def _post(
    gql,
    fixture,
    body: bytes | str,
    *,
    key: str | None = None,
    content_type="application/json",
    headers: dict[str, str] | None = None,
):
    extra = dict(headers or {})
    if key:
        extra["X-API-Key"] = key
    return gql.request(
        "post",
        "/api/events",
        host=fixture.host,
        headers=extra,
        data=body,
        content_type=content_type,
    )


def _recent(minutes: int = 60) -> str:
    return (timezone.now() - timedelta(minutes=minutes)).isoformat()


def test_rest_json_array(gql, alpha, shop_rows):
    body = json.dumps(
        [
            {
                "type": "product_viewed",
                "time": _recent(),
                "sessionId": "s-1",
                "productId": shop_rows["product"],
            },
            {
                "type": "product_viewed",
                "time": _recent(),
                "sessionId": "s-1",
                "productId": shop_rows["missing"],
            },
            {
                "type": "page_viewed",
                "time": _recent(),
                "customerId": shop_rows["customer"],
                "properties": {"path": "/"},
            },
            {"type": "page_viewed", "time": "2026-03-10T11:00:00"},
        ]
    )
    response = _post(gql, alpha, body, key=_key(alpha))
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    assert [(e["index"], e["code"]) for e in answer["errors"]] == [
        (1, "UNKNOWN_PRODUCT"),
        (3, "INVALID_TIME"),
    ]
    with tenant_context(alpha.tenant):
        assert sorted(Event.objects.values_list("type", "product_id", "customer_id")) == [
            ("page_viewed", None, shop_rows["customer"]),
            ("product_viewed", shop_rows["product"], None),
        ]


def test_rest_ndjson_reports_lines(gql, alpha):
    lines = [
        json.dumps({"type": "page_viewed", "time": _recent(), "sessionId": "a"}),
        "{not json",
        "",
        json.dumps({"type": "page_viewed", "time": _recent(), "sessionId": "b"}),
        json.dumps({"type": "BAD", "time": _recent(), "sessionId": "c"}),
        "[]",
    ]
    response = _post(
        gql, alpha, "\r\n".join(lines) + "\n", key=_key(alpha), content_type="application/x-ndjson"
    )
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 3)
    assert [(e["index"], e["code"]) for e in answer["errors"]] == [
        (1, "MALFORMED"),
        (4, "INVALID_TYPE"),
        (5, "NOT_AN_OBJECT"),
    ]
    assert "Line 1 is not JSON" in answer["errors"][0]["message"]
    with tenant_context(alpha.tenant):
        assert sorted(Event.objects.values_list("session_id", flat=True)) == ["a", "b"]


def test_rest_bearer_api_key(gql, alpha):
    body = json.dumps([{"type": "page_viewed", "time": _recent(), "sessionId": "a"}])
    response = _post(gql, alpha, body, headers={"Authorization": f"Bearer {_key(alpha)}"})
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "rejected": 0, "errors": []}


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_rest_more_than_10000_events_is_413(gql, alpha, content_type):
    event = {"type": "page_viewed", "time": _recent(), "sessionId": "a"}
    items = [event] * (events.REST_MAX_EVENTS + 1)
    body = (
        json.dumps(items)
        if content_type == "application/json"
        else "\n".join(map(json.dumps, items))
    )
    response = _post(gql, alpha, body, key=_key(alpha), content_type=content_type)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    with tenant_context(alpha.tenant):
        assert Event.objects.count() == 0


def test_rest_exactly_10000_events_are_taken(gql, alpha):
    body = json.dumps(
        [
            {"type": "page_viewed", "time": _recent(), "sessionId": f"s{i}"}
            for i in range(events.REST_MAX_EVENTS)
        ]
    )
    response = _post(gql, alpha, body, key=_key(alpha))
    assert response.json() == {"accepted": events.REST_MAX_EVENTS, "rejected": 0, "errors": []}
    with tenant_context(alpha.tenant):
        assert Event.objects.count() == events.REST_MAX_EVENTS
        assert sum(EventDay.objects.values_list("events", flat=True)) == events.REST_MAX_EVENTS


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        ('[{"type": "page_viewed",\n "time": }]', "application/json", 400, "line 2 column 10"),
        ('{"type": "page_viewed"}', "application/json", 400, "JSON array"),
        (b'["\xff"]', "application/json", 400, "UTF-8"),
        ("  ", "application/json", 400, "not JSON"),
        ("[]", "text/plain", 415, "application/x-ndjson"),
    ],
)
def test_rest_malformed_bodies(gql, alpha, body, content_type, status, says):
    response = _post(gql, alpha, body, key=_key(alpha), content_type=content_type)
    assert response.status_code == status, response.content
    assert says in response.json()["errors"][0]["message"]


def test_rest_callers_refused(gql, alpha, beta):
    body = json.dumps([{"type": "page_viewed", "time": _recent(), "sessionId": "a"}])
    cases = {
        "no key": (_post(gql, alpha, body), 401),
        "another tenant's key": (_post(gql, alpha, body, key=_key(beta)), 403),
        "no events scope": (
            _post(gql, alpha, body, key=_key(alpha, scopes=("read", "write"))),
            403,
        ),
        "a user's token": (
            _post(
                gql,
                alpha,
                body,
                headers={"Authorization": f"Bearer {token_for('owner@alpha.test', alpha.tenant)}"},
            ),
            403,
        ),
        "a made-up key": (_post(gql, alpha, body, key="sk_nope_nope"), 401),
    }
    assert {name: response.status_code for name, (response, _) in cases.items()} == {
        name: status for name, (_, status) in cases.items()
    }
    with tenant_context(alpha.tenant):
        assert Event.objects.count() == 0


def test_rest_events_stay_in_their_tenant(gql, alpha, beta):
    body = json.dumps([{"type": "page_viewed", "time": _recent(), "sessionId": "a"}])
    assert _post(gql, alpha, body, key=_key(alpha)).json()["accepted"] == 1
    with tenant_context(alpha.tenant):
        assert Event.objects.count() == 1
    with tenant_context(beta.tenant):
        assert Event.objects.count() == 0
        assert EventDay.objects.count() == 0


def test_rest_is_throttled_by_the_callers_bucket(gql, alpha):
    key = _key(alpha)
    body = json.dumps(
        [{"type": "page_viewed", "time": _recent(), "sessionId": "a"}] * 1500
    )  # 2 points
    with override_settings(GRAPHQL_BUCKET_SIZE=3, GRAPHQL_RESTORE_RATE=0.001):
        first, second = _post(gql, alpha, body, key=key), _post(gql, alpha, body, key=key)
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert int(second.headers["Retry-After"]) > 0
    with tenant_context(alpha.tenant):
        assert Event.objects.count() == 1500


def test_counts_by_hand_match_the_service(alpha):
    """EventDay rows are per (day, type, product): a Counter over the accepted events."""
    batch = [{"type": t, "time": AT, "sessionId": "s"} for t in ("a", "b", "a", "a")]
    with tenant_context(alpha.tenant):
        _ingest(alpha, batch)
        assert _event_days() == {
            (date(2026, 3, 10), kind, None): n for kind, n in Counter("abaa").items()
        }
