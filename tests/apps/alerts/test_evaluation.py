"""Evaluating rules as beat does (the per-tenant task): a rule fires when its condition becomes
true, not again within its cool-down, again after it; each comparison; and two evaluations of
the same rule at once fire once."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.alerts import evaluation, services, tasks
from apps.alerts.models import AlertRule, Notification
from apps.analytics.query import DateRange
from tenants.models import Tenant
from tests.apps.alerts.helpers import evaluate, make_rule, sell, today
from tests.apps.orders import shop
from tests.committed import throwaway_tenant
from tests.eager import run_from_beat


def _rule(fixture, rule: AlertRule) -> AlertRule:
    with tenant_context(fixture.tenant):
        return AlertRule.objects.get(pk=rule.pk)


def _notifications(fixture) -> list[Notification]:
    with tenant_context(fixture.tenant):
        return list(Notification.objects.order_by("id"))


def test_a_rule_fires_once_when_crossed_not_within_its_cooldown_and_again_after(alpha):
    rule, _ = make_rule(alpha, threshold=today(alpha) + 50)
    assert evaluate(alpha) == 0
    assert _rule(alpha, rule).state == AlertRule.State.CLEAR

    sell(alpha, "30.00", 2)  # +60: above
    assert evaluate(alpha) == 1
    fired = _rule(alpha, rule)
    assert (fired.state, fired.last_value) == (AlertRule.State.FIRING, today(alpha))
    (notification,) = _notifications(alpha)
    assert notification.rule_id == rule.pk and notification.read_at is None
    assert notification.data["metric"] == "gross_sales" and notification.data[
        "threshold"
    ] == format(rule.threshold.normalize(), "f")
    assert notification.title.startswith("Big day: Gross sales is above")

    assert evaluate(alpha) == 0  # still above, within the cool-down
    sell(alpha, "5.00")
    assert evaluate(alpha) == 0
    assert len(_notifications(alpha)) == 1

    # The cool-down has passed (time moved by the rule's own record, not by a mock).
    with tenant_context(alpha.tenant):
        AlertRule.objects.filter(pk=rule.pk).update(
            last_fired_at=timezone.now() - timedelta(minutes=61)
        )
    assert evaluate(alpha) == 1
    assert len(_notifications(alpha)) == 2
    assert evaluate(alpha) == 0


def test_a_paused_rule_is_not_evaluated_and_a_cleared_one_says_so(alpha):
    rule, _ = make_rule(alpha, threshold=today(alpha) + 10, cooldown_minutes=1)
    sell(alpha, "20.00")
    with tenant_context(alpha.tenant):
        services.update_rule(
            actor=shop.actor(alpha, "owner"), rule_id=rule.pk, values={"active": False}
        )
    assert evaluate(alpha) == 0 and _rule(alpha, rule).last_evaluated_at is None
    with tenant_context(alpha.tenant):
        services.update_rule(
            actor=shop.actor(alpha, "owner"),
            rule_id=rule.pk,
            values={"active": True, "threshold": today(alpha) + 1000},
        )
    assert evaluate(alpha) == 0
    assert _rule(alpha, rule).state == AlertRule.State.CLEAR


def test_below_fires_under_the_threshold(alpha):
    make_rule(alpha, comparison="below", threshold=today(alpha) + 1)
    assert evaluate(alpha) == 1


@pytest.mark.parametrize(
    ("comparison", "value", "threshold", "met"),
    [
        ("above", Decimal("10"), Decimal("10"), False),
        ("above", Decimal("10.01"), Decimal("10"), True),
        ("below", Decimal("9.99"), Decimal("10"), True),
        ("below", None, Decimal("10"), False),
        ("percent_change", Decimal("25.00"), Decimal("25"), True),
        ("percent_change", Decimal("-30.00"), Decimal("25"), False),
        ("percent_change", Decimal("-30.00"), Decimal("-25"), True),
        ("percent_change", Decimal("10.00"), Decimal("-25"), False),
        ("percent_change", None, Decimal("-25"), False),
    ],
)
def test_conditions(comparison, value, threshold, met):
    assert evaluation.met(comparison, value, threshold) is met


def test_percent_change_compares_with_the_window_before(alpha):
    """Nothing sold in the window before: no change to speak of, so the rule does not fire."""
    rule, _ = make_rule(alpha, comparison="percent_change", threshold=Decimal("50"), window_days=3)
    sell(alpha, "40.00")
    assert evaluate(alpha) == 0
    assert _rule(alpha, rule).last_value is None


def test_the_window_is_whole_local_days_ending_today(alpha):
    now = timezone.now()
    assert evaluation.window(alpha.tenant, 7, now) == DateRange(
        evaluation.window(alpha.tenant, 1, now).first - timedelta(days=6),
        evaluation.window(alpha.tenant, 1, now).last,
    )


def test_an_unknown_metric_is_logged_and_the_other_rules_go_on(alpha):
    broken, _ = make_rule(alpha, name="Broken", threshold=Decimal("-1"))
    make_rule(alpha, name="Fine", comparison="below", threshold=today(alpha) + 1)
    with tenant_context(alpha.tenant):
        AlertRule.objects.filter(pk=broken.pk).update(metric="no_such_metric")
    # Read from the module's own logger: the message itself, whatever the root's handlers are.
    logged: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = logged.append
    logger = logging.getLogger("apps.alerts.evaluation")
    logger.addHandler(handler)
    try:
        assert evaluate(alpha) == 1
    finally:
        logger.removeHandler(handler)
    assert [record.getMessage() for record in logged] == [
        f"Alert rule {broken.pk} cannot be evaluated: Unknown metric: no_such_metric."
    ]


def test_tenants_are_evaluated_apart(alpha, beta):
    make_rule(alpha, comparison="below", threshold=today(alpha) + 1)
    assert evaluate(beta) == 0
    assert _notifications(beta) == []
    assert evaluate(alpha) == 1


def test_beat_queues_an_evaluation_in_every_active_tenant(alpha, beta):
    """The beat entry names the fan-out task; run eagerly (as a worker would), it evaluates
    each active tenant's rules in that tenant's schema, and not the template's."""
    assert (
        settings.CELERY_BEAT_SCHEDULE["alerts.evaluate"]["task"] == tasks.evaluate_all_tenants.name
    )
    make_rule(alpha, comparison="below", threshold=today(alpha) + 1)
    make_rule(beta, comparison="below", threshold=today(beta) + 1)
    queued = run_from_beat(tasks.evaluate_all_tenants)
    active = Tenant.objects.filter(status=Tenant.Status.ACTIVE, is_template=False).count()
    assert queued == active >= 2
    assert len(_notifications(alpha)) == 1 and len(_notifications(beta)) == 1


# --- concurrency: committed data in a tenant of its own ---------------------------------------------

SLUG = "alerts-race"
EVALUATORS = 8


@pytest.fixture
def race(tenants, django_db_blocker):
    """A committed tenant with a rule already met. Set up before `db` opens the test's
    transaction (the test asks for `db` after this), so that other connections see it."""
    with throwaway_tenant(django_db_blocker, SLUG, "Alerts race") as tenant:
        with tenant_context(tenant):
            rule, _ = services.create_rule(
                actor=None,
                values={
                    "name": "Any sale",
                    "metric": "orders",
                    "comparison": "below",
                    "window_days": 1,
                    "threshold": Decimal("1"),
                    "channels": ["in_app"],
                },
            )
        yield tenant, rule


def test_evaluations_at_once_fire_once(race, db):
    tenant, rule = race
    start = threading.Barrier(EVALUATORS)

    def evaluate_now(_: int) -> bool:
        try:
            with tenant_context(tenant):
                start.wait()
                return evaluation.evaluate_rule(tenant=tenant, rule_id=rule.pk) is not None
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=EVALUATORS) as pool:
        fired = list(pool.map(evaluate_now, range(EVALUATORS)))
    with tenant_context(tenant):
        notifications = Notification.objects.count()
        state = AlertRule.objects.get(pk=rule.pk).state
    assert fired.count(True) == 1 and notifications == 1
    assert state == AlertRule.State.FIRING
