"""Stripe's webhook deliveries: verified with the tenant's signing secret, parsed once, stored once
and applied (the top of the payments app; the view in apps.payments.views calls `deliver` and
translates its answer).

- Intent events (`payment_intent.succeeded`, `.payment_failed`, `.canceled`) move the payment
  up its rank (apps.payments.state), so events in any order end in the latest state, applied in
  one statement (`_APPLY_INTENT`) once the event is stored.
- Refund events (`charge.refunded`, `refund.updated`, `refund.created`,
  `charge.refund.updated`) move a known Stripe refund up its rank. A refund we asked for whose
  answer we have not recorded yet (a request that died after Stripe made it) is known by its
  metadata (`stripe_refund`) and settled from the event. A refund we did not make (one made in
  the Stripe dashboard) is recorded once, as an order refund by amount, when it is first seen; the
  unique Stripe refund id makes a second report a no-op.
- `charge.dispute.created` marks the payment disputed (its status, the money taken, is unchanged)
  and writes an OrderEvent `disputed`, once per payment.
Events of another tenant (their metadata names it) are stored and change nothing here.

A delivery takes two statements: one that checks that the secret that verified it is still the
tenant's and stores the event once (`_STORE_ONCE`; a replay ends there), one that applies it.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.common import crypto
from apps.common.errors import UserError
from apps.orders import hooks
from apps.orders import services as orders
from apps.orders import status as order_status
from apps.orders.models import Order
from apps.payments import gateway, methods, selectors, state
from apps.payments.models import (
    Payment,
    PaymentSettings,
    PaymentStatus,
    Provider,
    StripeRefund,
    StripeRefundStatus,
    WebhookEvent,
)
from apps.payments.state import NOT_COUNTED, STRIPE_WEBHOOK
from tenants.context import current_request_id
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
_SECRET_STILL = """(
        %(token)s IS NULL OR EXISTS (
            SELECT FROM payments_paymentsettings
            WHERE id = %(settings_id)s AND stripe_webhook_secret_encrypted = %(token)s
        )
    )"""

DASHBOARD_REASON = "Refunded in Stripe"
MAX_ID = 255
SIGNATURE_REFUSED = "Missing, bad or stale Stripe-Signature."
NOT_AN_EVENT = "The body is not a Stripe event."


class Refused(Exception):
    """A delivery that is not a verified Stripe event: nothing is written (400; Stripe gives up
    after its retries, as it should for a forgery)."""


class _SecretChanged(Exception):
    """The tenant's signing secret changed after this process read it: nothing was written."""


# The signing secret each tenant schema had when this process last read it: (the encrypted token
# as stored, the secret). Every write of a delivery checks, in its own statement, that the token
# is still the stored one, so a delivery is never stored on a secret the tenant replaced; a
# delivery that the kept secret does not verify reads the tenant's again before it is refused.
_secrets: dict[str, tuple[str, str]] = {}


def _signing_secret(*, fresh: bool) -> tuple[str, str, bool]:
    """(token, secret, whether it was read now) for the connection's tenant."""
    schema = connection.schema_name
    known = None if fresh else _secrets.get(schema)
    if known is not None:
        return *known, False
    token = selectors.stripe_webhook_secret_token()
    _secrets[schema] = (token, crypto.decrypt(token))
    return *_secrets[schema], True


def _verified(body: bytes, signature: str, *, fresh: bool = False) -> str:
    """The token of the tenant's secret that signed `body`; Refused when none does."""
    token, secret, read = _signing_secret(fresh=fresh)
    if secret and gateway.verify_signature(body, signature, secret):
        return token
    if read:
        raise Refused(SIGNATURE_REFUSED)
    return _verified(body, signature, fresh=True)  # the tenant may have replaced it since


def parse_event(body: bytes) -> dict[str, Any] | None:
    """The event when the body is one: an object with a string id and type (and an object
    under `data`, when there is `data`)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    event_id, kind, data = event.get("id"), event.get("type"), event.get("data", {})
    if not (
        isinstance(event_id, str)
        and 0 < len(event_id) <= MAX_ID
        and isinstance(kind, str)
        and 0 < len(kind) <= 100
    ):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("object", {}), dict):
        return None
    return event


def deliver(*, body: bytes, signature: str) -> tuple[WebhookEvent, bool]:
    """One delivery of Stripe's, `signature` its Stripe-Signature header: verified with the
    tenant's signing secret (within the timestamp tolerance), parsed once, stored once and applied
    (`receive_event`). Raises Refused when it is not a verified event (nothing written)."""
    token = _verified(body, signature)
    event = parse_event(body)
    if event is None:
        raise Refused(NOT_AN_EVENT)
    payload = body.decode("utf-8")  # it verified, so it is UTF-8: stored as it came
    try:
        try:
            return receive_event(event=event, payload=payload, secret_token=token)
        except _SecretChanged:
            token = _verified(body, signature, fresh=True)
            return receive_event(event=event, payload=payload, secret_token=token)
    except Exception as error:
        error.add_note(f"Stripe event {event['id']} ({event['type']})")  # for the log
        raise


# The event stored once, when the signing secret is still `token` (or no token is given), and the
# row stored before this statement began, if any (a replay). ON CONFLICT waits for a concurrent
# delivery of the same id to end: if it commits, this one stores nothing and is a duplicate; if
# it rolls back, this one stores. No unique-violation error is raised (or logged) for a duplicate.
_STORE_ONCE = f"""
WITH current AS (
    SELECT {_SECRET_STILL} AS ok
),
ev AS (
    INSERT INTO payments_webhookevent (event_id, type, payload, outcome, received)
    SELECT %(event_id)s, %(type)s, %(payload)s::jsonb, 'received', %(now)s
    FROM current WHERE current.ok
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id
)
SELECT current.ok, ev.id, seen.id, seen.outcome, seen.payment_id
FROM current
    LEFT JOIN ev ON true
    LEFT JOIN payments_webhookevent AS seen ON seen.event_id = %(event_id)s
"""


def _rank_sql(column: str) -> str:
    """`column`'s rank as SQL, from apps.payments.state.RANK (the table the ORM path reads)."""
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in state.RANK.items())
    return f"CASE {column} {cases} END"


# The order's columns, returned for the after-commit hook (the Order update_status would save).
_ORDER_FIELDS = list(Order._meta.concrete_fields)
# The move `_APPLY_INTENT` makes without apps.orders.services.update_status: pending to paid,
# stamped, as the order machine allows it.
assert order_status.allowed(order_status.PENDING, order_status.PAID, order_status.Cause.UPDATE)
assert order_status.STAMPS[order_status.PAID] == "paid_at"

# A stored intent event applied in one statement (what `_apply_intent` does through the ORM in
# eight or nine):
# - `o`, `p`: the payment's order, then the payment, locked in the one lock order (a LockRows
#   node emits no row before the rows it joins are locked, so `o` is locked before `p`), and read
#   as last committed;
# - `d`: the outcome, from those rows;
# - `pay`, `ord`, `oe`, `audit`: the payment moved up its rank (its method type noted), its
#   pending order paid (with its OrderEvent), both status changes audited, the payment's first;
# - `ev`: the outcome on the stored event.
# A success for an order that no longer waits for it ("unexpected") changes nothing here: the
# ORM path (`_apply`) handles it in the same transaction.
_APPLY_INTENT = f"""
WITH o AS (
    SELECT id, status FROM orders_order
    WHERE id = (
        SELECT order_id FROM payments_payment
        WHERE provider = %(provider)s AND stripe_id = %(intent_id)s
    ) AND %(lookup)s
    FOR UPDATE
),
p AS (
    SELECT payments_payment.id, payments_payment.status, payments_payment.order_id,
        o.status AS order_status
    FROM payments_payment JOIN o ON o.id = payments_payment.order_id
    WHERE payments_payment.provider = %(provider)s AND payments_payment.stripe_id = %(intent_id)s
    FOR UPDATE OF payments_payment
),
d AS (
    SELECT CASE
            WHEN %(foreign)s THEN 'foreign'
            WHEN p.id IS NULL THEN 'unknown_payment'
            WHEN {_rank_sql("p.status")} >= %(target_rank)s THEN 'stale'
            WHEN %(pays)s AND p.order_status <> %(pending)s THEN 'unexpected'
            ELSE 'applied'
        END AS outcome,
        p.id AS payment_id, p.status AS before, p.order_id
    FROM (SELECT) AS one LEFT JOIN p ON true
),
pay AS (
    UPDATE payments_payment SET
        status = %(target)s,
        failure_code = CASE WHEN %(failed)s THEN %(failure_code)s ELSE failure_code END,
        failure_message = CASE WHEN %(failed)s THEN %(failure_message)s ELSE failure_message END,
        method_type = CASE WHEN %(method_type)s <> '' THEN %(method_type)s ELSE method_type END,
        updated = %(now)s
    FROM d
    WHERE d.outcome = 'applied' AND payments_payment.id = d.payment_id
    RETURNING payments_payment.id
),
ord AS (
    UPDATE orders_order SET status = %(paid)s, paid_at = %(now)s, updated = %(now)s
    FROM pay, d
    WHERE %(pays)s AND orders_order.id = d.order_id AND orders_order.status = %(pending)s
    RETURNING {", ".join(f"orders_order.{field.column}" for field in _ORDER_FIELDS)}
),
oe AS (
    INSERT INTO orders_orderevent (order_id, type, from_status, to_status, data, actor_email, created)
    SELECT ord.id, 'status_changed', %(pending)s, %(paid)s, '{{}}'::jsonb, %(actor)s, %(now)s
    FROM ord
),
audit AS (
    INSERT INTO audit_auditentry (
        actor_id, actor_email, api_key_prefix, action, object_type, object_id, changes,
        request_id, created
    )
    SELECT NULL, %(actor)s, '', entry.action, entry.object_type, entry.object_id, entry.changes,
        %(request_id)s, %(now)s
    FROM (
        SELECT 1 AS position, 'payment.update_status' AS action, 'Payment' AS object_type,
            pay.id::text AS object_id,
            jsonb_build_object('status', jsonb_build_array(d.before, %(target)s))
                || %(failure_changes)s::jsonb AS changes
        FROM pay, d
        UNION ALL
        SELECT 2, 'order.update_status', 'Order', ord.id::text,
            jsonb_build_object('status', jsonb_build_array(%(pending)s, %(paid)s))
        FROM ord
        ORDER BY position
    ) AS entry
),
ev AS (
    UPDATE payments_webhookevent SET
        outcome = d.outcome,
        payment_id = CASE WHEN d.outcome IN ('applied', 'stale') THEN d.payment_id END
    FROM d
    WHERE payments_webhookevent.id = %(stored_id)s AND d.outcome <> 'unexpected'
)
SELECT d.outcome, d.payment_id, {", ".join(f"ord.{field.column}" for field in _ORDER_FIELDS)}
FROM d LEFT JOIN ord ON true
"""


def receive_event(
    *, event: dict[str, Any], payload: str | None = None, secret_token: str | None = None
) -> tuple[WebhookEvent, bool]:
    """Store a verified Stripe event once and apply it, in one transaction; (event, False) for
    one stored already (a replay, or a concurrent delivery that committed first). `payload`: the
    JSON text the event came as, stored as it is (`event` dumped when None). `secret_token`: the
    stored (encrypted) signing secret that verified it; when the tenant's is another by the time
    of the write, nothing is written and _SecretChanged is raised.

    Two statements: `_STORE_ONCE`, then, for an event stored now, `_APPLY_INTENT` for an intent
    event (the ORM path, `_apply`, for the others and for an unexpected success)."""
    text = json.dumps(event) if payload is None else payload
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _STORE_ONCE,
                {
                    "event_id": event["id"],
                    "type": event["type"],
                    "payload": text,
                    "now": now,
                    "token": secret_token,
                    "settings_id": PaymentSettings.SINGLETON,
                },
            )
            secret_ok, stored_id, seen_id, seen_outcome, seen_payment_id = cursor.fetchone()
        if not secret_ok:
            raise _SecretChanged
        if stored_id is None:  # stored before this statement began, or while it waited
            if seen_id is None:
                return WebhookEvent.objects.get(event_id=event["id"]), False
            seen = WebhookEvent(pk=seen_id, event_id=event["id"], type=event["type"], payload=event)
            seen.outcome, seen.payment_id = seen_outcome, seen_payment_id
            return seen, False
        stored = WebhookEvent(
            pk=stored_id, event_id=event["id"], type=event["type"], payload=event, received=now
        )
        if event["type"] not in INTENT_EVENTS or not _apply_intent_at_once(event, stored, now):
            stored.outcome, stored.payment = _apply(event)
            stored.save(update_fields=["outcome", "payment"])
        return stored, True


def _apply_intent_at_once(event: dict[str, Any], stored: WebhookEvent, now: datetime) -> bool:
    """Apply a stored intent event in one statement (`_APPLY_INTENT`), noting its outcome on
    `stored`; False, having changed nothing, for a success whose order no longer waits for it."""
    intent = (event.get("data") or {}).get("object") or {}
    target = INTENT_EVENTS[event["type"]]
    intent_id = intent.get("id")
    code, message = state.failure(intent)
    foreign = _foreign(intent.get("metadata"))
    params = {
        "stored_id": stored.pk,
        "provider": Provider.STRIPE,
        "intent_id": intent_id if isinstance(intent_id, str) else "",
        "lookup": isinstance(intent_id, str) and bool(intent_id) and not foreign,
        "foreign": foreign,
        "target": target,
        "target_rank": state.RANK[target],
        "pays": target == PaymentStatus.SUCCEEDED,
        "pending": order_status.PENDING,
        "paid": order_status.PAID,
        "failed": target == PaymentStatus.FAILED,
        "failure_code": code[:100],
        "failure_message": message,
        "failure_changes": json.dumps({"failureCode": code} if code else {}),
        "method_type": methods.method_type(intent)[:32],
        "actor": orders.actor_label(STRIPE_WEBHOOK),
        "request_id": current_request_id.get() or "",
        "now": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_INTENT, params)
        outcome, payment_id, *order_row = cursor.fetchone()
    if outcome == "unexpected":
        return False
    stored.outcome = outcome
    stored.payment_id = payment_id if outcome in ("applied", "stale") else None
    if order_row[0] is not None:  # it paid the order
        paid = Order.from_db(connection.alias, [f.attname for f in _ORDER_FIELDS], order_row)
        hooks.order_status_changed.send(order=paid, before=order_status.PENDING)
    return True


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
