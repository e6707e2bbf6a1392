"""A crash at every step of a Stripe refund and of a PaymentIntent (issue 15, finding 1): a real
uvicorn process started with CRASH_AT=<point> (apps.common.crashpoints) kills itself with SIGKILL
at that point of `refundCreate` or `paymentIntentCreate`, so its client gets no answer; then the
request is retried (with the same `requestKey`) against a server that does not crash, or the
reconciler runs. Whatever died when, Stripe (localstripe, behind tests.faults.stripe_proxy, which
keeps idempotency keys as Stripe does) holds exactly one refund or intent, we record it once, and
the amounts agree to the cent.

Before issue 15 the Stripe call sat inside the transaction that recorded the order refund: a
crash after Stripe answered rolled the order refund back, and the retry recorded a new one with a
new idempotency key, so Stripe made a second refund (the customer got the money twice)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, User
from apps.orders.models import Order, Refund
from apps.payments import reconcile
from apps.payments.models import Payment, StripeRefund
from config.devserver.asgi_server import uvicorn_server
from tests.apps.orders import shop as orders_shop
from tests.apps.payments.fixtures import StripeShop, configure, localstripe  # noqa: F401 (a fixture)
from tests.apps.payments.test_refunds import paid_order, stripe_refunds
from tests.committed import run_committed, throwaway_tenant
from tests.conftest import PASSWORD, TenantFixture, gid, token_for
from tests.faults.stripe_proxy import StripeProxy
from tests.servers import database_url

SLUG = "faults-money"
HOST = f"{SLUG}.localhost"
DEADLINE = 30  # seconds for any one answer, and for a refund to be finished
LEASE = 2  # seconds a dead caller holds a refund before a retry may take it over
REFUND = """mutation($input: RefundCreateInput!) { refundCreate(input: $input) {
  refund { id amount { amount } stripeRefund { stripeId status amount { amount } } }
  userErrors { code message } } }"""


@pytest.fixture(scope="module")
def money_shop(
    django_db_setup,
    tenants,
    django_db_blocker,
    localstripe,  # noqa: F811
) -> Iterator[tuple[TenantFixture, StripeShop]]:
    """A committed tenant with Stripe on (localstripe), a staff member and an owner; dropped after."""
    with (
        throwaway_tenant(django_db_blocker, SLUG, "Money", domain=HOST) as tenant,
        override_settings(STRIPE_API_BASE=localstripe),
        django_db_blocker.unblock(),
    ):
        shop = TenantFixture(tenant=tenant, host=HOST)
        users = []
        for role in ("owner", "staff"):
            user = User.objects.filter(email=shop.email(role)).first() or User.objects.create_user(
                email=shop.email(role), password=PASSWORD
            )
            Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": role})
            users.append(user)
        try:
            yield shop, configure(shop)
        finally:
            for user in users:
                user.delete()


_proxy: dict[str, StripeProxy] = {}


def _server_env(crash_at: str = "") -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "SESSION_COOKIE_SECURE": "false",
        "STRIPE_API_BASE": _proxy["running"].url,
        "PAYMENTS_CALL_LEASE_SECONDS": str(LEASE),
        "CRASH_AT": crash_at,
    }


@pytest.fixture(scope="module")
def stripe_proxy(localstripe) -> Iterator[StripeProxy]:  # noqa: F811
    """What the servers take for Stripe: localstripe, with Stripe's idempotency keys."""
    with StripeProxy(localstripe) as running:
        _proxy["running"] = running
        yield running
        _proxy.clear()


@pytest.fixture(scope="module")
def steady_server(money_shop, stripe_proxy) -> Iterator[int]:
    with uvicorn_server(env=_server_env(), start_timeout=60, capture_output=True) as server:
        yield server.port


@pytest.fixture
def paid(money_shop, django_db_blocker, localstripe) -> Payment:  # noqa: F811
    """An order of 45.00 paid through Stripe, committed."""
    shop, keys = money_shop
    with override_settings(STRIPE_API_BASE=localstripe), django_db_blocker.unblock():
        return paid_order(shop, keys)


def _refund(port: int, shop: TenantFixture, payment: Payment, key: str) -> httpx.Response:
    token = token_for(shop.email("staff"), shop.tenant)
    return httpx.post(
        f"http://127.0.0.1:{port}/graphql/",
        timeout=DEADLINE,
        headers={"Host": f"{HOST}:{port}", "Authorization": f"Bearer {token}"},
        json={
            "query": REFUND,
            "variables": {
                "input": {
                    "order": gid(shop, "Order", payment.order_id),
                    "amount": "12.34",
                    "requestKey": key,
                }
            },
        },
    )


def _crashing(point: str, ask) -> None:
    """`ask(port)` of a server that dies at `point`: the client hears nothing back."""
    with uvicorn_server(env=_server_env(point), start_timeout=60, capture_output=True) as server:
        try:
            answer = ask(server.port)
        except httpx.TransportError:  # the connection dropped: no answer at all
            pass
        else:
            pytest.fail(f"the server answered instead of dying at {point}: {answer.text}")
        assert server.process.wait(timeout=DEADLINE) == -9  # SIGKILL, at the point


def _finished(shop: TenantFixture, payment: Payment, keys: StripeShop, key: str) -> None:
    """One refund of 12.34 at Stripe, recorded once, with the order refund the key made."""
    (at_stripe,) = stripe_refunds(keys, payment)
    assert at_stripe.amount == 1234
    with tenant_context(shop.tenant):
        (row,) = StripeRefund.objects.filter(payment=payment)
        (order_refund,) = Refund.objects.filter(order_id=payment.order_id)
        refunded = Payment.objects.get(pk=payment.pk).amount_refunded
    assert (row.stripe_id, row.status, row.amount) == (at_stripe.id, "succeeded", Decimal("12.34"))
    assert (order_refund.request_key, order_refund.amount, row.order_refund_id) == (
        key,
        Decimal("12.34"),
        order_refund.pk,
    )
    assert refunded == Decimal("12.34")


@pytest.mark.parametrize(
    "point", ["refund.before_call", "refund.after_answer", "refund.before_commit"]
)
def test_a_crash_at_any_step_then_a_retry_with_the_same_key_refunds_once(
    point,
    money_shop,
    paid,
    steady_server,
    localstripe,  # noqa: F811
    django_db_blocker,
    db,
):
    shop, keys = money_shop
    key = f"crash-{point}-{paid.pk}"
    with django_db_blocker.unblock():
        _crashing(point, lambda port: _refund(port, shop, paid, key))
        # Retried until the dead caller's lease runs out and the retry finishes the refund.
        deadline = time.monotonic() + DEADLINE
        while True:
            answer = _refund(steady_server, shop, paid, key).json()["data"]["refundCreate"]
            assert answer["userErrors"] == [], answer
            if answer["refund"]["stripeRefund"]["status"] == "SUCCEEDED":
                break
            assert answer["refund"]["stripeRefund"]["status"] == "REQUESTED"
            assert time.monotonic() < deadline, "the retry never finished the refund"
            time.sleep(0.2)
        with override_settings(STRIPE_API_BASE=localstripe):
            _finished(shop, paid, keys, key)
            again = _refund(steady_server, shop, paid, key).json()["data"]["refundCreate"]
            assert again["refund"]["stripeRefund"]["stripeId"] == stripe_refunds(keys, paid)[0].id
            _finished(shop, paid, keys, key)


def test_without_a_retry_the_reconciler_finishes_a_refund_cut_off_after_stripe_made_it(
    money_shop,
    paid,
    stripe_proxy,
    localstripe,  # noqa: F811
    django_db_blocker,
    db,
):
    shop, keys = money_shop
    key = f"crash-reconciled-{paid.pk}"
    with django_db_blocker.unblock():
        _crashing("refund.after_answer", lambda port: _refund(port, shop, paid, key))
        with tenant_context(shop.tenant):
            assert StripeRefund.objects.get(payment=paid).status == "requested"
        assert len(stripe_refunds(keys, paid)) == 1  # Stripe made it; we never heard
        time.sleep(LEASE)
        with override_settings(STRIPE_API_BASE=localstripe, PAYMENTS_RECONCILE_AFTER_SECONDS=0):
            done = run_committed(shop.tenant, reconcile.reconcile)
            assert done == {"refunds": 1, "intents": 0, "cancelled": 0, "not_finished": 0}
            _finished(shop, paid, keys, key)
            assert run_committed(shop.tenant, reconcile.reconcile)["refunds"] == 0  # nothing left


INTENT = """mutation($order: ID!) { paymentIntentCreate(order: $order) {
  clientSecret payment { id stripeId attempt } userErrors { code message } } }"""


def _intent(port: int, shop: TenantFixture, order_id: int) -> httpx.Response:
    token = token_for(shop.email("staff"), shop.tenant)
    return httpx.post(
        f"http://127.0.0.1:{port}/graphql/",
        timeout=DEADLINE,
        headers={"Host": f"{HOST}:{port}", "Authorization": f"Bearer {token}"},
        json={"query": INTENT, "variables": {"order": gid(shop, "Order", order_id)}},
    )


@pytest.fixture
def pending_order(money_shop, django_db_blocker) -> Order:
    """An order of 3 x 19.99 waiting for payment, committed."""
    shop, _ = money_shop
    with django_db_blocker.unblock(), tenant_context(shop.tenant):
        return orders_shop.place(shop, [(orders_shop.variant("19.99", stock=5), 3)])


@pytest.mark.parametrize(
    "point", ["intent.before_call", "intent.after_answer", "intent.before_commit"]
)
def test_a_crash_at_any_step_of_an_intent_then_a_retry_makes_one_intent(
    point, money_shop, pending_order, steady_server, stripe_proxy, django_db_blocker, db
):
    shop, _ = money_shop
    order = pending_order
    with django_db_blocker.unblock():
        _crashing(point, lambda port: _intent(port, shop, order.pk))
        answer = _intent(steady_server, shop, order.pk).json()["data"]["paymentIntentCreate"]
        assert answer["userErrors"] == [] and answer["payment"]["attempt"] == 1
        (intent,) = stripe_proxy.objects(
            "payment_intents",
            metadata={"tenant": shop.tenant.schema_name, "order_id": str(order.pk)},
        )
        assert (answer["payment"]["stripeId"], intent["amount"]) == (intent["id"], 5997)
        assert answer["clientSecret"].startswith(intent["id"])
        with tenant_context(shop.tenant):
            assert list(
                Payment.objects.filter(order_id=order.pk).values_list("stripe_id", "attempt")
            ) == [(intent["id"], 1)]
