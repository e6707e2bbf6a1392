"""Payment analytics through the API: attempts, success rate, failure reasons and refunds, in
total, by provider and by method, over days in the tenant's time zone."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.payments.models import Payment
from tenants.models import Tenant
from tests.apps.orders import shop
from tests.apps.payments.fixtures import event, post_webhook, sign
from tests.conftest import token_for

OUTCOMES = """{ attempts succeeded failed canceled pending successRate collected { amount currency }
  refunded { amount } refundedCount refundRate refundedAmountRate }"""
ANALYTICS = f"""query($from: Date, $to: Date) {{ paymentAnalytics(from: $from, to: $to) {{ from to
  totals {OUTCOMES} failureReasons {{ code count }}
  byProvider {{ provider outcomes {OUTCOMES} }} byMethod {{ method outcomes {OUTCOMES} }} }} }}"""
JANUARY = {"from": "2026-01-10", "to": "2026-01-11"}

# (provider, method type, status, failure code, amount, refunded, created in UTC); the tenant is on
# New York time (UTC-5 in January): its 10 and 11 January run from 05:00Z on the 10th to 05:00Z
# on the 12th.
ATTEMPTS = [
    ("stripe", "card", "succeeded", "", "50.00", "10.00", "2026-01-10T05:30:00"),
    ("stripe", "card", "failed", "card_declined", "20.00", "0", "2026-01-11T12:00:00"),
    ("stripe", "card", "failed", "card_declined", "20.00", "0", "2026-01-11T13:00:00"),
    ("stripe", "sepa_debit", "failed", "insufficient_funds", "20.00", "0", "2026-01-11T14:00:00"),
    ("stripe", "", "pending", "", "20.00", "0", "2026-01-11T15:00:00"),
    ("stripe", "card", "canceled", "", "20.00", "0", "2026-01-11T16:00:00"),
    ("manual", "", "succeeded", "", "30.00", "30.00", "2026-01-11T17:00:00"),
    (
        "stripe",
        "card",
        "succeeded",
        "",
        "40.00",
        "0",
        "2026-01-12T04:59:00",
    ),  # 23:59 on the 11th there
    ("stripe", "card", "succeeded", "", "100.00", "0", "2026-01-10T04:30:00"),  # the 9th there: out
    (
        "stripe",
        "card",
        "failed",
        "expired_card",
        "20.00",
        "0",
        "2026-01-12T05:00:00",
    ),  # the 12th: out
]


def _outcomes(
    attempts,
    succeeded,
    failed,
    canceled,
    pending,
    success_rate,
    collected,
    refunded,
    refunded_count,
    refund_rate,
    refunded_amount_rate,
):
    return {
        "attempts": attempts,
        "succeeded": succeeded,
        "failed": failed,
        "canceled": canceled,
        "pending": pending,
        "successRate": success_rate,
        "collected": {"amount": collected, "currency": "USD"},
        "refunded": {"amount": refunded},
        "refundedCount": refunded_count,
        "refundRate": refund_rate,
        "refundedAmountRate": refunded_amount_rate,
    }


NOTHING = _outcomes(0, 0, 0, 0, 0, None, "0.00", "0.00", 0, None, None)


@pytest.fixture
def attempts(alpha):
    Tenant.objects.filter(pk=alpha.tenant.pk).update(
        time_zone="America/New_York"
    )  # rolled back with the test
    with tenant_context(alpha.tenant):
        order = shop.place(alpha, [(shop.variant("10.00"), 1)])
        for attempt, (provider, method, status, code, amount, refunded, created) in enumerate(
            ATTEMPTS, 1
        ):
            payment = Payment.objects.create(
                order=order,
                provider=provider,
                stripe_id=f"pi_test_{attempt}" if provider == "stripe" else "",
                method_type=method,
                status=status,
                failure_code=code,
                amount=Decimal(amount),
                amount_refunded=Decimal(refunded),
                currency="USD",
                attempt=attempt,
            )
            Payment.objects.filter(pk=payment.pk).update(
                created=datetime.fromisoformat(created + "+00:00")
            )
    return order


def analyst(fixture) -> str:
    return token_for(fixture.email("analyst"), fixture.tenant)


def test_figures_over_days_in_the_tenants_time_zone(gql, alpha, attempts):
    with CaptureQueriesContext(connection) as queries:
        response = gql.post(ANALYTICS, JANUARY, host=alpha.host, token=analyst(alpha))
    assert response.errors == [], response.body
    figures = response.data["paymentAnalytics"]
    assert (figures["from"], figures["to"]) == ("2026-01-10", "2026-01-11")
    assert figures["totals"] == _outcomes(
        8, 3, 3, 1, 1, "0.5000", "120.00", "40.00", 2, "0.6667", "0.3333"
    )
    assert figures["failureReasons"] == [
        {"code": "card_declined", "count": 2},
        {"code": "insufficient_funds", "count": 1},
    ]
    assert figures["byProvider"] == [
        {
            "provider": "STRIPE",
            "outcomes": _outcomes(7, 2, 3, 1, 1, "0.4000", "90.00", "10.00", 1, "0.5000", "0.1111"),
        },
        {
            "provider": "MANUAL",
            "outcomes": _outcomes(1, 1, 0, 0, 0, "1.0000", "30.00", "30.00", 1, "1.0000", "1.0000"),
        },
    ]
    assert figures["byMethod"] == [
        {
            "method": "card",
            "outcomes": _outcomes(5, 2, 2, 1, 0, "0.5000", "90.00", "10.00", 1, "0.5000", "0.1111"),
        },
        {
            "method": "manual",
            "outcomes": _outcomes(1, 1, 0, 0, 0, "1.0000", "30.00", "30.00", 1, "1.0000", "1.0000"),
        },
        {
            "method": "sepa_debit",
            "outcomes": _outcomes(1, 0, 1, 0, 0, "0.0000", "0.00", "0.00", 0, None, None),
        },
        {
            "method": "unknown",
            "outcomes": _outcomes(1, 0, 0, 0, 1, None, "0.00", "0.00", 0, None, None),
        },
    ]
    payment_queries = [q for q in queries.captured_queries if "payments_payment" in q["sql"]]
    assert len(payment_queries) == 2, [q["sql"] for q in payment_queries]


def test_a_range_without_attempts_has_zeros_and_no_rates(gql, alpha, attempts):
    response = gql.post(
        ANALYTICS, {"from": "2025-06-01", "to": "2025-06-30"}, host=alpha.host, token=analyst(alpha)
    )
    figures = response.data["paymentAnalytics"]
    assert figures["totals"] == NOTHING
    assert figures["failureReasons"] == [] and figures["byMethod"] == []
    assert figures["byProvider"] == [
        {"provider": "STRIPE", "outcomes": NOTHING},
        {"provider": "MANUAL", "outcomes": NOTHING},
    ]


def test_one_day_is_the_tenants_day(gql, alpha, attempts):
    response = gql.post(
        ANALYTICS, {"from": "2026-01-09", "to": "2026-01-09"}, host=alpha.host, token=analyst(alpha)
    )
    assert (
        response.data["paymentAnalytics"]["totals"]["collected"]["amount"] == "100.00"
    )  # 04:30Z on the 10th


def test_the_default_range_is_the_last_thirty_days(gql, alpha):
    figures = gql.post(ANALYTICS, {}, host=alpha.host, token=analyst(alpha)).data[
        "paymentAnalytics"
    ]
    start, end = (datetime.fromisoformat(figures[key]).date() for key in ("from", "to"))
    assert (end - start).days == 29


def test_from_after_to_is_a_bad_request(gql, alpha):
    response = gql.post(
        ANALYTICS, {"from": "2026-01-12", "to": "2026-01-11"}, host=alpha.host, token=analyst(alpha)
    )
    assert response.codes == ["BAD_REQUEST"]


@pytest.mark.parametrize(
    ("role", "codes"),
    [("owner", []), ("admin", []), ("staff", []), ("analyst", []), ("viewer", ["FORBIDDEN"])],
)
def test_analysts_and_above_read_payment_analytics(gql, alpha, role, codes):
    response = gql.post(
        ANALYTICS, JANUARY, host=alpha.host, token=token_for(alpha.email(role), alpha.tenant)
    )
    assert response.codes == codes


def test_a_failure_reported_by_webhook_counts_with_its_method_and_reason(gql, alpha, alpha_stripe):
    with tenant_context(alpha.tenant):
        order = shop.place(alpha, [(shop.variant("10.00"), 1)])
        Payment.objects.create(
            order=order,
            provider="stripe",
            stripe_id="pi_hook_1",
            amount=order.total,
            currency="USD",
            attempt=1,
        )
    intent = {
        "id": "pi_hook_1",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "metadata": {"tenant": alpha.tenant.schema_name},
        "last_payment_error": {
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_method": {"id": "pm_x", "type": "card"},
        },
    }
    body = event("payment_intent.payment_failed", intent)
    assert (
        post_webhook(gql, alpha, body, sign(body, alpha_stripe.webhook_secret)).status_code == 200
    )
    response = gql.post(ANALYTICS, {}, host=alpha.host, token=analyst(alpha))
    figures = response.data["paymentAnalytics"]
    assert figures["failureReasons"] == [{"code": "insufficient_funds", "count": 1}]
    assert [(m["method"], m["outcomes"]["failed"]) for m in figures["byMethod"]] == [("card", 1)]
