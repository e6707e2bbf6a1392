"""Stripe refunds: those `refundCreate` makes of a paid order (through `refund_order`), and the
one call that carries out every refund we ask Stripe for (`settle`, which the payment returns of
apps.payments.cleanup and the reconciler use too).

**Durable intent, then the call, then its answer** (DESIGN §12): no Stripe call is made inside a
transaction. `refundCreate` of an order paid through Stripe
1. records, in ONE short transaction under the order's lock, the order refund through
   `apps.orders.services.create_refund` (lines or an amount, with all its checks: never more than
   is left of the order's total, the status machine, restocking, the customer's spend), checks
   its amount against what is left of the order's succeeded Stripe payment, and records the
   Stripe refund as `requested` (counted in the payment's `amount_refunded` from then on, so no
   concurrent request can refund the same money);
2. asks Stripe for the refund outside any transaction, with the idempotency key
   `<schema>:stripe-refund-<id>` and the metadata `stripe_refund: <id>`;
3. records Stripe's answer (its id and status) in a short transaction.
A request that dies anywhere in between leaves the refund `requested`. A retried request with the
same `requestKey` (kept on the order refund) finds it and carries on from step 2; otherwise the
reconciler (apps.payments.reconcile) does. Before asking again, Stripe is asked whether it made
the refund already (a refund of the payment carrying the metadata), so Stripe never makes two,
whether or not it still remembers the idempotency key. Two callers never ask at once: each call
holds the refund for PAYMENTS_CALL_LEASE_SECONDS (a lease in the row, not a lock held across the
call).

When Stripe cannot be reached (or fails on its side) the refund stays `requested` and the caller
reads PROVIDER_ERROR: the refund is recorded and will be made. When Stripe refuses it, the refund
ends `failed` with Stripe's reason: the payment no longer counts it, the order keeps its refund
record (the order status machine has no way back from refunded) and gets an OrderEvent
`refund_failed` for staff, as for a refund that fails later at the bank. Orders paid otherwise
are refunded as money returned outside any provider; an order paid through Stripe is not
cancelled while Stripe still holds its money. Orders sit below payments and call nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit import services as audit
from apps.common.actors import Actor
from apps.common.crashpoints import crash_point
from apps.common.errors import NotFound, UserError
from apps.orders import services as orders
from apps.orders.models import Order
from apps.orders.models import Refund as OrderRefund
from apps.payments import gateway, selectors, state
from apps.payments.errors import PaymentErrorCode
from apps.payments.models import Payment, PaymentStatus, Provider, StripeRefund, StripeRefundStatus
from tenants.db import connection

RECORDED_NOT_MADE = (
    "{reason} The refund is recorded and will be made at Stripe: a retry with the same "
    "requestKey shows it."
)
REFUSED = "{reason} The order refund is recorded, with Stripe's refusal on the order for staff."


# --- refunds through the API --------------------------------------------------------------------


@transaction.atomic
def _record(
    *,
    actor: Actor,
    order_id: int,
    lines: Sequence[orders.RefundLineRequest],
    amount: Decimal | None,
    reason: str,
    restock: bool,
    key: str,
) -> StripeRefund:
    """Step 1: the order refund and the requested Stripe refund, or those of a request with the
    same key made before."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", field="order")
    if (done := orders.refund_for_key(order, key)) is not None:
        return StripeRefund.objects.get(order_refund=done)
    payment = (
        Payment.objects.select_for_update()
        .filter(order=order, provider=Provider.STRIPE, status=PaymentStatus.SUCCEEDED)
        .first()
    )
    if payment is None:
        raise UserError(
            "This order has no succeeded Stripe payment to refund (refundCreate records a refund "
            "made some other way).",
            field="order",
            code=PaymentErrorCode.NO_STRIPE_PAYMENT,
        )
    gateway.api_for(
        selectors.payment_settings(), "order"
    )  # Stripe switched off: refused before anything
    order_refund = orders.create_refund(
        actor=actor,
        order_id=order.pk,
        lines=lines,
        amount=amount,
        reason=reason,
        restock=restock,
        request_key=key,
    )
    left = payment.amount - payment.amount_refunded
    if order_refund.amount > left:
        raise UserError(
            f"This refund ({order_refund.amount}) is more than is left of the Stripe payment ({left}).",
            field="amount",
            code=PaymentErrorCode.OVER_REFUND,
        )
    refund = StripeRefund.objects.create(
        payment=payment,
        order_refund=order_refund,
        amount=order_refund.amount,
        currency=payment.currency,
        status=StripeRefundStatus.REQUESTED,
    )
    payment.amount_refunded += refund.amount
    payment.save(update_fields=["amount_refunded", "updated"])
    audit.record(
        actor=actor,
        action="payment.refund_create",
        obj=refund,
        changes={
            "order": order.number,
            "payment": payment.pk,
            "amount": str(refund.amount),
            "orderRefund": order_refund.pk,
        },
    )
    return refund


def create_refund(
    *,
    actor: Actor,
    order_id: int,
    lines: Sequence[orders.RefundLineRequest] = (),
    amount: Decimal | None = None,
    reason: str = "",
    restock: bool = False,
    request_key: str = "",
) -> StripeRefund:
    """Refund a paid order through its succeeded Stripe payment (see the module docstring): the
    order refund (by lines, an amount, or both) and the Stripe refund of its amount. A retried
    request with the same `request_key` gets the first one's refund, made at Stripe if it was not
    yet."""
    key = orders.checked_request_key(request_key)
    refund = _record(
        actor=actor,
        order_id=order_id,
        lines=lines,
        amount=amount,
        reason=reason,
        restock=restock,
        key=key,
    )
    return settle(refund.pk, actor=actor)


def stripe_payment_of(order_id: int) -> Payment | None:
    return Payment.objects.filter(
        order_id=order_id, provider=Provider.STRIPE, status=PaymentStatus.SUCCEEDED
    ).first()


def refund_order(
    *,
    actor: Actor,
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
        made = create_refund(
            actor=actor,
            order_id=order_id,
            lines=lines,
            amount=amount,
            reason=reason,
            restock=restock,
            request_key=request_key,
        )
        assert made.order_refund is not None  # only refunds made in Stripe's dashboard have none
        return made.order_refund
    return orders.create_refund(
        actor=actor,
        order_id=order_id,
        lines=lines,
        amount=amount,
        reason=reason,
        restock=restock,
        request_key=request_key,
    )


def cancel_order(*, actor: Actor, order_id: int, restock: bool = True, reason: str = "") -> Order:
    """The orders' `orderCancel`, refused for an order paid through Stripe: cancelling it would
    record a full refund that moves no money. Refund it first (refundCreate), then cancel."""
    payment = stripe_payment_of(order_id)
    if payment is not None and payment.amount_refunded < payment.amount:
        raise UserError(
            "This order was paid through Stripe: refund it (refundCreate) before cancelling.",
            field="id",
            code=PaymentErrorCode.REFUND_THROUGH_STRIPE,
        )
    with transaction.atomic():
        order = orders.cancel_order(actor=actor, order_id=order_id, restock=restock, reason=reason)
        state.queue_intent_cancellation(order.pk)  # the buyer can no longer pay an open intent
    return order


# --- the call ---------------------------------------------------------------------------------


def _claim(refund_id: int) -> int | None:
    """Hold a requested refund for one call (autocommitted); the number of calls made before this
    one, or None when it is not requested any more or another caller holds it."""
    now = timezone.now()
    lease = timedelta(seconds=settings.PAYMENTS_CALL_LEASE_SECONDS)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    with transaction.atomic():
        claimed = StripeRefund.objects.filter(
            free, pk=refund_id, status=StripeRefundStatus.REQUESTED
        ).update(attempts=F("attempts") + 1, claimed_until=now + lease)
        if not claimed:
            return None
        return StripeRefund.objects.values_list("attempts", flat=True).get(pk=refund_id) - 1


def marker(refund: StripeRefund) -> dict[str, str]:
    """The metadata that names a refund of ours at Stripe (looked for before asking again)."""
    return {"tenant": connection.schema_name, "stripe_refund": str(refund.pk)}


def _ask(refund: StripeRefund, earlier_calls: int) -> dict[str, Any]:
    """Step 2: the refund at Stripe: found (when an earlier call may have made it) or made."""
    payment = refund.payment
    api = gateway.api_for(selectors.payment_settings(), "order")
    tag = marker(refund)
    if earlier_calls and (made := gateway.refund_made_for(api, payment.stripe_id, tag)) is not None:
        return made
    if refund.order_refund_id is not None:
        purpose = {
            "order_id": str(payment.order_id),
            "order_refund_id": str(refund.order_refund_id),
        }
    else:
        purpose = {"order_id": str(payment.order_id), "returned_payment": str(payment.pk)}
    return gateway.call(
        api.v1.refunds.create,
        params={
            "payment_intent": payment.stripe_id,
            "amount": gateway.minor_units(refund.amount, refund.currency),
            "metadata": {**tag, **purpose},
        },
        options={"idempotency_key": f"{tag['tenant']}:stripe-refund-{refund.pk}"},
    ).to_dict()


@transaction.atomic
def _apply(
    refund_id: int, status: str, stripe_id: str, failure_reason: str, actor: Actor
) -> StripeRefund:
    """Step 3: Stripe's answer on the refund (a webhook may have brought it first)."""
    payment_id = StripeRefund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    payment = state.lock_payment(payment_id)
    refund = StripeRefund.objects.select_for_update().get(pk=refund_id)
    state.move_refund(payment, refund, status, failure_reason, actor=actor, stripe_id=stripe_id)
    StripeRefund.objects.filter(pk=refund_id).update(claimed_until=None)
    crash_point("refund.before_commit")
    refund.payment = payment
    return refund


def settle(refund_id: int, *, actor: Actor) -> StripeRefund:
    """Make a requested refund at Stripe and record the answer (see the module docstring); the
    refund as it is after. Outside any transaction. Raises the userError of a Stripe that could
    not be reached (the refund stays requested) or that refused (the refund is failed)."""
    refund = StripeRefund.objects.select_related("payment", "order_refund").get(pk=refund_id)
    earlier_calls = _claim(refund_id) if refund.status == StripeRefundStatus.REQUESTED else None
    if earlier_calls is None:
        return refund  # made already, or being made by another caller right now
    crash_point("refund.before_call")
    try:
        made = _ask(refund, earlier_calls)
    except UserError as error:
        if gateway.outcome_unknown(error) or error.code == PaymentErrorCode.PROVIDER_DISABLED:
            StripeRefund.objects.filter(pk=refund_id).update(claimed_until=None)
            raise UserError(
                RECORDED_NOT_MADE.format(reason=error.message),
                field=error.field,
                code=PaymentErrorCode.PROVIDER_ERROR,
            ) from error
        _apply(refund_id, StripeRefundStatus.FAILED, "", f"refused: {_refusal(error)}", actor)
        raise UserError(
            REFUSED.format(reason=error.message), field=error.field, code=error.code
        ) from error
    crash_point("refund.after_answer")
    return _apply(
        refund_id,
        state.refund_status(made.get("status")),
        made["id"],
        str(made.get("failure_reason") or ""),
        actor,
    )


def _refusal(error: UserError) -> str:
    """Stripe's code for a refusal (the SDK error's), for the refund's failure reason."""
    cause = error.__cause__
    if cause is None:
        return str(error.code)
    return str(getattr(cause, "code", None) or type(cause).__name__)
