"""End to end: a payment confirmed in localstripe, which then delivers its Stripe-signed
`payment_intent.succeeded` webhook over TCP to the real server (uvicorn): the order is paid.
The server sees committed data only, so the shop is a tenant of its own, dropped afterwards."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe
from django_tenants.utils import tenant_context

from apps.payments import services
from apps.payments.models import Payment, WebhookEvent
from tests.apps.orders import shop
from tests.committed import throwaway_tenant

SLUG = "payments-live"
SECRET = "whsec_live_delivery_0123456789"
HOOK = "shop-analytics-e2e"

# The suite's real server (uvicorn, tests/servers.py) serves these tests too.


@pytest.fixture
def live_shop(tenants, django_db_blocker, stripe_api):
    """A committed tenant with Stripe on and a pending Stripe payment (a localstripe intent)."""
    with throwaway_tenant(django_db_blocker, SLUG, "Payments live") as tenant:
        with tenant_context(tenant):
            services.update_settings(
                actor=None,
                stripe_enabled=True,
                stripe_publishable_key="pk_test_live",
                stripe_secret_key="sk_test_live_e2e",
                stripe_webhook_secret=SECRET,
            )
            order = shop.services.create_order(
                actor=None,
                tenant=tenant,
                email="live@example.com",
                lines=[shop.services.LineRequest(shop.variant("19.99", stock=1).pk, 1)],
            )
            payment, _ = services.create_intent(actor=None, order_id=order.pk)
        yield tenant, payment


def _register(base: str, url: str, events: list[str]) -> None:
    """Point localstripe's webhook HOOK at `url` for `events` (its webhooks are server-wide)."""
    response = httpx.post(
        f"{base}/_config/webhooks/{HOOK}", json={"url": url, "secret": SECRET, "events": events}
    )
    assert response.status_code == 200, response.text


def test_localstripe_delivers_a_signed_success_that_pays_the_order(
    asgi_server, localstripe, live_shop, db
):
    tenant, payment = live_shop
    url = f"http://127.0.0.1:{asgi_server.port}/webhooks/stripe/?tenant_id={SLUG}"
    _register(localstripe, url, ["payment_intent.succeeded"])
    try:
        api = stripe.StripeClient("sk_test_live_e2e", base_addresses={"api": localstripe})
        method = api.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2040,
                    "cvc": "123",
                },
            }
        )
        api.v1.payment_intents.update(payment.stripe_id, params={"payment_method": method.id})
        assert api.v1.payment_intents.confirm(payment.stripe_id).status == "succeeded"
        deadline = time.monotonic() + 15
        while True:
            with tenant_context(tenant):
                row = Payment.objects.select_related("order").get(pk=payment.pk)
                events = list(WebhookEvent.objects.values_list("type", "outcome"))
            if row.status == "succeeded" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        _register(localstripe, url, [])  # deliver nothing more to this (soon dropped) shop
    assert (row.status, row.order.status) == ("succeeded", "paid")
    assert events == [("payment_intent.succeeded", "applied")]
