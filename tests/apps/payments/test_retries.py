"""The payment clean-up tasks under the one retry policy (apps.common.retry), against a Stripe that
cannot be reached (nothing listens on the port STRIPE_API_BASE names) and then can (localstripe).

The tasks run through Celery's own `apply()` (the worker's tracer, in this test's transaction,
not propagating errors, as a worker does not); an eager retry runs at once, and the countdown
it asked for is read off Celery's `task_retry` signal (tests.retries), which carries the `Retry`
a worker would act on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import stripe
from django_tenants.utils import tenant_context

from apps.common import retry
from apps.payments import services, tasks, webhooks
from apps.payments.models import Payment
from tests.apps.orders import shop
from tests.apps.payments.fixtures import StripeShop, _free_port, configure
from tests.apps.payments.test_cleanup import open_intent, reload
from tests.apps.payments.test_refunds import stripe_refunds
from tests.retries import retries_of


@pytest.fixture
def keys(alpha, stripe_api) -> StripeShop:
    return configure(alpha)


@dataclass
class Outage:
    """`begin()`: Stripe cannot be reached (nothing listens where STRIPE_API_BASE points, so
    connections are refused); `end()`: it answers again."""

    settings: Any
    stripe_api: str

    def begin(self) -> None:
        self.settings.STRIPE_API_BASE = f"http://127.0.0.1:{_free_port()}"

    def end(self) -> None:
        self.settings.STRIPE_API_BASE = self.stripe_api


@pytest.fixture
def outage(settings, stripe_api) -> Outage:
    return Outage(settings, stripe_api)


def unexpected_payment(fixture, keys: StripeShop) -> Payment:
    """Money Stripe took for an order cancelled meanwhile: marked to be returned."""
    payment = open_intent(fixture, keys, pay_at_stripe=True)
    paid = keys.api().v1.payment_intents.retrieve(payment.stripe_id).to_dict()
    with tenant_context(fixture.tenant):
        services.orders.cancel_order(actor=shop.actor(fixture), order_id=payment.order_id)
        stored, _ = webhooks.receive_event(
            event={
                "id": "evt_paid_late",
                "type": "payment_intent.succeeded",
                "data": {"object": paid},
            }
        )
    assert stored.outcome == "applied" and reload(fixture, payment).order.status == "cancelled"
    return payment


def test_an_unreachable_stripe_retries_the_return_after_the_policys_backoff(alpha, keys, outage):
    """The first retry waits at most the policy's first ceiling (10 s), not Celery's default
    delay (180 s); once Stripe answers again the retry returns the money."""
    payment = unexpected_payment(alpha, keys)
    outage.begin()
    with retries_of(tasks.return_payment, then=outage.end) as asked, tenant_context(alpha.tenant):
        tasks.return_payment.apply(args=(payment.pk,)).get()  # get(): raises what failed it
    (first,) = asked
    assert first.when is not None and 0 <= first.when <= retry.ceiling(0)
    assert "could not be reached" in str(
        first.exc
    )  # the services' UserError from APIConnectionError
    after = reload(alpha, payment)
    assert (after.status, after.amount_refunded) == ("succeeded", Decimal("30.00"))
    assert [refund.amount for refund in stripe_refunds(keys, payment)] == [3000]


def test_an_unreachable_stripe_retries_the_cancellation_of_an_intent(alpha, keys, outage):
    """stripe.APIConnectionError is not an OSError: it must be named to be retried."""
    payment = open_intent(alpha, keys)
    with tenant_context(alpha.tenant):
        services.mark_paid(actor=shop.actor(alpha), order_id=payment.order_id)
    outage.begin()
    with (
        retries_of(tasks.cancel_open_intents, then=outage.end) as asked,
        tenant_context(alpha.tenant),
    ):
        tasks.cancel_open_intents.apply(args=(payment.order_id,)).get()
    (first,) = asked
    assert isinstance(first.exc, stripe.APIConnectionError) and 0 <= first.when <= retry.ceiling(0)
    assert keys.api().v1.payment_intents.retrieve(payment.stripe_id).status == "canceled"
    assert reload(alpha, payment).status == "canceled"


@pytest.fixture
def failures() -> Iterator[list[logging.LogRecord]]:
    """What the policy logs (read from its own logger: Celery may re-configure the root's)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append
    logger = logging.getLogger(retry.__name__)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_a_refusal_is_not_retried_and_is_logged_for_staff(alpha, keys, failures):
    """Stripe switched off for the shop after the intent was opened: no retry can change that."""
    payment = open_intent(alpha, keys)
    configure(alpha, stripe_enabled=False)
    with retries_of(tasks.cancel_open_intents) as asked, tenant_context(alpha.tenant):
        result = tasks.cancel_open_intents.apply(args=(payment.order_id,), task_id="cancel-task-1")
    assert asked == [] and result.failed()
    (record,) = failures
    assert record.levelno == logging.ERROR
    assert "cancel-task-1" in record.getMessage() and "alpha" in record.getMessage()
    assert "not retryable" in record.getMessage()
    assert reload(alpha, payment).status == "pending"
