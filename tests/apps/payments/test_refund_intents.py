"""The durable record behind every Stripe refund (issue 15, finding 1; apps.payments.refunds): a
refund is recorded as requested before Stripe is asked, and whatever happens to the call (Stripe
unreachable, refusing, answering by webhook first, another caller on it) Stripe makes it at most
once and we record it once. The crash at each step, with real processes, is in
tests/faults/test_payment_crashes.py."""

from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.common.errors import UserError
from apps.orders.models import OrderEvent, Refund
from apps.payments import reconcile, refunds
from apps.payments.models import Payment, StripeRefund
from tests.apps.orders import shop
from tests.apps.payments.fixtures import configure
from tests.apps.payments.test_refunds import (
    charge_refunded,
    deliver,
    paid_order,
    refund_object,
    snapshot,
    stripe_refunds,
)


@pytest.fixture
def keys(alpha, stripe_api):
    return configure(alpha)


@pytest.fixture
def payment(alpha, keys) -> Payment:
    return paid_order(alpha, keys)  # 45.00


@pytest.fixture
def unreachable(settings, stripe_api):
    """Point Stripe at a closed port while the block runs; back at localstripe after."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    class Switch:
        def __enter__(self):
            settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"

        def __exit__(self, *exc):
            settings.STRIPE_API_BASE = stripe_api

    return Switch()


def refund_with_key(fixture, payment: Payment, amount: str, key: str) -> StripeRefund:
    with tenant_context(fixture.tenant):
        return refunds.create_refund(
            actor=shop.actor(fixture),
            order_id=payment.order_id,
            amount=Decimal(amount),
            request_key=key,
        )


def test_an_unreachable_stripe_leaves_the_refund_requested_and_its_retry_makes_it_once(
    alpha, keys, payment, unreachable
):
    with unreachable, pytest.raises(UserError) as refused:
        refund_with_key(alpha, payment, "12.34", "key-1")
    assert (
        refused.value.code == "PROVIDER_ERROR"
        and "recorded and will be made" in refused.value.message
    )
    with tenant_context(alpha.tenant):
        row = StripeRefund.objects.get()
        assert (row.status, row.stripe_id, row.attempts, row.claimed_until) == (
            "requested",
            "",
            1,
            None,
        )
    # Promised already: it counts against the payment, so no other refund can take the money.
    assert snapshot(alpha, payment)["amount_refunded"] == Decimal("12.34")
    assert stripe_refunds(keys, payment) == []

    made = refund_with_key(alpha, payment, "12.34", "key-1")
    (at_stripe,) = stripe_refunds(keys, payment)
    assert (made.pk, made.status, made.stripe_id, at_stripe.amount) == (
        row.pk,
        "succeeded",
        at_stripe.id,
        1234,
    )
    assert at_stripe.metadata["stripe_refund"] == str(row.pk)
    assert (
        refund_with_key(alpha, payment, "12.34", "key-1").stripe_id == at_stripe.id
    )  # and again: nothing new
    state = snapshot(alpha, payment)
    assert (
        state["amount_refunded"],
        state["order_refunds"],
        len(stripe_refunds(keys, payment)),
    ) == (Decimal("12.34"), 1, 1)


def test_a_refund_stripe_made_before_the_answer_was_lost_is_found_not_made_again(
    alpha, keys, payment, unreachable
):
    with unreachable, pytest.raises(UserError):
        refund_with_key(alpha, payment, "10.00", "key-2")
    with tenant_context(alpha.tenant):
        row = StripeRefund.objects.get()
    # Stripe did make it (the answer was lost on the way back): it carries our record's id.
    keys.api().v1.refunds.create(
        params={
            "payment_intent": payment.stripe_id,
            "amount": 1000,
            "metadata": refunds_marker(alpha, row),
        }
    )
    made = refund_with_key(alpha, payment, "10.00", "key-2")
    (at_stripe,) = stripe_refunds(keys, payment)
    assert (made.stripe_id, made.status) == (at_stripe.id, "succeeded")


def refunds_marker(fixture, row: StripeRefund) -> dict[str, str]:
    with tenant_context(fixture.tenant):
        return refunds.marker(row)


def test_a_refusal_fails_the_refund_takes_it_off_the_payment_and_tells_staff(alpha, keys, payment):
    with tenant_context(alpha.tenant):  # an intent Stripe does not know: it refuses the refund
        Payment.objects.filter(pk=payment.pk).update(stripe_id="pi_unknown_to_stripe")
    with pytest.raises(UserError) as refused:
        refund_with_key(alpha, payment, "5.00", "key-3")
    assert (
        refused.value.code == "PROVIDER_ERROR" and "refusal on the order" in refused.value.message
    )
    with tenant_context(alpha.tenant):
        row = StripeRefund.objects.get()
        (event,) = OrderEvent.objects.filter(order_id=payment.order_id, type="refund_failed")
        assert (
            Refund.objects.filter(order_id=payment.order_id).count() == 1
        )  # the order keeps its record
        assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("0.00")
    assert row.status == "failed" and row.failure_reason.startswith("refused: ")
    assert event.data["amount"] == "5.00" and event.data["status"] == "failed"
    # The same key again finds the failed refund: nothing is asked of Stripe again.
    assert refund_with_key(alpha, payment, "5.00", "key-3").status == "failed"


def test_a_webhook_reporting_a_requested_refund_settles_it_and_records_no_dashboard_refund(
    gql, alpha, keys, payment, unreachable
):
    with unreachable, pytest.raises(UserError):
        refund_with_key(alpha, payment, "7.00", "key-4")
    with tenant_context(alpha.tenant):
        row = StripeRefund.objects.get()
    made = (
        keys.api()
        .v1.refunds.create(
            params={
                "payment_intent": payment.stripe_id,
                "amount": 700,
                "metadata": refunds_marker(alpha, row),
            }
        )
        .to_dict()
    )
    deliver(
        gql,
        alpha,
        keys,
        charge_refunded(
            payment, refund_object(made["id"], payment, 700, "succeeded", metadata=made["metadata"])
        ),
    )
    state = snapshot(alpha, payment)
    assert state["stripe_refunds"] == {made["id"]: "succeeded"}
    assert (state["order_refunds"], state["amount_refunded"]) == (1, Decimal("7.00"))
    # The retry then finds it settled and asks Stripe nothing.
    assert refund_with_key(alpha, payment, "7.00", "key-4").stripe_id == made["id"]
    assert len(stripe_refunds(keys, payment)) == 1


def test_a_refund_another_caller_holds_is_left_to_it_and_taken_over_when_its_lease_ends(
    alpha, keys, payment, unreachable, settings
):
    with unreachable, pytest.raises(UserError):
        refund_with_key(alpha, payment, "3.00", "key-5")
    with tenant_context(alpha.tenant):
        row = StripeRefund.objects.get()
        StripeRefund.objects.filter(pk=row.pk).update(
            claimed_until=timezone.now() + timedelta(minutes=5)
        )
        assert (
            refunds.settle(row.pk, actor=shop.actor(alpha)).status == "requested"
        )  # held: not asked
        settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 0
        assert reconcile.reconcile()["refunds"] == 0  # the reconciler leaves it too
    assert stripe_refunds(keys, payment) == []
    with tenant_context(alpha.tenant):
        StripeRefund.objects.filter(pk=row.pk).update(
            claimed_until=timezone.now() - timedelta(seconds=1)
        )
        assert reconcile.reconcile() == {
            "refunds": 1,
            "intents": 0,
            "cancelled": 0,
            "not_finished": 0,
        }
        assert StripeRefund.objects.get(pk=row.pk).status == "succeeded"
    assert len(stripe_refunds(keys, payment)) == 1
