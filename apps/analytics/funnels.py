"""Funnels: how many visitors went through an ordered list of event types within a window.

A visitor is a customer when the event names one, else the event's session (no stitching: a
session's events before sign-in and the customer's after are two visitors). A visitor enters the
funnel at their first event of step 1 in the range (days `first`..`last` in the tenant's time
zone, both included). They reach step k at their first event of step k at or after the time
they reached step k-1 and at most `window` after they entered (inclusive): events out of order
do not count, a skipped step ends the way, and later steps may fall after the range's end as
long as they are within the window. Steps are distinct event types, 2 to 8; the window is 1 hour
to 30 days; the range at most 366 days.

One SQL statement: the steps' events of the range (and its window after) once, then one
grouped join per step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection

from apps.analytics import cache
from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.events import TYPE_PATTERN
from apps.analytics.metrics import ratio
from apps.analytics.models import Event
from apps.analytics.query import DateRange, Granularity
from apps.common.days import day_start
from apps.common.errors import UserError
from apps.common.rules import check_range

if TYPE_CHECKING:
    from tenants.models import Tenant

DEFAULT_STEPS = ("product_viewed", "added_to_cart", "checkout_started", "purchased")
DEFAULT_WINDOW_HOURS = 24
MIN_STEPS, MAX_STEPS = 2, 8
MIN_WINDOW_HOURS, MAX_WINDOW_HOURS = 1, 30 * 24
MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class FunnelStep:
    type: str
    visitors: int
    conversion: Decimal | None  # from the first step, four places (None when nobody entered)
    step_conversion: (
        Decimal | None
    )  # from the previous step (1 for the first step when anyone entered)
    drop_off: int  # visitors of the previous step who did not reach this one (0 for the first)


@dataclass(frozen=True)
class Funnel:
    range: DateRange
    window_hours: int
    time_zone: str
    steps: list[FunnelStep]


def _check(steps: Sequence[str], window_hours: int, days: DateRange) -> None:
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise UserError(
            f"A funnel has {MIN_STEPS} to {MAX_STEPS} steps.",
            field="steps",
            code=AnalyticsErrorCode.BAD_STEPS,
        )
    for step in steps:
        if not TYPE_PATTERN.fullmatch(step):
            raise UserError(
                f"{step!r} is not an event type.", field="steps", code=AnalyticsErrorCode.BAD_STEPS
            )
    if len(set(steps)) != len(steps):
        raise UserError(
            "Each step is a different event type.", field="steps", code=AnalyticsErrorCode.BAD_STEPS
        )
    if not MIN_WINDOW_HOURS <= window_hours <= MAX_WINDOW_HOURS:
        raise UserError(
            f"The window is {MIN_WINDOW_HOURS} to {MAX_WINDOW_HOURS} hours.",
            field="windowHours",
            code=AnalyticsErrorCode.BAD_WINDOW,
        )
    days.check(Granularity.MONTH)  # bounds and order; a funnel's length is capped lower
    check_range(days.first, days.last, longest=MAX_RANGE_DAYS)


def funnel(*, tenant: Tenant, steps: Sequence[str], window_hours: int, days: DateRange) -> Funnel:
    """The funnel of `steps` over `days` (cached under the tenant's data version)."""
    steps = tuple(steps)
    _check(steps, window_hours, days)
    key = f"{tenant.time_zone}|{','.join(steps)}|{window_hours}|{days.first}|{days.last}"
    counts = cache.cached(
        "funnel", key, lambda: _count(tenant, steps, timedelta(hours=window_hours), days)
    )
    first = counts[0]
    return Funnel(
        range=days,
        window_hours=window_hours,
        time_zone=tenant.time_zone,
        steps=[
            FunnelStep(
                type=step,
                visitors=count,
                conversion=ratio(count, first),
                step_conversion=ratio(count, counts[k - 1] if k else first),
                drop_off=counts[k - 1] - count if k else 0,
            )
            for k, (step, count) in enumerate(zip(steps, counts, strict=True))
        ],
    )


def _count(tenant: Tenant, steps: tuple[str, ...], window: timedelta, days: DateRange) -> list[int]:
    """Visitors reaching each step: s1 holds each entrant's entry time; s<k> each visitor's time
    at step k, keeping `entered` for the window."""
    start = day_start(tenant, days.first)
    end = day_start(tenant, days.last + timedelta(days=1))
    params: dict[str, Any] = {
        "types": list(steps),
        "start": start,
        "end": end,
        "horizon": end + window,
        "window": window,
        "step1": steps[0],
    }
    ctes = [
        f"""e AS MATERIALIZED (
              SELECT CASE WHEN customer_id IS NOT NULL THEN 'c' || customer_id ELSE 's' || session_id END AS v,
                     type, time
                FROM {Event._meta.db_table}
               WHERE type = ANY(%(types)s) AND time >= %(start)s AND time <= %(horizon)s)""",
        """s1 AS (SELECT v, min(time) AS entered, min(time) AS t FROM e
                 WHERE type = %(step1)s AND time < %(end)s GROUP BY v)""",
    ]
    for k in range(2, len(steps) + 1):
        params[f"step{k}"] = steps[k - 1]
        ctes.append(
            f"""s{k} AS (SELECT p.v, p.entered, min(e.time) AS t FROM s{k - 1} p
                        JOIN e ON e.v = p.v AND e.type = %(step{k})s AND e.time >= p.t
                              AND e.time <= p.entered + %(window)s
                       GROUP BY p.v, p.entered)"""
        )
    counts = ", ".join(f"(SELECT count(*) FROM s{k})" for k in range(1, len(steps) + 1))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} SELECT {counts}", params)
        return list(cursor.fetchone())
