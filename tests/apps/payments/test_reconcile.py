"""The reconciler (apps.payments.reconcile): beat runs it in every tenant; it finishes an intent
whose request died before Stripe's answer was recorded (cancelling it when the order no longer
waits for payment), and leaves fresh records alone. It also makes up for clean-up tasks whose
message was lost (queued while the broker was down; here: never run): an open intent of an order
no longer waiting is cancelled, and money taken for such an order goes back."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from apps.common.errors import UserError
from apps.orders import services as orders
from apps.payments import reconcile, services, tasks
from apps.payments.models import Payment, StripeRefund
from tenants.models import Tenant
from tests.apps.orders import shop
from tests.apps.payments.fixtures import configure, event, post_webhook, sign
from tests.apps.payments.test_cleanup import events_of, open_intent, reload
from tests.apps.payments.test_refunds import CARD, stripe_refunds
from tests.eager import run_from_beat


@pytest.fixture
def keys(alpha, stripe_api):
    return configure(alpha)


def _unfinished_attempt(fixture, settings_, stripe_api: str) -> Payment:
    """paymentIntentCreate while Stripe cannot be reached: the attempt is recorded, no intent."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings_.STRIPE_API_BASE = f"http://127.0.0.1:{port}"
    with tenant_context(fixture.tenant):
        order = shop.place(fixture, [(shop.variant("12.50", stock=5), 2)])
        with pytest.raises(UserError):
            services.create_intent(actor=shop.actor(fixture), order_id=order.pk)
        payment = Payment.objects.get(order=order)
    settings_.STRIPE_API_BASE = stripe_api
    assert (payment.stripe_id, payment.status) == ("", "pending")
    return payment


def _intents_of(keys, order_id: int) -> list:
    """The tenant's intents for the order at localstripe (which every test of the session shares)."""
    mine = {"tenant": keys.fixture.tenant.schema_name, "order_id": str(order_id)}
    found = keys.api().v1.payment_intents.list(params={"limit": 100})
    return [
        i
        for i in found.auto_paging_iter()
        if mine.items() <= (i.to_dict().get("metadata") or {}).items()
    ]


def test_the_reconciler_makes_an_unfinished_intent_and_leaves_fresh_ones(
    alpha, keys, settings, stripe_api
):
    payment = _unfinished_attempt(alpha, settings, stripe_api)
    settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 3600
    with tenant_context(alpha.tenant):
        assert reconcile.reconcile()["intents"] == 0  # too fresh: a request may be on its way
        settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 0
        assert reconcile.reconcile() == {
            "refunds": 0,
            "intents": 1,
            "cancelled": 0,
            "not_finished": 0,
        }
        made = Payment.objects.get(pk=payment.pk)
    (intent,) = _intents_of(keys, payment.order_id)
    assert (made.stripe_id, made.status, intent.status) == (
        intent.id,
        "pending",
        "requires_payment_method",
    )


def test_an_unfinished_intent_of_an_order_no_longer_waiting_is_made_and_cancelled(
    alpha, keys, settings, stripe_api
):
    payment = _unfinished_attempt(alpha, settings, stripe_api)
    settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 0
    with tenant_context(alpha.tenant):
        orders.cancel_order(actor=shop.actor(alpha), order_id=payment.order_id)
        assert reconcile.reconcile()["intents"] == 1
        after = Payment.objects.get(pk=payment.pk)
    (intent,) = _intents_of(keys, payment.order_id)
    assert (after.status, intent.status) == ("canceled", "canceled")


def test_beat_runs_the_reconciler_in_every_tenant(alpha, beta):
    assert (
        settings.CELERY_BEAT_SCHEDULE["payments.reconcile"]["task"]
        == tasks.reconcile_all_tenants.name
    )
    queued = run_from_beat(tasks.reconcile_all_tenants)
    assert (
        queued
        == Tenant.objects.filter(is_template=False).exclude(schema_name="public").count()
        >= 2
    )


def test_an_open_intent_whose_cancellation_was_lost_is_cancelled(alpha, keys, settings):
    payment = open_intent(alpha, keys)
    with tenant_context(alpha.tenant):
        orders.cancel_order(actor=shop.actor(alpha), order_id=payment.order_id)
        # The cancellation task was queued on commit and lost: nothing runs it.
        settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 3600
        assert reconcile.reconcile()["cancelled"] == 0  # the task may still be on its way
        settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 0
        assert reconcile.reconcile()["cancelled"] == 1
        assert reconcile.reconcile()["cancelled"] == 0  # nothing left open
    assert keys.api().v1.payment_intents.retrieve(payment.stripe_id).status == "canceled"
    assert reload(alpha, payment).status == "canceled"


def test_money_taken_for_a_cancelled_order_goes_back_though_the_return_task_was_lost(
    gql, alpha, keys, settings
):
    """The buyer pays an intent of an order cancelled meanwhile (its cancellation lost too):
    Stripe's webhook marks the payment unexpected and records its return in the same transaction,
    so the reconciler makes the refund without the return task ever running."""
    payment = open_intent(alpha, keys)
    with tenant_context(alpha.tenant):
        orders.cancel_order(actor=shop.actor(alpha), order_id=payment.order_id)
    api = keys.api()
    method = api.v1.payment_methods.create(params=CARD)
    api.v1.payment_intents.update(payment.stripe_id, params={"payment_method": method.id})
    paid = api.v1.payment_intents.confirm(payment.stripe_id).to_dict()
    body = event("payment_intent.succeeded", paid)
    assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    with tenant_context(alpha.tenant):
        (recorded,) = StripeRefund.objects.filter(payment=payment)
        assert (recorded.status, recorded.amount, recorded.order_refund_id) == (
            "requested",
            Decimal("30.00"),
            None,
        )
        assert stripe_refunds(keys, payment) == []  # only recorded so far
        settings.PAYMENTS_RECONCILE_AFTER_SECONDS = 0
        assert reconcile.reconcile()["refunds"] == 1
        assert reconcile.reconcile()["refunds"] == 0
        recorded.refresh_from_db()
    (made,) = stripe_refunds(keys, payment)
    assert (made.amount, made.id, recorded.status) == (3000, recorded.stripe_id, "succeeded")
    after = reload(alpha, payment)
    assert (after.status, after.amount_refunded, after.order.status) == (
        "succeeded",
        Decimal("30.00"),
        "cancelled",
    )
    assert events_of(alpha, payment)[-2:] == ["payment_unexpected", "payment_returned"]
