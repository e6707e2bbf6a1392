"""The reconciler (apps.payments.reconcile): beat runs it in every tenant; it finishes an intent
whose request died before Stripe's answer was recorded (cancelling it when the order no longer
waits for payment), and leaves fresh records alone."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context

from apps.common.errors import UserError
from apps.orders import services as orders
from apps.payments import reconcile, services, tasks
from apps.payments.models import Payment
from config.celery import app
from tenants.models import Tenant
from tests.apps.orders import shop
from tests.apps.payments.fixtures import configure


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
        assert reconcile.reconcile() == {"refunds": 0, "intents": 1, "not_finished": 0}
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
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        connection.set_schema_to_public()
        queued = tasks.reconcile_all_tenants.apply().get()
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = False, False
    assert (
        queued
        == Tenant.objects.filter(is_template=False).exclude(schema_name="public").count()
        >= 2
    )
