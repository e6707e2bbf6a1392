"""Money that should not stay taken, and intents that should not stay open.

- An order paid manually, or cancelled, while a Stripe PaymentIntent of it is still open: the
  intent is cancelled at Stripe, so the buyer can no longer pay it (`cancel_open_intents`).
- Money Stripe took anyway for an order that no longer waited for it (cancelled meanwhile, or
  paid another way: a race with the cancellation above, or a second intent): the payment is
  marked with an OrderEvent `payment_unexpected` (apps.payments.state), and `return_payment`
  refunds what is left of it at Stripe. That refund has no order refund (the order never counted
  this money); the order gets an OrderEvent `payment_returned`.

Both talk to Stripe, so they run as tasks queued when the write that calls for them commits
(apps.payments.tasks), and neither calls Stripe inside a transaction: a cancellation asks Stripe
first and records its answer after (statuses only move up, so a late or repeated answer changes
nothing); a return is recorded as a requested Stripe refund in the very transaction that marks the
payment unexpected (apps.payments.state.record_return) and made by apps.payments.refunds.settle,
which never makes it twice. A Stripe that cannot be reached is
retried by those tasks with the one policy (apps.common.retry). Both may run twice: the second
run finds nothing left to do. A task whose message was lost (queued while the broker was down) or
whose retries ran out is made up for by the reconciler (apps.payments.reconcile): it makes
requested refunds, and cancels the open intents of orders no longer waiting."""

from __future__ import annotations

import logging

import stripe
from django.db import transaction

from apps.orders.models import OrderEvent
from apps.payments import gateway, refunds, selectors, state
from apps.payments.models import Payment, PaymentStatus, Provider, StripeRefund, StripeRefundStatus
from apps.payments.state import CLEAN_UP, UNEXPECTED
from tenants.db import connection

log = logging.getLogger(__name__)


def cancel_open_intents(*, order_id: int) -> list[Payment]:
    """Cancel at Stripe every still-pending Stripe payment of the order; each ends as Stripe
    says it is (one that succeeded meanwhile goes the unexpected-payment way)."""
    ids = Payment.objects.filter(
        order_id=order_id, provider=Provider.STRIPE, status=PaymentStatus.PENDING
    )
    return [
        payment
        for pk in ids.values_list("pk", flat=True)
        if (payment := _cancel_intent(pk)) is not None
    ]


def _cancel_intent(payment_id: int) -> Payment | None:
    payment = (
        Payment.objects.filter(pk=payment_id, status=PaymentStatus.PENDING)
        .exclude(stripe_id="")
        .first()
    )
    if (
        payment is None
    ):  # settled meanwhile, or its intent never made (the reconciler makes and cancels it)
        return None
    api = gateway.api_for(selectors.payment_settings(), "payment")
    try:
        intent = api.v1.payment_intents.cancel(
            payment.stripe_id,
            options={"idempotency_key": f"{connection.schema_name}:cancel-{payment.pk}"},
        )
    except stripe.InvalidRequestError:  # not cancellable any more: it succeeded or was cancelled
        intent = gateway.call(api.v1.payment_intents.retrieve, payment.stripe_id)
    # Any other Stripe error goes up as it is, for the task's retry policy to judge
    # (apps.common.retry): unreachable or 5xx is retried, a refusal is not.
    status, code, message = state.intent_state(intent.to_dict())
    with transaction.atomic():
        payment = state.lock_payment(payment_id)
        state.apply_state(
            payment, status, actor=CLEAN_UP, failure_code=code, failure_message=message
        )
    return payment


@transaction.atomic
def _record_return(payment_id: int) -> StripeRefund | None:
    """The requested refund of what is left of a payment marked unexpected (recorded now, or by
    an earlier run that did not finish); None when there is nothing to return."""
    payment = state.locked_payment(pk=payment_id)
    if (
        payment is None
        or payment.provider != Provider.STRIPE
        or payment.status != PaymentStatus.SUCCEEDED
    ):
        return None
    if not OrderEvent.objects.filter(
        order_id=payment.order_id, type=UNEXPECTED, data__payment=payment.pk
    ).exists():
        return None
    unfinished = StripeRefund.objects.filter(
        payment=payment,
        order_refund=None,
        from_dashboard=False,
        status=StripeRefundStatus.REQUESTED,
    ).first()
    if unfinished is not None:
        return unfinished
    refund = state.record_return(payment, actor=CLEAN_UP)
    if refund is not None:  # marked without it (its last return failed at Stripe, say)
        log.warning(
            "Payment %s succeeded for order %s, which is %s: returning %s",
            payment.pk,
            payment.order_id,
            payment.order.status,
            refund.amount,
        )
    return refund


def return_payment(*, payment_id: int) -> StripeRefund | None:
    """Refund at Stripe what is left of a payment marked unexpected; None when there is nothing
    to return (not marked, not succeeded, or returned already)."""
    refund = _record_return(payment_id)
    return None if refund is None else refunds.settle(refund.pk, actor=CLEAN_UP)
