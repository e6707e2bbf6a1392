"""Concurrent refund webhooks over HTTP, each on its own thread and database connection, against
committed data in a tenant of its own (dropped afterwards): a refund made in the Stripe dashboard
and reported by many different events at once is recorded as an order refund exactly once."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.orders import services as orders
from apps.orders.models import OrderStatus, Refund
from apps.payments import services
from apps.payments.models import Payment, PaymentStatus, Provider, StripeRefund, WebhookEvent
from tests.apps.orders import shop
from tests.apps.payments.fixtures import event, sign
from tests.committed import throwaway_tenant

SLUG = "refunds-race"
HOST = f"{SLUG}.localhost"
SECRET = "whsec_refund_race_secret_0123456789"
EACH = 4


@pytest.fixture
def race(tenants, django_db_blocker):
    """A committed tenant with a webhook secret and a paid order (40.00) with its succeeded
    Stripe payment. Set up before `db` opens the test's transaction, so other connections see it."""
    with throwaway_tenant(django_db_blocker, SLUG, "Refunds race", domain=HOST) as tenant:
        with tenant_context(tenant):
            services.update_settings(actor=None, stripe_webhook_secret=SECRET)
            order = orders.create_order(
                actor=None,
                tenant=tenant,
                email="race@example.com",
                lines=[orders.LineRequest(shop.variant("40.00", stock=2).pk, 1)],
            )
            orders.update_status(actor=None, order_id=order.pk, status=OrderStatus.PAID)
            payment = Payment.objects.create(
                order=order,
                provider=Provider.STRIPE,
                stripe_id="pi_refund_race",
                amount=order.total,
                currency=order.currency,
                attempt=1,
                status=PaymentStatus.SUCCEEDED,
            )
        yield tenant, payment


def _deliver(bodies: list[bytes]) -> list[int]:
    start = threading.Barrier(len(bodies))

    def post(body: bytes) -> int:
        try:
            client = Client(headers={"Host": HOST})
            start.wait()
            response = client.post(
                "/webhooks/stripe/",
                body,
                content_type="application/json",
                headers={"Stripe-Signature": sign(body, SECRET)},
            )
            assert json.loads(response.content)["received"] is True
            return response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_a_dashboard_refund_reported_by_many_events_at_once_is_recorded_once(race, db):
    tenant, payment = race
    made = {
        "id": "re_race",
        "object": "refund",
        "amount": 1500,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": "pi_refund_race",
    }
    charge = {
        "id": "ch_race",
        "object": "charge",
        "payment_intent": "pi_refund_race",
        "amount_refunded": 1500,
        "refunds": {"object": "list", "data": [made]},
    }
    bodies = [event("charge.refunded", charge) for _ in range(EACH)] + [
        event("refund.updated", made) for _ in range(EACH)
    ]
    assert _deliver(bodies) == [200] * (2 * EACH)
    with tenant_context(tenant):
        row = Payment.objects.select_related("order").get(pk=payment.pk)
        order_refunds = list(
            Refund.objects.filter(order_id=row.order_id).values_list("amount", flat=True)
        )
        recorded = StripeRefund.objects.filter(stripe_id="re_race").count()
        audited = AuditEntry.objects.filter(action="payment.refund_record").count()
        outcomes = sorted(WebhookEvent.objects.values_list("outcome", flat=True))
    assert (
        order_refunds == [Decimal("15.00")] and recorded == 1 and audited == 1
    )  # applied_twice_count == 0
    assert (row.amount_refunded, row.order.refunded_total, row.order.status) == (
        Decimal("15.00"),
        Decimal("15.00"),
        "partially_refunded",
    )
    assert outcomes == ["applied"] + ["stale"] * (2 * EACH - 1)
