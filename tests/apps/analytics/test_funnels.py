"""Funnels against small datasets counted by hand: the window (inclusive, and running past the
range's end), events out of order, a skipped step, repeated entries, customer against session
identity, the tenant's time zone, and tenant isolation."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.analytics import cache, funnels
from apps.analytics.models import Event
from apps.analytics.query import DateRange
from apps.common.errors import UserError
from tests.apps.analytics.test_events import _key, _post

V, C, K, P = funnels.DEFAULT_STEPS  # viewed, added to cart, checkout started, purchased


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (type, UTC time, session, customer id); what each visitor reaches with a 24-hour window:
DATASET = [
    # a: every step in order                                                   → 4
    (V, "2026-03-01 10:00", "a", None),
    (C, "2026-03-01 10:05", "a", None),
    (K, "2026-03-01 10:10", "a", None),
    (P, "2026-03-01 10:15", "a", None),
    # b: skips checkout; the purchase after it does not count                   → 2
    (V, "2026-03-01 12:00", "b", None),
    (C, "2026-03-01 12:30", "b", None),
    (P, "2026-03-01 13:00", "b", None),
    # c: the cart before the view is out of order                                → 1
    (C, "2026-03-01 09:00", "c", None),
    (V, "2026-03-01 09:30", "c", None),
    (K, "2026-03-01 10:00", "c", None),
    # d: cart exactly 24 h after entering (in), checkout a second later (out)    → 2
    (V, "2026-03-01 08:00", "d", None),
    (C, "2026-03-02 08:00", "d", None),
    (K, "2026-03-02 08:00:01", "d", None),
    # e: a view before the range does not count; enters at the one inside       → 2
    (V, "2026-02-28 23:00", "e", None),
    (V, "2026-03-01 01:00", "e", None),
    (C, "2026-03-01 02:00", "e", None),
    # customer 7 in two sessions is one visitor; the checkout without the customer is
    # session y's, a visitor who never viewed                                    → 2
    (V, "2026-03-02 10:00", "x", 7),
    (C, "2026-03-02 11:00", "y", 7),
    (K, "2026-03-02 12:00", "y", None),
    # f: views after the range: never enters
    (V, "2026-03-03 00:30", "f", None),
    (C, "2026-03-03 00:40", "f", None),
    # g: enters late on the last day; later steps after the range, in the window;
    # checkout and purchase at the same instant                                  → 4
    (V, "2026-03-02 23:00", "g", None),
    (C, "2026-03-03 05:00", "g", None),
    (K, "2026-03-03 06:00", "g", None),
    (P, "2026-03-03 06:00", "g", None),
    # h: a checkout before the cart does not count, the one after it does         → 3
    (V, "2026-03-01 10:00", "h", None),
    (K, "2026-03-01 11:00", "h", None),
    (C, "2026-03-01 12:00", "h", None),
    (K, "2026-03-01 13:00", "h", None),
    # i: the window runs from the first view, not from a later one               → 1
    (V, "2026-03-01 10:00", "i", None),
    (V, "2026-03-01 20:00", "i", None),
    (C, "2026-03-02 15:00", "i", None),
]
MARCH = DateRange(date(2026, 3, 1), date(2026, 3, 2))


def _load(fixture, rows) -> None:
    Event.objects.bulk_create(
        Event(type=kind, time=_t(at), session_id=session, customer_id=customer)
        for kind, at, session, customer in rows
    )
    cache.bump(fixture.tenant.schema_name)  # what the commit of an ingestion does


def _figures(result: funnels.Funnel) -> list[tuple]:
    return [(s.type, s.visitors, s.conversion, s.step_conversion, s.drop_off) for s in result.steps]


def _funnel(
    fixture, *, steps=funnels.DEFAULT_STEPS, hours=24, days=MARCH, zone="UTC"
) -> funnels.Funnel:
    tenant = copy.copy(fixture.tenant)
    tenant.time_zone = zone
    return funnels.funnel(tenant=tenant, steps=steps, window_hours=hours, days=days)


def test_the_default_funnel_over_a_day_window(alpha):
    with tenant_context(alpha.tenant):
        _load(alpha, DATASET)
        result = _funnel(alpha)
    # entrants a b c d e 7 g h i; cart a b d e 7 g h; checkout a g h; purchase a g
    assert _figures(result) == [
        (V, 9, Decimal("1.0000"), Decimal("1.0000"), 0),
        (C, 7, Decimal("0.7778"), Decimal("0.7778"), 2),
        (K, 3, Decimal("0.3333"), Decimal("0.4286"), 4),
        (P, 2, Decimal("0.2222"), Decimal("0.6667"), 1),
    ]
    assert (result.range, result.window_hours, result.time_zone) == (MARCH, 24, "UTC")


def test_a_one_hour_window(alpha):
    with tenant_context(alpha.tenant):
        _load(alpha, DATASET)
        result = _funnel(alpha, hours=1)
    # cart within the hour: a (5 min), b (30 min), e (exactly 1 h), 7 (exactly 1 h); then only a
    assert [(s.visitors, s.drop_off) for s in result.steps] == [(9, 0), (4, 5), (1, 3), (1, 0)]


def test_a_one_day_range_and_custom_steps(alpha):
    with tenant_context(alpha.tenant):
        _load(alpha, DATASET)
        last_day = _funnel(alpha, days=DateRange(date(2026, 3, 2), date(2026, 3, 2)))
        view_to_purchase = _funnel(alpha, steps=[V, P])
    assert [s.visitors for s in last_day.steps] == [2, 2, 1, 1]  # 7 and g enter; g goes on
    # a and g purchase after viewing; b's purchase counts once checkout is not a step
    assert _figures(view_to_purchase) == [
        (V, 9, Decimal("1.0000"), Decimal("1.0000"), 0),
        (P, 3, Decimal("0.3333"), Decimal("0.3333"), 6),
    ]


def test_days_are_the_tenants(alpha):
    """New York is UTC-5 on 1 March 2026: its day runs from 05:00Z to 05:00Z."""
    rows = [
        (V, "2026-03-01 03:00", "out-early", None),
        (V, "2026-03-01 04:59", "out-before", None),
        (V, "2026-03-01 05:00", "in-first", None),
        (V, "2026-03-02 04:59", "in-last", None),
        (V, "2026-03-02 05:00", "out-after", None),
    ]
    with tenant_context(alpha.tenant):
        _load(alpha, rows)
        result = _funnel(
            alpha,
            steps=[V, C],
            days=DateRange(date(2026, 3, 1), date(2026, 3, 1)),
            zone="America/New_York",
        )
        utc = _funnel(alpha, steps=[V, C], days=DateRange(date(2026, 3, 1), date(2026, 3, 1)))
    assert _figures(result) == [
        (V, 2, Decimal("1.0000"), Decimal("1.0000"), 0),
        (C, 0, Decimal("0.0000"), Decimal("0.0000"), 2),
    ]
    assert utc.steps[0].visitors == 3  # in UTC: 03:00, 04:59 and 05:00 on the 1st


def test_nobody_entered(alpha):
    with tenant_context(alpha.tenant):
        cache.bump(alpha.tenant.schema_name)
        result = _funnel(alpha)
    assert _figures(result)[:2] == [(V, 0, None, None, 0), (C, 0, None, None, 0)]


def test_new_events_change_the_next_answer(alpha):
    with tenant_context(alpha.tenant):
        _load(alpha, DATASET[:4])
        assert _funnel(alpha).steps[0].visitors == 1
        assert _funnel(alpha).steps[0].visitors == 1  # from the cache
        _load(alpha, DATASET[4:7])
        assert _funnel(alpha).steps[0].visitors == 2


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"steps": [V]}, "BAD_STEPS"),
        ({"steps": [V, C, K, P, "a", "b", "c", "d", "e"]}, "BAD_STEPS"),
        ({"steps": [V, V]}, "BAD_STEPS"),
        ({"steps": [V, "Added To Cart"]}, "BAD_STEPS"),
        ({"hours": 0}, "BAD_WINDOW"),
        ({"hours": 30 * 24 + 1}, "BAD_WINDOW"),
        ({"days": DateRange(date(2026, 3, 2), date(2026, 3, 1))}, "BAD_RANGE"),
        ({"days": DateRange(date(1999, 12, 31), date(2000, 1, 1))}, "BAD_RANGE"),
        ({"days": DateRange(date(2025, 1, 1), date(2026, 1, 2))}, "BAD_RANGE"),
    ],
)
def test_bad_arguments(alpha, arguments, code):
    with tenant_context(alpha.tenant), pytest.raises(UserError) as refused:
        _funnel(alpha, **arguments)
    assert refused.value.code == code


def test_limits_are_inclusive(alpha):
    with tenant_context(alpha.tenant):
        cache.bump(alpha.tenant.schema_name)
        _funnel(
            alpha,
            steps=[V, C, K, P, "a", "b", "c", "d"],
            hours=30 * 24,
            days=DateRange(date(2025, 1, 1), date(2026, 1, 1)),
        )  # 8 steps, 30 days, 366 days: no error


def test_events_posted_to_alpha_never_show_in_betas_funnel(gql, alpha, beta):
    now = timezone.now() - timedelta(hours=1)
    body = json.dumps(
        [
            {"type": kind, "time": (now + timedelta(minutes=n)).isoformat(), "sessionId": "iso"}
            for n, kind in enumerate(funnels.DEFAULT_STEPS)
        ]
    )
    assert _post(gql, alpha, body, key=_key(alpha)).json()["accepted"] == 4
    today = DateRange(now.date() - timedelta(days=1), now.date() + timedelta(days=1))
    with tenant_context(alpha.tenant):
        cache.bump(alpha.tenant.schema_name)
        assert [s.visitors for s in _funnel(alpha, days=today).steps] == [1, 1, 1, 1]
    with tenant_context(beta.tenant):
        assert [s.visitors for s in _funnel(beta, days=today).steps] == [0, 0, 0, 0]
