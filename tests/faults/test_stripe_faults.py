"""Stripe answering 500, 429 and timing out (issue 15): calls are retried and converge, and nothing
is charged or refunded twice. Stripe is localstripe behind a fault-injecting proxy
(tests.faults.stripe_proxy), which also gives localstripe Stripe's idempotency: without it a
retried POST would do the work again where Stripe replays its first answer.

Three layers are proven: the proxy itself; the SDK's own retries within one call (the same
idempotency key on each, so one intent at Stripe whatever the first attempt met); and the
payment clean-up tasks under the one retry policy (apps.common.retry) facing faults that outlast
the SDK's retries, driven through Celery's `apply()` as tests/apps/payments/test_retries.py
drives them (an eager retry runs at once; its countdown is read off `task_retry`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import stripe
from django_tenants.utils import tenant_context

from apps.common import retry
from apps.orders.models import OrderEvent
from apps.payments import gateway, services, tasks, webhooks
from apps.payments.models import Payment, StripeRefund
from tests.apps.orders import shop
from tests.apps.orders.shop import staff
from tests.apps.payments.fixtures import StripeShop, configure
from tests.apps.payments.test_refunds import CARD, paid_order
from tests.conftest import gid
from tests.faults.stripe_proxy import StripeProxy
from tests.retries import retries_of

TIMEOUT = (
    1.0  # STRIPE_TIMEOUT_SECONDS here: what each held request costs (localstripe answers in ms)
)
SDK_ATTEMPTS = 3  # one call, then the SDK's max_network_retries=2, all with the same key
INTENT = """mutation($order: ID!) { paymentIntentCreate(order: $order) {
  clientSecret payment { id stripeId status amount { amount } } userErrors { code message } } }"""


@pytest.fixture
def proxy(localstripe) -> Iterator[StripeProxy]:
    with StripeProxy(localstripe) as running:
        yield running


@pytest.fixture
def keys(alpha, stripe_api, settings) -> StripeShop:
    settings.STRIPE_TIMEOUT_SECONDS = TIMEOUT
    return configure(alpha)


@pytest.fixture
def through_proxy(settings, proxy, keys) -> StripeProxy:
    """The app's Stripe calls go through the proxy from here on (set-up went to localstripe)."""
    settings.STRIPE_API_BASE = proxy.url
    return proxy


def sdk(
    proxy: StripeProxy, *, retries: int = 0, secret: str = "sk_test_proxy_itself"
) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret,
        base_addresses={"api": proxy.url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
    )


def outcomes(proxy: StripeProxy, method: str, path: str) -> list[str]:
    return [e.outcome for e in proxy.exchanges if e.method == method and e.path == path]


# --- the proxy itself -------------------------------------------------------------------------


def test_faults_fire_in_the_order_scripted_and_only_on_their_route(proxy):
    api = sdk(proxy)
    proxy.fail_next(1, status=429, method="POST", path="/v1/customers")
    proxy.fail_next(1, status=500, method="POST", path="/v1/customers")
    proxy.time_out_next(1, method="POST", path="/v1/customers")
    proxy.time_out_next(1, after_forwarding=True, method="POST", path="/v1/customers")
    assert api.v1.customers.list().object == "list"  # a GET: not on the faults' route

    def made(tag: str) -> stripe.Customer:
        return api.v1.customers.create(params={"metadata": {"proxy_test": tag}})

    with pytest.raises(stripe.RateLimitError) as limited:
        made("a")
    assert (
        limited.value.http_status == 429
        and limited.value.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    )
    assert limited.value.json_body["error"]["code"] == "rate_limit"
    with pytest.raises(stripe.APIError) as failed:
        made("b")
    assert (
        failed.value.http_status == 500 and failed.value.json_body["error"]["type"] == "api_error"
    )
    with pytest.raises(stripe.APIConnectionError):
        made("c")  # held, never forwarded
    with pytest.raises(stripe.APIConnectionError):
        made("d")  # held after localstripe made it: the nasty case
    assert proxy.faults_left() == 0
    made("e")

    assert outcomes(proxy, "POST", "/v1/customers") == [
        "failed",
        "failed",
        "timed out",
        "timed out",
        "forwarded",
    ]
    assert proxy.forwarded("POST", "/v1/customers") == 2 and proxy.forwarded("GET") == 1
    made_at_stripe = {
        tag: len(proxy.objects("customers", metadata={"proxy_test": tag})) for tag in "abcde"
    }
    assert made_at_stripe == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1}


def test_a_repeated_idempotency_key_replays_the_first_answer(proxy):
    """Same key and parameters: the first status and body again, localstripe not asked; other
    parameters: Stripe's 400 idempotency_error; keys are per account (secret key); a request
    refused as invalid saves nothing (Stripe saves no result for a validation failure)."""

    def post(data: dict, *, key: str = "replay-1", secret: str = "sk_test_one") -> httpx.Response:
        return httpx.post(
            f"{proxy.url}/v1/customers",
            data=data,
            auth=(secret, ""),
            headers={"Idempotency-Key": key},
            timeout=10,
        )

    first = post({"metadata[proxy_test]": "replay", "email": "a@example.com"})
    again = post(
        {"email": "a@example.com", "metadata[proxy_test]": "replay"}
    )  # same, in another order
    assert first.status_code == again.status_code == 200 and again.content == first.content
    assert (
        again.headers["Idempotent-Replayed"] == "true"
        and "Idempotent-Replayed" not in first.headers
    )

    other = post({"metadata[proxy_test]": "replay", "email": "b@example.com"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    elsewhere = post(
        {"metadata[proxy_test]": "replay", "email": "a@example.com"}, secret="sk_test_two"
    )
    assert elsewhere.status_code == 200 and elsewhere.json()["id"] != first.json()["id"]

    refused = [post({"no_such_parameter": "x"}, key="replay-2").status_code for _ in range(2)]
    assert refused == [400, 400]
    assert outcomes(proxy, "POST", "/v1/customers") == [
        "forwarded",
        "replayed",
        "idempotency error",
        "forwarded",
        "forwarded",
        "forwarded",
    ]
    assert proxy.forwarded("POST", "/v1/customers") == 4
    assert len(proxy.objects("customers", metadata={"proxy_test": "replay"})) == 2


def test_an_injected_failure_saves_nothing_so_the_retry_does_the_work(proxy):
    """As at Stripe, only a request whose endpoint began executing saves its answer."""
    api = sdk(proxy, retries=2)
    proxy.fail_next(1, status=500, method="POST", path="/v1/customers")
    made = api.v1.customers.create(
        params={"metadata": {"proxy_test": "saves-nothing"}},
        options={"idempotency_key": "saves-nothing"},
    )
    assert outcomes(proxy, "POST", "/v1/customers") == ["failed", "forwarded"]
    assert [
        c["id"] for c in proxy.objects("customers", metadata={"proxy_test": "saves-nothing"})
    ] == [made.id]


def test_a_key_whose_first_request_is_still_at_stripe_is_in_use(proxy):
    """A second request with the key while the first is still being worked on gets Stripe's 409
    (which the SDK retries), and saves nothing. The first is kept "at Stripe" by a second proxy
    behind this one that holds it; stopping that one leaves it unanswered."""
    with StripeProxy(proxy.url) as front:

        def post() -> httpx.Response:
            return httpx.post(
                f"{front.url}/v1/customers",
                data={"metadata[proxy_test]": "in-use"},
                auth=("sk_test_one", ""),
                headers={"Idempotency-Key": "in-use"},
                timeout=10,
            )

        proxy.time_out_next(1)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(post)
            deadline = time.monotonic() + 5
            while not proxy.exchanges and time.monotonic() < deadline:
                time.sleep(0.01)
            second = post()
            proxy.stop()
            assert first.result().status_code == 502  # nothing answered it: nothing saved
        error = second.json()["error"]
        assert (second.status_code, error["type"], error["code"]) == (
            409,
            "idempotency_error",
            "idempotency_key_in_use",
        )
        assert [e.outcome for e in front.exchanges] == [
            "in use",
            "upstream error",
        ] and front.forwarded() == 0


def test_a_hung_stripe_is_given_up_after_the_timeout_setting(proxy, settings):
    """STRIPE_TIMEOUT_SECONDS bounds each attempt of the app's client (the SDK waits 80 s): three
    held attempts (the call and the SDK's two retries) end in about 3 timeouts and the SDK's
    sleeps, an APIConnectionError the policy retries."""
    settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS = proxy.url, 0.3
    proxy.time_out_next(SDK_ATTEMPTS, method="GET")
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as hung:
        gateway.client("sk_test_hung").v1.customers.list()
    took = time.monotonic() - started  # 3 x 0.3 s, and the SDK's sleeps: 0.5 s, then 0.5 to 1 s
    assert 0.9 <= took < 6.0 and retry.is_retryable(hung.value)
    assert outcomes(proxy, "GET", "/v1/customers") == ["timed out"] * SDK_ATTEMPTS


# --- the SDK's own retries: one call, one intent ------------------------------------------------

SCRIPTS: dict[str, tuple[Callable[[StripeProxy], None], list[str]]] = {
    "500": (
        lambda p: p.fail_next(1, status=500, method="POST", path="/v1/payment_intents$"),
        ["failed", "forwarded"],
    ),
    "timeout before forwarding": (
        lambda p: p.time_out_next(1, method="POST", path="/v1/payment_intents$"),
        ["timed out", "forwarded"],
    ),
    "timeout after forwarding": (
        lambda p: p.time_out_next(
            1, after_forwarding=True, method="POST", path="/v1/payment_intents$"
        ),
        ["timed out", "replayed"],
    ),
}


@pytest.mark.parametrize("fault", list(SCRIPTS))
def test_an_intent_whose_first_attempt_failed_is_made_once(gql, alpha, through_proxy, fault):
    script, seen = SCRIPTS[fault]
    with tenant_context(alpha.tenant):
        order = shop.place(alpha, [(shop.variant("19.99", stock=5), 3)])  # 59.97
    script(through_proxy)
    result = gql.post(
        INTENT, {"order": gid(alpha, "Order", order.pk)}, host=alpha.host, token=staff(alpha)
    ).data["paymentIntentCreate"]

    assert result["userErrors"] == [] and result["payment"]["amount"] == {"amount": "59.97"}
    schema = alpha.tenant.schema_name
    (intent,) = through_proxy.objects(
        "payment_intents", metadata={"tenant": schema, "order_id": str(order.pk)}
    )
    assert (intent["id"], intent["amount"], intent["currency"]) == (
        result["payment"]["stripeId"],
        5997,
        "usd",
    )
    assert result["clientSecret"] == intent["client_secret"]
    with tenant_context(alpha.tenant):
        assert list(Payment.objects.filter(order=order).values_list("stripe_id", flat=True)) == [
            intent["id"]
        ]
    assert through_proxy.forwarded("POST", "/v1/payment_intents$") == 1
    assert outcomes(through_proxy, "POST", "/v1/payment_intents") == seen
    keys = {e.idempotency_key for e in through_proxy.exchanges if e.path == "/v1/payment_intents"}
    assert keys == {f"{schema}:order-{order.pk}:attempt-1"}


def test_an_intent_asked_again_after_every_attempt_was_lost_is_the_first_one(
    gql, alpha, through_proxy
):
    """The nasty case end to end: Stripe made the intent but no attempt of the call heard back, so
    the mutation answered an error, with the attempt recorded and no intent yet; asked again, the
    same idempotency key (the attempt's) gets Stripe's first answer: one intent, one payment."""
    with tenant_context(alpha.tenant):
        order = shop.place(alpha, [(shop.variant("19.99", stock=5), 3)])
    through_proxy.time_out_next(
        SDK_ATTEMPTS, after_forwarding=True, method="POST", path="/v1/payment_intents$"
    )

    def ask() -> dict:
        return gql.post(
            INTENT, {"order": gid(alpha, "Order", order.pk)}, host=alpha.host, token=staff(alpha)
        ).data["paymentIntentCreate"]

    lost = ask()
    assert [e["code"] for e in lost["userErrors"]] == ["PROVIDER_ERROR"] and lost["payment"] is None
    with tenant_context(alpha.tenant):
        assert list(Payment.objects.filter(order=order).values_list("stripe_id", "status")) == [
            ("", "pending")
        ]
    again = ask()

    assert again["userErrors"] == []
    (intent,) = through_proxy.objects(
        "payment_intents", metadata={"tenant": alpha.tenant.schema_name, "order_id": str(order.pk)}
    )
    assert (again["payment"]["stripeId"], intent["amount"]) == (intent["id"], 5997)
    with tenant_context(alpha.tenant):
        assert list(Payment.objects.filter(order=order).values_list("stripe_id", flat=True)) == [
            intent["id"]
        ]
    assert through_proxy.forwarded("POST", "/v1/payment_intents$") == 1
    assert outcomes(through_proxy, "POST", "/v1/payment_intents") == [
        "timed out"
    ] * SDK_ATTEMPTS + ["replayed"]


REFUND = """mutation($input: RefundCreateInput!) { refundCreate(input: $input) {
  refund { stripeRefund { stripeId status } } userErrors { code message } } }"""


@pytest.mark.parametrize("fault", ["500", "429", "timeout after forwarding"])
def test_a_refund_through_the_api_facing_a_faulty_stripe_is_made_once(
    gql, alpha, keys, settings, proxy, fault
):
    """refundCreate facing a Stripe that fails every attempt of the call: the refund is recorded
    as REQUESTED and the client reads PROVIDER_ERROR; once Stripe is well again, the same
    requestKey ends with one refund at Stripe, to the cent, even when Stripe had made it the first
    time (a timeout after forwarding: found by its metadata, not made again)."""
    payment = paid_order(alpha, keys)  # 45.00, paid at localstripe directly
    settings.STRIPE_API_BASE = proxy.url
    if fault == "429":  # the SDK never retries a 429: one spoils the call
        proxy.fail_next(1, status=429, method="POST", path="/v1/refunds")
    elif fault == "500":
        proxy.fail_next(SDK_ATTEMPTS, status=500, method="POST", path="/v1/refunds")
    else:
        proxy.time_out_next(SDK_ATTEMPTS, after_forwarding=True, method="POST", path="/v1/refunds")

    def ask() -> dict:
        variables = {
            "input": {
                "order": gid(alpha, "Order", payment.order_id),
                "amount": "12.34",
                "requestKey": f"faulty-{fault}",
            }
        }
        return gql.post(REFUND, variables, host=alpha.host, token=staff(alpha)).data["refundCreate"]

    first = ask()
    assert [e["code"] for e in first["userErrors"]] == ["PROVIDER_ERROR"]
    with tenant_context(alpha.tenant):
        assert list(
            StripeRefund.objects.filter(payment=payment).values_list("status", flat=True)
        ) == ["requested"]
    again = ask()
    assert again["userErrors"] == [] and again["refund"]["stripeRefund"]["status"] == "SUCCEEDED"
    (at_stripe,) = proxy.objects("refunds", payment_intent=payment.stripe_id)
    assert (at_stripe["id"], at_stripe["amount"]) == (
        again["refund"]["stripeRefund"]["stripeId"],
        1234,
    )
    assert _reload(alpha, payment).amount_refunded == Decimal("12.34")


# --- the clean-up tasks under the retry policy: faults that outlast the SDK's retries -----------


@dataclass(frozen=True)
class Scenario:
    """A fault for the call's route, what the proxy then sees on that route, and how many
    retries the task needs: each scripted fault spoils a whole run of the task (all of the SDK's
    attempts), so it is the policy's retry that converges."""

    script: Callable[[StripeProxy, str], None]  # (the proxy, the call's route)
    seen: list[str]
    task_retries: int


FAULTS = {
    "500": Scenario(
        lambda p, route: p.fail_next(SDK_ATTEMPTS, status=500, method="POST", path=route),
        ["failed"] * SDK_ATTEMPTS + ["forwarded"],
        1,
    ),
    # The SDK never retries a 429 (Stripe sends no Stripe-Should-Retry with it): each spoils a run.
    "429 twice": Scenario(
        lambda p, route: p.fail_next(2, status=429, method="POST", path=route),
        ["failed", "failed", "forwarded"],
        2,
    ),
    "timeout after forwarding": Scenario(
        lambda p, route: p.time_out_next(
            SDK_ATTEMPTS, after_forwarding=True, method="POST", path=route
        ),
        ["timed out"] * SDK_ATTEMPTS + ["replayed"],
        1,
    ),
}


def _intent(fixture, keys: StripeShop, *, pay_at_stripe: bool = False) -> Payment:
    """A pending order of 3 x 19.99 = 59.97 with an open intent, made at localstripe directly;
    `pay_at_stripe`: the buyer paid it there, and we have not heard of it yet."""
    with tenant_context(fixture.tenant):
        order = shop.place(fixture, [(shop.variant("19.99", stock=5), 3)])
        payment, _ = services.create_intent(actor=shop.actor(fixture), order_id=order.pk)
    if pay_at_stripe:
        api = keys.api()
        method = api.v1.payment_methods.create(params=CARD)
        api.v1.payment_intents.update(payment.stripe_id, params={"payment_method": method.id})
        assert api.v1.payment_intents.confirm(payment.stripe_id).status == "succeeded"
    return payment


def _unexpected(fixture, keys: StripeShop) -> Payment:
    """Money Stripe took for an order cancelled meanwhile: marked to be returned."""
    payment = _intent(fixture, keys, pay_at_stripe=True)
    paid = keys.api().v1.payment_intents.retrieve(payment.stripe_id).to_dict()
    with tenant_context(fixture.tenant):
        services.orders.cancel_order(actor=shop.actor(fixture), order_id=payment.order_id)
        stored, _ = webhooks.receive_event(
            event={
                "id": f"evt_paid_late_{payment.pk}",
                "type": "payment_intent.succeeded",
                "data": {"object": paid},
            }
        )
    assert stored.outcome == "applied"
    return payment


def _under_policy(fixture, task, *args) -> list:
    """Run `task` as a worker would (Celery's `apply()`; a retry runs at once); the retries it
    asked for, each checked against the policy's ceiling for its turn."""
    with retries_of(task) as asked, tenant_context(fixture.tenant):
        task.apply(args=args).get()  # get(): raises what failed it for good
    assert all(0 <= retried.when <= retry.ceiling(turn) for turn, retried in enumerate(asked))
    return asked


def _reload(fixture, payment: Payment) -> Payment:
    with tenant_context(fixture.tenant):
        return Payment.objects.get(pk=payment.pk)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_an_intent_cancellation_facing_a_faulty_stripe_cancels_once(
    alpha, keys, proxy, settings, fault
):
    payment = _intent(alpha, keys)
    with tenant_context(alpha.tenant):
        services.mark_paid(actor=shop.actor(alpha), order_id=payment.order_id)
    settings.STRIPE_API_BASE = proxy.url
    FAULTS[fault].script(proxy, "/v1/payment_intents/*/cancel")

    asked = _under_policy(alpha, tasks.cancel_open_intents, payment.order_id)

    cancel = f"/v1/payment_intents/{payment.stripe_id}/cancel"
    assert proxy.forwarded("POST", cancel) == 1  # one cancellation reached Stripe
    (intent,) = proxy.objects("payment_intents", id=payment.stripe_id)
    assert intent["status"] == "canceled" and _reload(alpha, payment).status == "canceled"
    assert (
        len(asked) == FAULTS[fault].task_retries
        and outcomes(proxy, "POST", cancel) == FAULTS[fault].seen
    )
    assert {e.idempotency_key for e in proxy.exchanges if e.path == cancel} == {
        f"{alpha.tenant.schema_name}:cancel-{payment.pk}"
    }


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_payment_return_facing_a_faulty_stripe_refunds_once_to_the_cent(
    alpha, keys, proxy, settings, fault
):
    payment = _unexpected(alpha, keys)
    settings.STRIPE_API_BASE = proxy.url
    FAULTS[fault].script(proxy, "/v1/refunds")

    asked = _under_policy(alpha, tasks.return_payment, payment.pk)

    at_stripe = proxy.objects("refunds", payment_intent=payment.stripe_id)
    assert [r["amount"] for r in at_stripe] == [5997] and proxy.forwarded(
        "POST", "/v1/refunds"
    ) == 1
    (refund,) = at_stripe
    assert refund["metadata"]["returned_payment"] == str(payment.pk)
    with tenant_context(alpha.tenant):
        recorded = list(
            StripeRefund.objects.filter(payment=payment).values_list("stripe_id", "amount")
        )
        returned = OrderEvent.objects.filter(
            order_id=payment.order_id, type="payment_returned"
        ).count()
    assert recorded == [(refund["id"], Decimal("59.97"))] and returned == 1
    assert _reload(alpha, payment).amount_refunded == Decimal("59.97")
    assert len(asked) == FAULTS[fault].task_retries
    # A retry first asks Stripe whether the refund was made (apps.payments.refunds.settle): after
    # a timeout that Stripe outlived, it finds it and asks for no other.
    seen = (
        ["timed out"] * SDK_ATTEMPTS if fault == "timeout after forwarding" else FAULTS[fault].seen
    )
    assert outcomes(proxy, "POST", "/v1/refunds") == seen
    assert len(outcomes(proxy, "GET", "/v1/refunds")) == FAULTS[fault].task_retries
    with tenant_context(alpha.tenant):
        row = StripeRefund.objects.get(payment=payment)
    assert {
        e.idempotency_key for e in proxy.exchanges if e.path == "/v1/refunds" and e.method == "POST"
    } == {f"{alpha.tenant.schema_name}:stripe-refund-{row.pk}"}
