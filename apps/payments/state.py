"""Payment and Stripe-refund states, their locks and their transitions: the layer every payments
writer builds on (services, refunds, clean-up, the reconciler and the webhook sit above it).

- **Locks**: the order row, then its payment, then the payment's refunds: the one order every
  payments writer takes (as apps.orders.services does), so writers never deadlock.
- **Payments** only move up their rank (pending < failed < canceled < succeeded), whoever reports
  it (a confirmation's answer, the reconciler or a webhook, in any order), so a late
  `payment_failed` never undoes a success. A success pays the pending order in the same
  transaction; a success for an order that no longer waited for it is marked unexpected and its
  money queued to go back (apps.payments.cleanup).
- **Stripe refunds** only move up theirs: requested (recorded here, Stripe not yet known to have
  it) < pending < requires_action < succeeded < failed | canceled (a succeeded refund can still
  fail at the bank). A requested refund counts in `Payment.amount_refunded` from the moment it is
  recorded (the money is promised to the customer and cannot be refunded twice); one that fails
  or is canceled no longer counts, and its order gets an OrderEvent `refund_failed` for staff.

Work for later (tasks) is queued by name when the transaction commits, so this module needs
nothing above it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from celery import current_app

from apps.audit import services as audit
from apps.common.actors import Actor
from apps.common.outages import after_commit
from apps.orders import services as orders
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.payments.models import (
    Payment,
    PaymentStatus,
    Provider,
    StripeRefund,
    StripeRefundStatus,
)
from tenants.db import connection


@dataclass(frozen=True)
class SystemActor:
    """Who audit entries and order events name for changes nobody signed in made."""

    email: str
    pk: None = None


STRIPE_WEBHOOK = SystemActor(email="Stripe webhook")
CLEAN_UP = SystemActor(email="Payment clean-up")
RECONCILER = SystemActor(email="Payment reconciler")
UNEXPECTED = "payment_unexpected"
log = logging.getLogger(__name__)

RANK: dict[str, int] = {
    PaymentStatus.PENDING: 0,
    PaymentStatus.FAILED: 1,
    PaymentStatus.CANCELED: 2,
    PaymentStatus.SUCCEEDED: 3,
}
REFUND_RANK: dict[str, int] = {
    StripeRefundStatus.REQUESTED: -1,
    StripeRefundStatus.PENDING: 0,
    StripeRefundStatus.REQUIRES_ACTION: 1,
    StripeRefundStatus.SUCCEEDED: 2,
    StripeRefundStatus.FAILED: 3,
    StripeRefundStatus.CANCELED: 3,
}
# Refunds whose money does not come back do not count in amount_refunded.
NOT_COUNTED = frozenset({StripeRefundStatus.FAILED, StripeRefundStatus.CANCELED})


def queue(task_name: str, *args: Any) -> None:
    """Queue the task `task_name` with `args` in this tenant's schema once the transaction
    commits (by name, so this layer imports no task module)."""
    schema = connection.schema_name
    after_commit(
        lambda: current_app.signature(task_name, args=args).apply_async(
            headers={"_schema_name": schema}
        )
    )


def locked_payment(**lookup: Any) -> Payment | None:
    """The payment, locked after its order (the one lock order for every writer)."""
    row = Payment.objects.filter(**lookup).values("pk", "order_id").first()
    if row is None:
        return None
    Order.objects.select_for_update().filter(pk=row["order_id"]).values_list(
        "pk", flat=True
    ).first()
    return Payment.objects.select_for_update().select_related("order").get(pk=row["pk"])


def lock_payment(pk: int) -> Payment:
    """A payment whose id we hold (payments are never deleted), locked as `locked_payment` locks."""
    payment = locked_payment(pk=pk)
    if payment is None:
        raise Payment.DoesNotExist(f"No payment {pk}.")
    return payment


def order_event(payment: Payment, kind: str, actor: Actor, /, **data: Any) -> None:
    """An OrderEvent on the payment's order, for staff (`data` may name the payment itself)."""
    OrderEvent.objects.create(
        order_id=payment.order_id, type=kind, data=data, actor_email=orders.actor_label(actor)
    )


# --- payments ---------------------------------------------------------------------------------


def failure(intent: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of the intent's last payment error; empty when there is none."""
    error = intent.get("last_payment_error") or {}
    return error.get("decline_code") or error.get("code") or "", error.get("message") or ""


def intent_state(intent: dict[str, Any]) -> tuple[str, str, str]:
    """(payment status, failure code, failure message) of a PaymentIntent as Stripe reports it."""
    code, message = failure(intent)
    if intent.get("status") == "succeeded":
        return PaymentStatus.SUCCEEDED, "", ""
    if intent.get("status") == "canceled":
        return PaymentStatus.CANCELED, "", ""
    if intent.get("last_payment_error"):
        return PaymentStatus.FAILED, code, message
    return PaymentStatus.PENDING, "", ""


def apply_state(
    payment: Payment,
    target: str,
    *,
    actor: Actor,
    failure_code: str = "",
    failure_message: str = "",
) -> bool:
    """Move a locked payment up to `target` (never down); a success pays its pending order.
    False when the payment already is there or beyond."""
    if RANK[target] <= RANK[payment.status]:
        return False
    before, payment.status = payment.status, target
    if target == PaymentStatus.FAILED:
        payment.failure_code, payment.failure_message = failure_code[:100], failure_message
    payment.save(update_fields=["status", "failure_code", "failure_message", "updated"])
    audit.record(
        actor=actor,
        action="payment.update_status",
        obj=payment,
        changes={
            "status": [before, target],
            **({"failureCode": failure_code} if failure_code else {}),
        },
    )
    if target == PaymentStatus.SUCCEEDED and payment.order.status == OrderStatus.PENDING:
        payment.order = orders.update_status(
            actor=actor, order_id=payment.order_id, status=OrderStatus.PAID
        )
    elif target == PaymentStatus.SUCCEEDED:
        # Money taken for an order that is no longer waiting for it (cancelled, or paid another
        # way): it goes back (apps.payments.cleanup).
        order_event(
            payment, UNEXPECTED, CLEAN_UP, payment=payment.pk, orderStatus=payment.order.status
        )
        log.warning(
            "Payment %s succeeded for order %s, which is %s: returning it",
            payment.pk,
            payment.order_id,
            payment.order.status,
        )
        # The return is recorded in this same transaction (DESIGN §12): if the task's message is
        # lost (queued while the broker was down), the reconciler still finds it to make.
        record_return(payment, actor=CLEAN_UP)
        queue("apps.payments.tasks.return_payment", payment.pk)
    return True


def record_return(payment: Payment, *, actor: Actor) -> StripeRefund | None:
    """Within the locked Stripe `payment`'s transaction, once it is marked unexpected: the
    requested Stripe refund of what is left of it, counted at once in `amount_refunded`, with an
    OrderEvent `payment_returned` and an audit entry; None when nothing is left. The refund is
    made at Stripe after the commit (apps.payments.refunds.settle, by the clean-up task or the
    reconciler). It has no order refund: the order never counted this money."""
    left = payment.amount - payment.amount_refunded
    if payment.provider != Provider.STRIPE or left <= 0:
        return None
    refund = StripeRefund.objects.create(
        payment=payment, amount=left, currency=payment.currency, status=StripeRefundStatus.REQUESTED
    )
    payment.amount_refunded += left
    payment.save(update_fields=["amount_refunded", "updated"])
    order_event(
        payment, "payment_returned", actor, payment=payment.pk, refund=refund.pk, amount=str(left)
    )
    audit.record(
        actor=actor,
        action="payment.return",
        obj=refund,
        changes={"payment": payment.pk, "amount": str(left)},
    )
    return refund


def queue_intent_cancellation(order_id: int) -> None:
    """Inside the transaction that stops an order waiting for payment: cancel its open intents
    once that commits."""
    if Payment.objects.filter(
        order_id=order_id, provider="stripe", status=PaymentStatus.PENDING
    ).exists():
        queue("apps.payments.tasks.cancel_open_intents", order_id)


# --- Stripe refunds ---------------------------------------------------------------------------


def refund_status(value: Any) -> str:
    """A status Stripe reports for a refund, as ours; anything unexpected is still pending."""
    return (
        value
        if value in REFUND_RANK and value != StripeRefundStatus.REQUESTED
        else StripeRefundStatus.PENDING
    )


def move_refund(
    payment: Payment,
    refund: StripeRefund,
    status: str,
    failure_reason: str,
    *,
    actor: Actor,
    stripe_id: str = "",
) -> bool:
    """Move a locked refund of the locked `payment` up to `status` (never down), learning its
    Stripe id when it had none; False when it is there or beyond."""
    if REFUND_RANK[status] <= REFUND_RANK[refund.status]:
        return False
    before, refund.status = refund.status, status
    learned = stripe_id if stripe_id and not refund.stripe_id else ""
    if learned:
        refund.stripe_id = learned
    if status in NOT_COUNTED:
        refund.failure_reason = failure_reason[:100]
        if before not in NOT_COUNTED:
            payment.amount_refunded = max(payment.amount_refunded - refund.amount, Decimal(0))
            payment.save(update_fields=["amount_refunded", "updated"])
            order_event(
                payment,
                "refund_failed",
                actor,
                stripeRefund=refund.stripe_id,
                amount=str(refund.amount),
                status=status,
                reason=refund.failure_reason,
                orderRefund=refund.order_refund_id,
            )
    refund.save(update_fields=["status", "failure_reason", "stripe_id", "updated"])
    audit.record(
        actor=actor,
        action="payment.refund_update",
        obj=refund,
        changes={
            "status": [before, status],
            **({"stripeId": learned} if learned else {}),
            **({"failureReason": failure_reason} if failure_reason else {}),
        },
    )
    return True
