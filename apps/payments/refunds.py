"""Stripe refunds of order payments, and the webhooks that report refunds and disputes.

`refundCreate` (through `refund_order`) gives money back through Stripe when Stripe took it: in
ONE transaction it locks the order, records
the order refund through `apps.orders.services.create_refund` (lines or an amount, with all its
checks: never more than is left of the order's total, the status machine, restocking, the
customer's spend), checks the amount against what is left of the order's succeeded Stripe
payment (captured minus refunded), and asks Stripe to refund exactly the recorded amount with the
idempotency key `<schema>:order-refund-<order refund id>`. Stripe refusing rolls the order refund
back, so one request is one order refund and at most one Stripe refund; the SDK's network
retries reuse the key, so they create no second Stripe refund. A caller may give its own
`request_key` (kept on the order refund, for every kind of refund): a retried request with the
same key finds the refund made the first time and changes nothing. The orders' `refundCreate`
and `orderCancel` come through here (`refund_order`, `cancel_order`): an order paid through Stripe is refunded through Stripe, and is
not cancelled while Stripe still holds its money; other orders are refunded as money returned
outside any provider (manual payments, cash). Orders sit below payments and call nothing here.

The order refund is recorded when Stripe accepts the refund (pending or succeeded): the order
shows it at once, and the webhooks (`charge.refunded`, `refund.updated`) move the StripeRefund's
status on. A refund Stripe reports that we did not make (one made in the Stripe dashboard) is
recorded once, as an order refund by amount, when it is first seen; the unique Stripe refund id
makes a second report a no-op. Refund statuses only move up their rank (pending <
requires_action < succeeded < failed | canceled: a succeeded refund can still fail at the bank),
so events arriving out of order never move one back. A refund that fails or is canceled no
longer counts in `Payment.amount_refunded`; the order keeps its refund record (the order status
machine has no way back from refunded) and gets an OrderEvent `refund_failed` for staff to act on.

`charge.dispute.created` marks the payment disputed (its status, the money taken, is unchanged)
and writes an OrderEvent `disputed`, once per payment.

Locks: the order row, then its payment, then its refunds (the one order every payments writer
uses, see apps.payments.services).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.common.errors import NotFound, UserError
from apps.orders import services as orders
from apps.orders.models import Order, OrderEvent
from apps.orders.models import Refund as OrderRefund
from apps.payments import selectors, services
from apps.payments import stripe_client as edge
from apps.payments.errors import PaymentErrorCode
from apps.payments.models import Payment, PaymentStatus, Provider, StripeRefund, StripeRefundStatus

RANK = {
    StripeRefundStatus.PENDING: 0,
    StripeRefundStatus.REQUIRES_ACTION: 1,
    StripeRefundStatus.SUCCEEDED: 2,
    StripeRefundStatus.FAILED: 3,
    StripeRefundStatus.CANCELED: 3,
}
# Refunds whose money has not (or not yet definitely) come back count in amount_refunded.
NOT_COUNTED = frozenset({StripeRefundStatus.FAILED, StripeRefundStatus.CANCELED})
REFUND_EVENTS = frozenset({"charge.refunded", "refund.updated", "refund.created", "charge.refund.updated"})
DISPUTE_EVENTS = frozenset({"charge.dispute.created"})
EVENTS = REFUND_EVENTS | DISPUTE_EVENTS
DASHBOARD_REASON = "Refunded in Stripe"


def _status(value: Any) -> str:
    """A Stripe refund status as ours; anything unexpected is treated as still pending."""
    return value if value in RANK else StripeRefundStatus.PENDING


def _label(order: Order) -> str:
    return f"#{order.number}"


# --- refunds through the API --------------------------------------------------------------------

@transaction.atomic
def create_refund(
    *,
    actor: Any,
    order_id: int,
    lines: Sequence[orders.RefundLineRequest] = (),
    amount: Decimal | None = None,
    reason: str = "",
    restock: bool = False,
    request_key: str = "",
) -> StripeRefund:
    """Refund a paid order through its succeeded Stripe payment (see the module docstring): the
    order refund (by lines, an amount, or both) and the Stripe refund of its amount, together.
    A retried request with the same `request_key` gets the first one's refund."""
    key = orders.checked_request_key(request_key)
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", field="order")
    if (done := orders.refund_for_key(order, key)) is not None:
        return StripeRefund.objects.select_related("payment", "order_refund").get(order_refund=done)
    payment = (
        Payment.objects.select_for_update()
        .filter(order=order, provider=Provider.STRIPE, status=PaymentStatus.SUCCEEDED)
        .first()
    )
    if payment is None:
        raise UserError("This order has no succeeded Stripe payment to refund (refundCreate records a refund "
                        "made some other way).", field="order", code=PaymentErrorCode.NO_STRIPE_PAYMENT)
    api = services._stripe_api(selectors.payment_settings(), "order")
    order_refund = orders.create_refund(
        actor=actor, order_id=order.pk, lines=lines, amount=amount, reason=reason, restock=restock, request_key=key
    )
    left = payment.amount - payment.amount_refunded
    if order_refund.amount > left:
        raise UserError(f"This refund ({order_refund.amount}) is more than is left of the Stripe payment ({left}).",
                        field="amount", code=PaymentErrorCode.OVER_REFUND)
    schema = connection.schema_name
    made = services._stripe(
        api.v1.refunds.create,
        params={
            "payment_intent": payment.stripe_id,
            "amount": edge.minor_units(order_refund.amount, payment.currency),
            "metadata": {"tenant": schema, "order_id": str(order.pk), "order_refund_id": str(order_refund.pk)},
        },
        options={"idempotency_key": f"{schema}:order-refund-{order_refund.pk}"},
    )
    status = _status(made.status)
    refund = StripeRefund.objects.create(
        payment=payment, order_refund=order_refund, stripe_id=made.id, amount=order_refund.amount,
        currency=payment.currency, status=status,
    )
    if status not in NOT_COUNTED:
        payment.amount_refunded += refund.amount
        payment.save(update_fields=["amount_refunded", "updated"])
    audit.record(actor=actor, action="payment.refund_create", obj=refund,
                 changes={"order": order.number, "payment": payment.pk, "amount": str(refund.amount),
                          "stripeId": made.id, "status": status, "orderRefund": order_refund.pk})
    return refund


def stripe_payment_of(order_id: int) -> Payment | None:
    return Payment.objects.filter(order_id=order_id, provider=Provider.STRIPE, status=PaymentStatus.SUCCEEDED).first()


def refund_order(
    *,
    actor,
    order_id: int,
    lines: Sequence[orders.RefundLineRequest] = (),
    amount: Decimal | None = None,
    reason: str = "",
    restock: bool = False,
    request_key: str = "",
) -> OrderRefund:
    """`refundCreate`: an order paid through Stripe is refunded through Stripe (money really
    goes back); any other order's refund is recorded as made outside a provider."""
    if stripe_payment_of(order_id) is not None:
        return create_refund(actor=actor, order_id=order_id, lines=lines, amount=amount, reason=reason,
                             restock=restock, request_key=request_key).order_refund
    return orders.create_refund(actor=actor, order_id=order_id, lines=lines, amount=amount, reason=reason,
                                restock=restock, request_key=request_key)


def cancel_order(*, actor, order_id: int, restock: bool = True, reason: str = "") -> Order:
    """The orders' `orderCancel`, refused for an order paid through Stripe: cancelling it would
    record a full refund that moves no money. Refund it first (refundCreate), then cancel."""
    payment = stripe_payment_of(order_id)
    if payment is not None and payment.amount_refunded < payment.amount:
        raise UserError("This order was paid through Stripe: refund it (refundCreate) before cancelling.",
                        field="id", code=PaymentErrorCode.REFUND_THROUGH_STRIPE)
    from apps.payments import cleanup

    with transaction.atomic():
        order = orders.cancel_order(actor=actor, order_id=order_id, restock=restock, reason=reason)
        cleanup.queue_intent_cancellation(order.pk)  # the buyer can no longer pay an open intent
    return order


# --- webhooks ----------------------------------------------------------------------------------

def _payment_of(intent_id: Any, refund_ids: list[str]) -> Payment | None:
    """The Stripe payment (locked, after its order) of an intent id, or of a refund we know."""
    if isinstance(intent_id, str) and intent_id:
        payment = services._locked_payment(provider=Provider.STRIPE, stripe_id=intent_id)
        if payment is not None:
            return payment
    known = StripeRefund.objects.filter(stripe_id__in=refund_ids).values_list("payment_id", flat=True).first()
    return services._locked_payment(pk=known) if known is not None else None


def _event(payment: Payment, kind: str, **data: Any) -> None:
    OrderEvent.objects.create(order_id=payment.order_id, type=kind, data=data,
                              actor_email=services.STRIPE_WEBHOOK.email)


def _record_dashboard_refund(payment: Payment, stripe_refund: dict[str, Any], amount: Decimal,
                             status: str) -> StripeRefund:
    """A refund Stripe made that we did not ask for: its row, and (unless it failed) the order
    refund by amount. When the order cannot take it (cancelled, or refunded otherwise already),
    the refund is kept without one and the order gets an event saying so."""
    actor = services.STRIPE_WEBHOOK
    order_refund = None
    counted = status not in NOT_COUNTED
    if counted:
        try:
            order_refund = orders.create_refund(actor=actor, order_id=payment.order_id, amount=amount,
                                                reason=DASHBOARD_REASON)
        except UserError as error:
            _event(payment, "stripe_refund_unmatched", stripeRefund=stripe_refund["id"], amount=str(amount),
                   reason=str(error))
    refund = StripeRefund.objects.create(
        payment=payment, order_refund=order_refund, stripe_id=stripe_refund["id"], amount=amount,
        currency=payment.currency, status=status, from_dashboard=True,
    )
    if counted:
        payment.amount_refunded = min(payment.amount, payment.amount_refunded + amount)
        payment.save(update_fields=["amount_refunded", "updated"])
    audit.record(actor=actor, action="payment.refund_record", obj=refund,
                 changes={"payment": payment.pk, "amount": str(amount), "stripeId": refund.stripe_id,
                          "status": status, "orderRefund": order_refund.pk if order_refund else None})
    return refund


def _move(payment: Payment, refund: StripeRefund, status: str, failure_reason: str) -> bool:
    """Move a known refund up to `status` (never down); False when it is there or beyond."""
    if RANK[status] <= RANK[refund.status]:
        return False
    before, refund.status = refund.status, status
    if status in NOT_COUNTED:
        refund.failure_reason = failure_reason[:100]
        if before not in NOT_COUNTED:
            payment.amount_refunded = max(payment.amount_refunded - refund.amount, Decimal(0))
            payment.save(update_fields=["amount_refunded", "updated"])
            _event(payment, "refund_failed", stripeRefund=refund.stripe_id, amount=str(refund.amount),
                   status=status, reason=refund.failure_reason,
                   orderRefund=refund.order_refund_id)
    refund.save(update_fields=["status", "failure_reason", "updated"])
    audit.record(actor=services.STRIPE_WEBHOOK, action="payment.refund_update", obj=refund,
                 changes={"status": [before, status], **({"failureReason": failure_reason} if failure_reason else {})})
    return True


def _sync_refund(payment: Payment, stripe_refund: dict[str, Any]) -> bool:
    """Apply what Stripe says of one refund of `payment`; True when something changed."""
    status = _status(stripe_refund.get("status"))
    failure_reason = str(stripe_refund.get("failure_reason") or "")
    known = StripeRefund.objects.select_for_update().filter(stripe_id=stripe_refund["id"]).first()
    if known is not None:
        return known.payment_id == payment.pk and _move(payment, known, status, failure_reason)
    units = stripe_refund.get("amount")
    if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
        return False
    amount = edge.from_minor_units(units, payment.currency)
    _record_dashboard_refund(payment, stripe_refund, amount, status)
    return True


def _refund_objects(kind: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "charge.refunded":
        listed = (obj.get("refunds") or {}).get("data") or []
        return [r for r in listed if isinstance(r, dict)]
    return [obj]


def _apply_refunds(kind: str, obj: dict[str, Any]) -> tuple[str, Payment | None]:
    refunds = [r for r in _refund_objects(kind, obj) if isinstance(r.get("id"), str) and r["id"]]
    tenant = connection.schema_name
    if any((r.get("metadata") or {}).get("tenant", tenant) != tenant for r in refunds):
        return "foreign", None
    payment = _payment_of(obj.get("payment_intent"), [r["id"] for r in refunds])
    if payment is None:
        return "unknown_payment", None
    changed = [_sync_refund(payment, r) for r in refunds]
    return ("applied" if any(changed) else "stale"), payment


def _apply_dispute(obj: dict[str, Any]) -> tuple[str, Payment | None]:
    payment = _payment_of(obj.get("payment_intent"), [])
    if payment is None or not isinstance(obj.get("id"), str):
        return "unknown_payment", None
    if payment.dispute_id:
        return "stale", payment
    payment.dispute_id = obj["id"][:255]
    payment.dispute_reason = str(obj.get("reason") or "")[:100]
    payment.disputed_at = timezone.now()
    payment.save(update_fields=["dispute_id", "dispute_reason", "disputed_at", "updated"])
    units = obj.get("amount")
    amount = str(edge.from_minor_units(units, payment.currency)) if isinstance(units, int) else None
    _event(payment, "disputed", dispute=payment.dispute_id, reason=payment.dispute_reason, amount=amount)
    audit.record(actor=services.STRIPE_WEBHOOK, action="payment.dispute", obj=payment,
                 changes={"dispute": payment.dispute_id, "reason": payment.dispute_reason, "amount": amount})
    return "applied", payment


def apply_event(event: dict[str, Any]) -> tuple[str, Payment | None]:
    """Apply a verified refund or dispute event (one of EVENTS) inside the caller's transaction;
    (outcome, payment) as apps.payments.services.receive_event stores them."""
    obj = (event.get("data") or {}).get("object") or {}
    if event["type"] in DISPUTE_EVENTS:
        return _apply_dispute(obj)
    return _apply_refunds(event["type"], obj)
