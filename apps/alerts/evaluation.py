"""Evaluating alert rules (every minute, per tenant: apps.alerts.tasks).

A rule reads its metric, in total, over its window through the analytics engine (cached under
the tenant's data version, so an evaluation that finds nothing new costs a Redis read): the
window is `window_days` whole local days in the tenant's time zone ending today (1: today so
far). PERCENT_CHANGE compares with the window of the same length just before.

The condition: ABOVE value > threshold; BELOW value < threshold; PERCENT_CHANGE the change in
percent >= threshold when the threshold is positive (a rise), <= it when negative (a fall). A
value the engine cannot give (an average without orders, a change from nothing) meets none.

A rule fires when its condition holds and its cool-down has passed since it last fired: so it
fires when the condition becomes true, again while it stays (or is again) true once the
cool-down is over, and never twice within it. The rule's row is locked for the evaluation
(skip_locked: a concurrent evaluation of the same rule skips it), so two at once fire once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from apps.alerts import delivery
from apps.alerts.models import AlertRule, Comparison, Notification
from apps.analytics import engine
from apps.analytics.query import AnalyticsQuery, DateRange
from apps.common.errors import UserError

if TYPE_CHECKING:
    from tenants.models import Tenant

log = logging.getLogger(__name__)
PERCENT = Decimal("0.01")


@dataclass(frozen=True)
class Reading:
    value: Decimal | None  # the metric, or its change in percent
    range: DateRange
    met: bool


def window(tenant: Tenant, days: int, now: datetime) -> DateRange:
    today = now.astimezone(ZoneInfo(tenant.time_zone)).date()
    return DateRange(today - timedelta(days=days - 1), today)


def met(comparison: str, value: Decimal | None, threshold: Decimal) -> bool:
    if value is None:
        return False
    if comparison == Comparison.ABOVE:
        return value > threshold
    if comparison == Comparison.BELOW:
        return value < threshold
    return value >= threshold if threshold > 0 else value <= threshold


def read(tenant: Tenant, rule: AlertRule, now: datetime) -> Reading:
    span = window(tenant, rule.window_days, now)
    percent = rule.comparison == Comparison.PERCENT_CHANGE
    result = engine.run(tenant, AnalyticsQuery(metrics=(rule.metric,), range=span, compare=percent))
    if percent:
        ratio = result.change.get(rule.metric)
        value = None if ratio is None else (ratio * 100).quantize(PERCENT)
    else:
        raw = result.totals.get(rule.metric)
        value = None if raw is None else Decimal(raw)
    return Reading(value=value, range=span, met=met(rule.comparison, value, rule.threshold))


def evaluate_rule(
    *, tenant: Tenant, rule_id: int, now: datetime | None = None
) -> Notification | None:
    """Evaluates one active rule; the notification when it fired."""
    now = now or timezone.now()
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(skip_locked=True)
            .filter(pk=rule_id, active=True)
            .first()
        )
        if rule is None:  # deleted, paused, or being evaluated right now
            return None
        reading = read(tenant, rule, now)
        cooled = rule.last_fired_at is None or now - rule.last_fired_at >= timedelta(
            minutes=rule.cooldown_minutes
        )
        fire = reading.met and cooled
        rule.state = AlertRule.State.FIRING if reading.met else AlertRule.State.CLEAR
        rule.last_value, rule.last_evaluated_at = reading.value, now
        if fire:
            rule.last_fired_at = now
        rule.save(update_fields=["state", "last_value", "last_evaluated_at", "last_fired_at"])
        return (
            delivery.fire(rule, value=reading.value, range=reading.range, now=now) if fire else None
        )


def evaluate_all(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Evaluates the tenant's active rules, each in its own transaction; how many fired. A rule
    the engine refuses (a metric since removed) is logged and the others go on."""
    fired = 0
    for rule_id in (
        AlertRule.objects.filter(active=True).order_by("pk").values_list("pk", flat=True)
    ):
        try:
            fired += evaluate_rule(tenant=tenant, rule_id=rule_id, now=now) is not None
        except UserError as error:
            log.warning("Alert rule %s cannot be evaluated: %s", rule_id, error.message)
    return fired
