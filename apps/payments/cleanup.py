"""Money that should not stay taken, and intents that should not stay open.

- An order paid manually, or cancelled, while a Stripe PaymentIntent of it is still open: the
  intent is cancelled at Stripe, so the buyer can no longer pay it (`cancel_open_intents`).
- Money Stripe took anyway for an order that no longer waited for it (cancelled meanwhile, or
  paid another way: a race with the cancellation above, or a second intent): the webhook marks
  the payment with an OrderEvent `payment_unexpected`, and `return_payment` refunds all of it at
  Stripe. That refund has no order refund (the order never counted this money); the order gets
  an OrderEvent `payment_returned`.

Both talk to Stripe, so they run as tasks queued when the write that calls for them commits
(apps.payments.tasks): the webhook answers fast and no transaction waits on Stripe for them. A
Stripe that cannot be reached is retried by those tasks with the one policy (apps.common.retry).
Both may run twice: the second run finds nothing left to do (and Stripe's idempotency keys make
a retried call return the first answer)."""

from __future__ import annotations

import logging

import stripe
from django.db import connection, transaction

from apps.audit import services as audit
from apps.common.outages import after_commit
from apps.orders.models import OrderEvent
from apps.payments import selectors, services
from apps.payments import stripe_client as edge
from apps.payments.models import Payment, PaymentStatus, Provider, StripeRefund

log = logging.getLogger(__name__)

CLEAN_UP = services.SystemActor(email="Payment clean-up")
UNEXPECTED = "payment_unexpected"


def _queue(task, *args) -> None:
    schema = connection.schema_name
    after_commit(lambda: task.apply_async(args, headers={"_schema_name": schema}))


def queue_return(payment: Payment) -> None:
    """Mark a payment that took money its order no longer waited for, and queue its return."""
    from apps.payments.tasks import return_payment

    OrderEvent.objects.create(order_id=payment.order_id, type=UNEXPECTED,
                              data={"payment": payment.pk, "orderStatus": payment.order.status},
                              actor_email=CLEAN_UP.email)
    log.warning("Payment %s succeeded for order %s, which is %s: returning it", payment.pk, payment.order_id,
                payment.order.status)
    _queue(return_payment, payment.pk)


def queue_intent_cancellation(order_id: int) -> None:
    """Inside the transaction that stops an order waiting for payment: cancel its open intents
    once that commits."""
    from apps.payments.tasks import cancel_open_intents

    if Payment.objects.filter(order_id=order_id, provider=Provider.STRIPE, status=PaymentStatus.PENDING).exists():
        _queue(cancel_open_intents, order_id)


def cancel_open_intents(*, order_id: int) -> list[Payment]:
    """Cancel at Stripe every still-pending Stripe payment of the order; each ends as Stripe
    says it is (one that succeeded meanwhile goes the unexpected-payment way)."""
    ids = Payment.objects.filter(order_id=order_id, provider=Provider.STRIPE, status=PaymentStatus.PENDING)
    return [payment for pk in ids.values_list("pk", flat=True) if (payment := _cancel_intent(pk)) is not None]


@transaction.atomic
def _cancel_intent(payment_id: int) -> Payment | None:
    payment = services._locked_payment(pk=payment_id)
    if payment is None or payment.status != PaymentStatus.PENDING:
        return None
    api = services._stripe_api(selectors.payment_settings(), "payment")
    try:
        intent = api.v1.payment_intents.cancel(
            payment.stripe_id, options={"idempotency_key": f"{connection.schema_name}:cancel-{payment.pk}"}
        )
    except stripe.InvalidRequestError:  # not cancellable any more: it succeeded or was cancelled
        intent = services._stripe(api.v1.payment_intents.retrieve, payment.stripe_id)
    # Any other Stripe error goes up as it is, for the task's retry policy to judge
    # (apps.common.retry): unreachable or 5xx is retried, a refusal is not.
    status, code, message = services._intent_state(intent.to_dict())
    services._apply_state(payment, status, actor=CLEAN_UP, failure_code=code, failure_message=message)
    return payment


@transaction.atomic
def return_payment(*, payment_id: int) -> StripeRefund | None:
    """Refund at Stripe what is left of a payment marked unexpected; None when there is nothing
    to return (not marked, not succeeded, or returned already)."""
    payment = services._locked_payment(pk=payment_id)
    if payment is None or payment.provider != Provider.STRIPE or payment.status != PaymentStatus.SUCCEEDED:
        return None
    if not OrderEvent.objects.filter(order_id=payment.order_id, type=UNEXPECTED, data__payment=payment.pk).exists():
        return None
    left = payment.amount - payment.amount_refunded
    if left <= 0:
        return None
    api = services._stripe_api(selectors.payment_settings(), "payment")
    schema = connection.schema_name
    made = services._stripe(
        api.v1.refunds.create,
        params={
            "payment_intent": payment.stripe_id,
            "amount": edge.minor_units(left, payment.currency),
            "metadata": {"tenant": schema, "order_id": str(payment.order_id), "returned_payment": str(payment.pk)},
        },
        options={"idempotency_key": f"{schema}:payment-return-{payment.pk}"},
    )
    from apps.payments.refunds import NOT_COUNTED, _status

    status = _status(made.status)
    refund = StripeRefund.objects.create(payment=payment, stripe_id=made.id, amount=left, currency=payment.currency,
                                         status=status)
    if status not in NOT_COUNTED:
        payment.amount_refunded += left
        payment.save(update_fields=["amount_refunded", "updated"])
    OrderEvent.objects.create(order_id=payment.order_id, type="payment_returned",
                              data={"payment": payment.pk, "stripeRefund": made.id, "amount": str(left)},
                              actor_email=CLEAN_UP.email)
    audit.record(actor=CLEAN_UP, action="payment.return", obj=refund,
                 changes={"payment": payment.pk, "amount": str(left), "stripeId": made.id, "status": status})
    return refund
