"""Concurrent deliveries over HTTP, each request on its own thread and database connection,
against committed data in a tenant of its own (dropped afterwards): one event delivered many
times at once is applied once; a late failure racing the success never undoes it."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.orders.models import OrderEvent
from apps.payments import services
from apps.payments.models import Payment, Provider, WebhookEvent
from tests.apps.orders import shop
from tests.apps.payments.fixtures import event, sign
from tests.committed import throwaway_tenant

SLUG = "payments-race"
HOST = f"{SLUG}.localhost"
SECRET = "whsec_race_secret_0123456789"
DUPLICATES = 8
LATE_FAILURES = 4


@pytest.fixture
def race(tenants, django_db_blocker):
    """A committed tenant with a webhook secret and a pending Stripe payment of a pending order.
    Set up before `db` opens the test's transaction, so that other connections see it."""
    with throwaway_tenant(django_db_blocker, SLUG, "Payments race", domain=HOST) as tenant:
        with tenant_context(tenant):
            services.update_settings(actor=None, stripe_webhook_secret=SECRET)
            order = shop.services.create_order(
                actor=None,
                tenant=tenant,
                email="race@example.com",
                lines=[shop.services.LineRequest(shop.variant("40.00", stock=2).pk, 1)],
            )
            payment = Payment.objects.create(
                order=order,
                provider=Provider.STRIPE,
                stripe_id="pi_race",
                amount=order.total,
                currency=order.currency,
                attempt=1,
            )
        yield tenant, payment


def _deliver(bodies: list[bytes]) -> list[tuple[int, dict]]:
    start = threading.Barrier(len(bodies))

    def post(body: bytes) -> tuple[int, dict]:
        try:
            client = Client(headers={"Host": HOST})
            start.wait()
            response = client.post(
                "/webhooks/stripe/",
                body,
                content_type="application/json",
                headers={"Stripe-Signature": sign(body, SECRET)},
            )
            return response.status_code, json.loads(response.content)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_one_event_delivered_at_once_many_times_is_applied_once(race, db):
    tenant, payment = race
    intent = {"id": "pi_race", "status": "succeeded", "metadata": {"tenant": tenant.schema_name}}
    succeeded = event("payment_intent.succeeded", intent, event_id="evt_race_paid")
    failures = [
        event(
            "payment_intent.payment_failed",
            {
                **intent,
                "status": "requires_payment_method",
                "last_payment_error": {"code": "card_declined"},
            },
        )
        for _ in range(LATE_FAILURES)
    ]
    answers = _deliver([succeeded] * DUPLICATES + failures)
    with tenant_context(tenant):
        row = Payment.objects.select_related("order").get(pk=payment.pk)
        stored = sorted(WebhookEvent.objects.values_list("event_id", flat=True))
        paid_events = OrderEvent.objects.filter(order_id=row.order_id, to_status="paid").count()
        successes = AuditEntry.objects.filter(
            action="payment.update_status", changes__status__1="succeeded"
        ).count()

    assert [status for status, _ in answers] == [200] * (DUPLICATES + LATE_FAILURES)
    duplicates = [body["duplicate"] for _, body in answers[:DUPLICATES]]
    assert duplicates.count(False) == 1 and duplicates.count(True) == DUPLICATES - 1
    assert (row.status, row.order.status) == ("succeeded", "paid")
    assert stored.count("evt_race_paid") == 1 and len(stored) == 1 + LATE_FAILURES
    assert paid_events == 1 and successes == 1  # applied_twice_count == 0
