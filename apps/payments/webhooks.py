"""Stripe's webhook events, stored once and applied (the top of the payments app; the view in
apps.payments.views verifies the signature and calls `receive_event`).

- Intent events (`payment_intent.succeeded`, `.payment_failed`, `.canceled`) move the payment
  up its rank (apps.payments.state), so events in any order end in the latest state.
- Refund events (`charge.refunded`, `refund.updated`, `refund.created`,
  `charge.refund.updated`) move a known Stripe refund up its rank. A refund we asked for whose
  answer we have not recorded yet (a request that died after Stripe made it) is known by its
  metadata (`stripe_refund`) and settled from the event. A refund we did not make (one made in
  the Stripe dashboard) is recorded once, as an order refund by amount, when it is first seen; the
  unique Stripe refund id makes a second report a no-op.
- `charge.dispute.created` marks the payment disputed (its status, the money taken, is unchanged)
  and writes an OrderEvent `disputed`, once per payment.
Events of another tenant (their metadata names it) are stored and change nothing here.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.common.errors import UserError
from apps.orders import services as orders
from apps.payments import gateway, methods, state
from apps.payments.models import Payment, Provider, StripeRefund, StripeRefundStatus, WebhookEvent
from apps.payments.state import NOT_COUNTED, STRIPE_WEBHOOK
from tenants.db import connection

# The webhook events that move a payment, and where to.
INTENT_EVENTS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "canceled",
}
REFUND_EVENTS = frozenset(
    {"charge.refunded", "refund.updated", "refund.created", "charge.refund.updated"}
)
DISPUTE_EVENTS = frozenset({"charge.dispute.created"})
DASHBOARD_REASON = "Refunded in Stripe"

_STORE_ONCE = """
    INSERT INTO payments_webhookevent (event_id, type, payload, outcome, received)
    VALUES (%s, %s, %s, 'received', now())
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id
"""


@transaction.atomic
def receive_event(*, event: dict[str, Any]) -> tuple[WebhookEvent, bool]:
    """Store a verified Stripe event once and apply it, all in one transaction; (event, False)
    for one stored already (a replay, or a concurrent delivery that committed first).

    ON CONFLICT DO NOTHING waits for a concurrent delivery of the same id to end: if it commits,
    this one inserts nothing and is a duplicate; if it rolls back, this one inserts and applies.
    No unique-violation error is raised (or logged by PostgreSQL) for a duplicate."""
    with connection.cursor() as cursor:
        cursor.execute(_STORE_ONCE, [event["id"], event["type"], json.dumps(event)])
        row = cursor.fetchone()
    if row is None:
        return WebhookEvent.objects.get(event_id=event["id"]), False
    stored = WebhookEvent(pk=row[0], event_id=event["id"], type=event["type"], payload=event)
    stored.outcome, stored.payment = _apply(event)
    stored.save(update_fields=["outcome", "payment"])
    return stored, True


def _apply(event: dict[str, Any]) -> tuple[str, Payment | None]:
    obj = (event.get("data") or {}).get("object") or {}
    if event["type"] in DISPUTE_EVENTS:
        return _apply_dispute(obj)
    if event["type"] in REFUND_EVENTS:
        return _apply_refunds(event["type"], obj)
    if event["type"] in INTENT_EVENTS:
        return _apply_intent(event["type"], obj)
    return "ignored", None


def _foreign(metadata: Any) -> bool:
    tenant = connection.schema_name
    return isinstance(metadata, dict) and metadata.get("tenant", tenant) != tenant


# --- intents ----------------------------------------------------------------------------------


def _apply_intent(kind: str, intent: dict[str, Any]) -> tuple[str, Payment | None]:
    if _foreign(intent.get("metadata")):
        return "foreign", None
    intent_id = intent.get("id")
    payment = (
        state.locked_payment(provider=Provider.STRIPE, stripe_id=intent_id)
        if isinstance(intent_id, str)
        else None
    )
    if payment is None:
        return "unknown_payment", None
    code, message = state.failure(intent)
    changed = state.apply_state(
        payment,
        INTENT_EVENTS[kind],
        actor=STRIPE_WEBHOOK,
        failure_code=code,
        failure_message=message,
    )
    if changed:  # a stale event (a late failure after the success) must not relabel the method
        methods.record_method_type(payment, intent)
    return ("applied" if changed else "stale"), payment


# --- refunds and disputes ---------------------------------------------------------------------


def _payment_of(intent_id: Any, refund_ids: list[str]) -> Payment | None:
    """The Stripe payment (locked, after its order) of an intent id, or of a refund we know."""
    if isinstance(intent_id, str) and intent_id:
        payment = state.locked_payment(provider=Provider.STRIPE, stripe_id=intent_id)
        if payment is not None:
            return payment
    known = (
        StripeRefund.objects.filter(stripe_id__in=refund_ids)
        .values_list("payment_id", flat=True)
        .first()
    )
    return state.locked_payment(pk=known) if known is not None else None


def _record_dashboard_refund(
    payment: Payment, stripe_refund: dict[str, Any], amount: Decimal, status: str
) -> StripeRefund:
    """A refund Stripe made that we did not ask for: its row, and (unless it failed) the order
    refund by amount. When the order cannot take it (cancelled, or refunded otherwise already),
    the refund is kept without one and the order gets an event saying so."""
    order_refund = None
    counted = status not in NOT_COUNTED
    if counted:
        try:
            order_refund = orders.create_refund(
                actor=STRIPE_WEBHOOK,
                order_id=payment.order_id,
                amount=amount,
                reason=DASHBOARD_REASON,
            )
        except UserError as error:
            state.order_event(
                payment,
                "stripe_refund_unmatched",
                STRIPE_WEBHOOK,
                stripeRefund=stripe_refund["id"],
                amount=str(amount),
                reason=str(error),
            )
    refund = StripeRefund.objects.create(
        payment=payment,
        order_refund=order_refund,
        stripe_id=stripe_refund["id"],
        amount=amount,
        currency=payment.currency,
        status=status,
        from_dashboard=True,
    )
    if counted:
        payment.amount_refunded = min(payment.amount, payment.amount_refunded + amount)
        payment.save(update_fields=["amount_refunded", "updated"])
    audit.record(
        actor=STRIPE_WEBHOOK,
        action="payment.refund_record",
        obj=refund,
        changes={
            "payment": payment.pk,
            "amount": str(amount),
            "stripeId": refund.stripe_id,
            "status": status,
            "orderRefund": order_refund.pk if order_refund else None,
        },
    )
    return refund


def _ours(payment: Payment, stripe_refund: dict[str, Any]) -> StripeRefund | None:
    """The locked refund of ours an event reports: by its Stripe id, or, for one whose answer we
    have not recorded yet, by the id in its metadata (apps.payments.refunds.marker)."""
    known = StripeRefund.objects.select_for_update().filter(stripe_id=stripe_refund["id"]).first()
    if known is not None:
        return known
    named = str((stripe_refund.get("metadata") or {}).get("stripe_refund") or "")
    if not named.isdigit():
        return None
    return (
        StripeRefund.objects.select_for_update()
        .filter(pk=int(named), payment=payment, status=StripeRefundStatus.REQUESTED)
        .first()
    )


def _sync_refund(payment: Payment, stripe_refund: dict[str, Any]) -> bool:
    """Apply what Stripe says of one refund of `payment`; True when something changed."""
    status = state.refund_status(stripe_refund.get("status"))
    failure_reason = str(stripe_refund.get("failure_reason") or "")
    known = _ours(payment, stripe_refund)
    if known is not None:
        return known.payment_id == payment.pk and state.move_refund(
            payment,
            known,
            status,
            failure_reason,
            actor=STRIPE_WEBHOOK,
            stripe_id=stripe_refund["id"],
        )
    units = stripe_refund.get("amount")
    if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
        return False
    amount = gateway.from_minor_units(units, payment.currency)
    _record_dashboard_refund(payment, stripe_refund, amount, status)
    return True


def _refund_objects(kind: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    if kind == "charge.refunded":
        listed = (obj.get("refunds") or {}).get("data") or []
        return [r for r in listed if isinstance(r, dict)]
    return [obj]


def _apply_refunds(kind: str, obj: dict[str, Any]) -> tuple[str, Payment | None]:
    refunds = [r for r in _refund_objects(kind, obj) if isinstance(r.get("id"), str) and r["id"]]
    if any(_foreign(r.get("metadata") or {}) for r in refunds):
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
    amount = (
        str(gateway.from_minor_units(units, payment.currency)) if isinstance(units, int) else None
    )
    state.order_event(
        payment,
        "disputed",
        STRIPE_WEBHOOK,
        dispute=payment.dispute_id,
        reason=payment.dispute_reason,
        amount=amount,
    )
    audit.record(
        actor=STRIPE_WEBHOOK,
        action="payment.dispute",
        obj=payment,
        changes={"dispute": payment.dispute_id, "reason": payment.dispute_reason, "amount": amount},
    )
    return "applied", payment
