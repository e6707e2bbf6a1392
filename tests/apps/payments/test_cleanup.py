"""Money that should not stay taken and intents that should not stay open (apps.payments.cleanup),
against localstripe, with the clean-up tasks run as they are queued on commit (Celery eager: the
real task code, in this test's transaction)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.orders.models import OrderEvent
from apps.payments import cleanup, refunds, services, webhooks
from apps.payments.models import Payment, StripeRefund
from tests.apps.orders import shop
from tests.apps.payments.fixtures import StripeShop, configure, event, post_webhook, sign
from tests.apps.payments.test_refunds import CARD, charge_refunded, stripe_refunds
from tests.eager import eager


@pytest.fixture
def keys(alpha, stripe_api) -> StripeShop:
    return configure(alpha)


@pytest.fixture
def tasks_on_commit():
    """`run()` does what the test's writes queued for their commit (which the test's transaction
    never reaches), with the Celery tasks executed in place, until nothing new is queued."""
    start = len(connection.run_on_commit)

    def run() -> int:
        ran = 0
        while len(connection.run_on_commit) > start + ran:
            _, callback, _ = connection.run_on_commit[start + ran]
            callback()
            ran += 1
        return ran

    with eager():
        yield run


def open_intent(fixture, keys: StripeShop, *, pay_at_stripe: bool = False) -> Payment:
    """A pending order (2 x 15.00) with an open intent; `pay_at_stripe`: the buyer pays it at
    Stripe, and we have not heard of it yet."""
    with tenant_context(fixture.tenant):
        order = shop.place(fixture, [(shop.variant("15.00", stock=5), 2)])
        payment, _ = services.create_intent(actor=shop.actor(fixture), order_id=order.pk)
    if pay_at_stripe:
        api = keys.api()
        method = api.v1.payment_methods.create(params=CARD)
        api.v1.payment_intents.update(payment.stripe_id, params={"payment_method": method.id})
        assert api.v1.payment_intents.confirm(payment.stripe_id).status == "succeeded"
    return payment


def reload(fixture, payment: Payment) -> Payment:
    with tenant_context(fixture.tenant):
        return Payment.objects.select_related("order").get(pk=payment.pk)


def events_of(fixture, payment: Payment) -> list[str]:
    with tenant_context(fixture.tenant):
        return list(
            OrderEvent.objects.filter(order_id=payment.order_id).values_list("type", flat=True)
        )


def test_marking_an_order_paid_cancels_its_open_intent(alpha, keys, tasks_on_commit):
    payment = open_intent(alpha, keys)
    with tenant_context(alpha.tenant):
        services.mark_paid(actor=shop.actor(alpha), order_id=payment.order_id)
        assert tasks_on_commit() >= 1
    assert keys.api().v1.payment_intents.retrieve(payment.stripe_id).status == "canceled"
    after = reload(alpha, payment)
    assert (after.status, after.order.status) == ("canceled", "paid")


def test_cancelling_a_pending_order_cancels_its_open_intent(alpha, keys, tasks_on_commit):
    payment = open_intent(alpha, keys)
    with tenant_context(alpha.tenant):
        refunds.cancel_order(actor=shop.actor(alpha), order_id=payment.order_id)
        assert tasks_on_commit() >= 1
    assert keys.api().v1.payment_intents.retrieve(payment.stripe_id).status == "canceled"
    assert reload(alpha, payment).status == "canceled"


def test_money_taken_as_the_order_was_cancelled_goes_back_in_full(alpha, keys, tasks_on_commit):
    """The buyer paid at Stripe just before staff cancelled: the cancellation finds the intent
    succeeded, the payment is marked unexpected and returned, the order stays cancelled with no
    order refund (it never counted this money)."""
    payment = open_intent(alpha, keys, pay_at_stripe=True)
    with tenant_context(alpha.tenant):
        refunds.cancel_order(actor=shop.actor(alpha), order_id=payment.order_id)
        assert tasks_on_commit() >= 2  # the cancellation finds it paid, then the return
    after = reload(alpha, payment)
    assert (after.status, after.amount_refunded, after.order.status) == (
        "succeeded",
        Decimal("30.00"),
        "cancelled",
    )
    assert after.order.refunded_total == Decimal("0.00")
    (in_stripe,) = stripe_refunds(keys, payment)
    assert (in_stripe.amount, in_stripe.metadata["returned_payment"]) == (3000, str(payment.pk))
    with tenant_context(alpha.tenant):
        returned = StripeRefund.objects.get()
        entry = AuditEntry.objects.get(action="payment.return")
    assert (returned.stripe_id, returned.order_refund_id, returned.amount) == (
        in_stripe.id,
        None,
        Decimal("30.00"),
    )
    assert entry.changes["amount"] == "30.00" and entry.actor_email == cleanup.CLEAN_UP.email
    assert events_of(alpha, payment)[-2:] == ["payment_unexpected", "payment_returned"]

    # Stripe then reports the refund: it is known, so no order refund is recorded for it.
    refund_object = {
        "id": in_stripe.id,
        "object": "refund",
        "amount": 3000,
        "status": "succeeded",
        "payment_intent": payment.stripe_id,
        "metadata": in_stripe.metadata.to_dict(),
    }
    with tenant_context(alpha.tenant):
        stored, fresh = webhooks.receive_event(
            event=json.loads(charge_refunded(payment, refund_object))
        )
    assert fresh and stored.outcome == "stale"
    assert reload(alpha, payment).order.refunded_total == Decimal("0.00")
    # A second run of the task returns nothing more.
    with tenant_context(alpha.tenant):
        assert cleanup.return_payment(payment_id=payment.pk) is None
    assert len(stripe_refunds(keys, payment)) == 1


def test_a_success_webhook_for_a_cancelled_order_returns_the_money(
    gql, alpha, keys, tasks_on_commit
):
    payment = open_intent(alpha, keys)
    with tenant_context(
        alpha.tenant
    ):  # cancelled while Stripe could not be told (intent still open)
        refunds.orders.cancel_order(actor=shop.actor(alpha), order_id=payment.order_id)
    api = keys.api()
    method = api.v1.payment_methods.create(params=CARD)
    api.v1.payment_intents.update(payment.stripe_id, params={"payment_method": method.id})
    paid = api.v1.payment_intents.confirm(payment.stripe_id).to_dict()
    paid["metadata"] = dict(paid.get("metadata") or {})
    body = event("payment_intent.succeeded", paid)
    assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    with tenant_context(alpha.tenant):
        assert tasks_on_commit() >= 1
    after = reload(alpha, payment)
    assert (after.status, after.amount_refunded, after.order.status) == (
        "succeeded",
        Decimal("30.00"),
        "cancelled",
    )
    assert [r.amount for r in stripe_refunds(keys, payment)] == [3000]


def test_a_payment_that_paid_its_order_is_never_returned(alpha, keys):
    payment = open_intent(alpha, keys, pay_at_stripe=True)
    with tenant_context(alpha.tenant):
        stored, _ = webhooks.receive_event(
            event={
                "id": "evt_paid_normally",
                "type": "payment_intent.succeeded",
                "data": {
                    "object": keys.api().v1.payment_intents.retrieve(payment.stripe_id).to_dict()
                },
            }
        )
        assert stored.outcome == "applied"
        assert cleanup.return_payment(payment_id=payment.pk) is None
    assert reload(alpha, payment).order.status == "paid"
    assert stripe_refunds(keys, payment) == []
