"""Writes for payments: the tenant's provider settings, Stripe PaymentIntents (created and
confirmed with the tenant's own key), manual payments marked by staff, and Stripe webhook events
applied exactly once.

A Payment's status only moves up its rank (pending < failed < canceled < succeeded), whoever
reports it (a confirmation's answer or a webhook, in any order), so a late `payment_failed` never
undoes a success. A success moves a pending order to paid through the order services, in the
same transaction. Locks: the order row, then its payment (as apps.orders.services does).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.db import connection, transaction
from django.db.models import Max

from apps.audit import services as audit
from apps.common.errors import NotFound, UserError
from apps.orders import services as orders
from apps.orders.models import Order, OrderStatus
from apps.payments import crypto, selectors
from apps.payments import stripe_client as edge
from apps.payments.errors import PaymentErrorCode
from apps.payments.models import Payment, PaymentSettings, PaymentStatus, Provider, WebhookEvent

log = logging.getLogger(__name__)

RANK = {PaymentStatus.PENDING: 0, PaymentStatus.FAILED: 1, PaymentStatus.CANCELED: 2, PaymentStatus.SUCCEEDED: 3}
# The webhook events that move a payment, and where to.
INTENT_EVENTS = {
    "payment_intent.succeeded": PaymentStatus.SUCCEEDED,
    "payment_intent.payment_failed": PaymentStatus.FAILED,
    "payment_intent.canceled": PaymentStatus.CANCELED,
}
KEY_PREFIXES = {
    "stripe_publishable_key": ("pk_",),
    "stripe_secret_key": ("sk_", "rk_"),
    "stripe_webhook_secret": ("whsec_",),
}
MAX_KEY = 255
# What callers read when Stripe cannot be reached or fails (the details are in the log).
PROVIDER_UNREACHABLE = "The payment provider could not be reached; try again."
PROVIDER_FAILED = "The payment provider could not complete the request."


@dataclass(frozen=True)
class SystemActor:
    """Who audit entries and order events name for changes nobody signed in made."""

    email: str
    pk: None = None


STRIPE_WEBHOOK = SystemActor(email="Stripe webhook")


# --- settings ---------------------------------------------------------------------------------

def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _key(name: str, value: str) -> str:
    """A Stripe key as given ("" clears it); the message never repeats the value."""
    value = value.strip()
    if value and (len(value) > MAX_KEY or not value.startswith(KEY_PREFIXES[name]) or any(c.isspace() for c in value)):
        expected = " or ".join(KEY_PREFIXES[name])
        raise UserError(f"This is not a Stripe key of this kind (it should start with {expected}).",
                        field=_camel(name), code=PaymentErrorCode.INVALID)
    return value


@transaction.atomic
def update_settings(
    *,
    actor: Any,
    stripe_enabled: bool | None = None,
    manual_enabled: bool | None = None,
    stripe_publishable_key: str | None = None,
    stripe_secret_key: str | None = None,
    stripe_webhook_secret: str | None = None,
) -> PaymentSettings:
    """Change what is given (None: unchanged; "" clears a key). Stripe can be on only with all
    three keys set. The audit entry says a secret was set or cleared, never what it is."""
    current = (
        PaymentSettings.objects.select_for_update().filter(pk=PaymentSettings.SINGLETON).first()
        or PaymentSettings(pk=PaymentSettings.SINGLETON)
    )
    changes: dict[str, Any] = {}
    for name, value in (("stripe_enabled", stripe_enabled), ("manual_enabled", manual_enabled)):
        if value is not None and value != getattr(current, name):
            changes[_camel(name)] = [getattr(current, name), value]
            setattr(current, name, value)
    if stripe_publishable_key is not None:
        key = _key("stripe_publishable_key", stripe_publishable_key)
        if key != current.stripe_publishable_key:
            changes["stripePublishableKey"] = [current.stripe_publishable_key, key]
            current.stripe_publishable_key = key
    for name, value in (("stripe_secret_key", stripe_secret_key), ("stripe_webhook_secret", stripe_webhook_secret)):
        if value is not None:
            secret = _key(name, value)
            setattr(current, f"{name}_encrypted", crypto.encrypt(secret))
            changes[_camel(name)] = "set" if secret else "cleared"
    if current.stripe_enabled and not (
        current.stripe_publishable_key and current.stripe_secret_key_encrypted and current.stripe_webhook_secret_encrypted
    ):
        raise UserError("Stripe needs its publishable key, secret key and webhook signing secret.",
                        field="stripeEnabled", code=PaymentErrorCode.STRIPE_NOT_CONFIGURED)
    current.save()
    audit.record(actor=actor, action="payment_settings.update", obj=current, changes=changes)
    return current


# --- payments ---------------------------------------------------------------------------------

def _stripe(call, *args, **kwargs):
    """A Stripe API call. What Stripe answers about the payment (a declined card, a request it
    refuses) becomes a userError in Stripe's own words, which are written for people and carry no
    secrets. A failure to reach Stripe, or one on its side, becomes one stable message: the SDK's
    text names hosts, ports and library internals, so it goes to the log only, where the request
    id (config.logging) finds it."""
    try:
        return call(*args, **kwargs)
    except stripe.AuthenticationError as exc:
        log.warning("Stripe refused the tenant's secret key (%s)", exc.http_status)
        raise UserError("Stripe refused this shop's secret key.", field=None, code=PaymentErrorCode.PROVIDER_AUTH) from exc
    except (stripe.CardError, stripe.InvalidRequestError) as exc:
        log.warning("Stripe refused the request: %s %s", exc.http_status, exc.code)
        message = exc.user_message or "the request failed"
        raise UserError(f"Stripe: {message}", field=None, code=PaymentErrorCode.PROVIDER_ERROR) from exc
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
        log.warning("Stripe could not be reached (%s): %s", type(exc).__name__, exc)
        raise UserError(PROVIDER_UNREACHABLE, field=None, code=PaymentErrorCode.PROVIDER_ERROR) from exc
    except stripe.StripeError as exc:  # permissions of a restricted key, idempotency conflicts
        log.warning("Stripe failed the request (%s, %s): %s", type(exc).__name__, exc.http_status, exc)
        raise UserError(PROVIDER_FAILED, field=None, code=PaymentErrorCode.PROVIDER_ERROR) from exc


def _stripe_api(config: PaymentSettings, field: str) -> stripe.StripeClient:
    if not config.stripe_enabled:
        raise UserError("Stripe payments are not enabled for this shop.", field=field, code=PaymentErrorCode.PROVIDER_DISABLED)
    return edge.client(config.stripe_secret_key)


def _payable(order_id: int, field: str) -> Order:
    """The order, locked, when it is waiting for payment."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", field=field)
    if order.status != OrderStatus.PENDING:
        raise UserError(f"Only a pending order can be paid (this one is {order.status}).", field=field,
                        code=PaymentErrorCode.NOT_PAYABLE)
    if order.total <= 0:
        raise UserError("This order has nothing to pay.", field=field, code=PaymentErrorCode.NOT_PAYABLE)
    return order


def _next_attempt(order: Order) -> int:
    return (order.payments.aggregate(last=Max("attempt"))["last"] or 0) + 1


def _locked_payment(**lookup) -> Payment | None:
    """The payment, locked after its order (the one lock order for every writer)."""
    row = Payment.objects.filter(**lookup).values("pk", "order_id").first()
    if row is None:
        return None
    Order.objects.select_for_update().filter(pk=row["order_id"]).values_list("pk", flat=True).first()
    return Payment.objects.select_for_update().select_related("order").get(pk=row["pk"])


def _apply_state(payment: Payment, target: str, *, actor: Any, failure_code: str = "",
                 failure_message: str = "") -> bool:
    """Move a locked payment up to `target` (never down); a success pays its pending order.
    False when the payment already is there or beyond."""
    if RANK[target] <= RANK[payment.status]:
        return False
    before, payment.status = payment.status, target
    if target == PaymentStatus.FAILED:
        payment.failure_code, payment.failure_message = failure_code[:100], failure_message
    payment.save(update_fields=["status", "failure_code", "failure_message", "updated"])
    audit.record(actor=actor, action="payment.update_status", obj=payment,
                 changes={"status": [before, target], **({"failureCode": failure_code} if failure_code else {})})
    if target == PaymentStatus.SUCCEEDED and payment.order.status == OrderStatus.PENDING:
        payment.order = orders.update_status(actor=actor, order_id=payment.order_id, status=OrderStatus.PAID)
    elif target == PaymentStatus.SUCCEEDED:
        # Money taken for an order that is no longer waiting for it (cancelled, or paid another
        # way): it goes back (apps.payments.cleanup).
        from apps.payments import cleanup

        cleanup.queue_return(payment)
    return True


@transaction.atomic
def create_intent(*, actor: Any, order_id: int) -> tuple[Payment, str]:
    """A Stripe PaymentIntent for a pending order's total and its client secret (not stored).
    An open attempt (still pending) is handed out again instead of starting another."""
    api = _stripe_api(selectors.payment_settings(), "order")
    order = _payable(order_id, "order")
    if order.payments.filter(status=PaymentStatus.SUCCEEDED).exists():
        raise UserError("This order is paid already.", field="order", code=PaymentErrorCode.ALREADY_PAID)
    open_attempt = order.payments.filter(provider=Provider.STRIPE, status=PaymentStatus.PENDING).first()
    if open_attempt is not None:
        intent = _stripe(api.v1.payment_intents.retrieve, open_attempt.stripe_id)
        return open_attempt, intent.client_secret
    attempt = _next_attempt(order)
    schema = connection.schema_name
    intent = _stripe(
        api.v1.payment_intents.create,
        params={
            "amount": edge.minor_units(order.total, order.currency),
            "currency": order.currency.lower(),
            "metadata": {"tenant": schema, "order_id": str(order.pk), "order_number": str(order.number),
                         "attempt": str(attempt)},
        },
        # A retried request (network, double click) gets the same intent, never a second one.
        options={"idempotency_key": f"{schema}:order-{order.pk}:attempt-{attempt}"},
    )
    payment = Payment.objects.create(
        order=order, provider=Provider.STRIPE, stripe_id=intent.id, amount=order.total,
        currency=order.currency, attempt=attempt,
    )
    audit.record(actor=actor, action="payment.intent_create", obj=payment,
                 changes={"order": order.pk, "attempt": attempt, "amount": str(order.total), "stripeId": intent.id})
    return payment, intent.client_secret


def _failure(intent: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of the intent's last payment error; empty when there is none."""
    error = intent.get("last_payment_error") or {}
    return error.get("decline_code") or error.get("code") or "", error.get("message") or ""


def _intent_state(intent: dict[str, Any]) -> tuple[str, str, str]:
    """(payment status, failure code, failure message) of a PaymentIntent as Stripe reports it."""
    code, message = _failure(intent)
    if intent.get("status") == "succeeded":
        return PaymentStatus.SUCCEEDED, "", ""
    if intent.get("status") == "canceled":
        return PaymentStatus.CANCELED, "", ""
    if intent.get("last_payment_error"):
        return PaymentStatus.FAILED, code, message
    return PaymentStatus.PENDING, "", ""


def _confirm(api: stripe.StripeClient, intent_id: str) -> tuple[str, str, str]:
    try:
        return _intent_state(api.v1.payment_intents.confirm(intent_id).to_dict())
    except stripe.CardError as exc:  # declined: a fact about the payment, not a mistake in the input
        return PaymentStatus.FAILED, exc.code or "card_declined", exc.user_message or ""


@transaction.atomic
def confirm_payment(*, actor: Any, payment_id: int, payment_method: str) -> Payment:
    """Back-office confirmation of a pending Stripe payment with a payment method (pm_…)."""
    payment_method = (payment_method or "").strip()
    if not payment_method.startswith("pm_") or len(payment_method) > MAX_KEY:
        raise UserError("Give a Stripe payment method id (pm_…).", field="paymentMethod", code=PaymentErrorCode.INVALID)
    payment = _locked_payment(pk=payment_id)
    if payment is None:
        raise NotFound("No such payment.", field="payment")
    if payment.provider != Provider.STRIPE or payment.status != PaymentStatus.PENDING:
        raise UserError(f"Only a pending Stripe payment can be confirmed (this one is {payment.status}).",
                        field="payment", code=PaymentErrorCode.NOT_CONFIRMABLE)
    api = _stripe_api(selectors.payment_settings(), "payment")
    # Set the method, then confirm (localstripe does not take it on confirm; Stripe takes both).
    _stripe(api.v1.payment_intents.update, payment.stripe_id, params={"payment_method": payment_method})
    status, code, message = _stripe(_confirm, api, payment.stripe_id)
    audit.record(actor=actor, action="payment.confirm", obj=payment, changes={"paymentMethod": payment_method})
    _apply_state(payment, status, actor=actor, failure_code=code, failure_message=message)
    return payment


@transaction.atomic
def mark_paid(*, actor: Any, order_id: int) -> Payment:
    """A manual payment (cash, bank transfer) of a pending order's total, which pays the order."""
    if not selectors.payment_settings().manual_enabled:
        raise UserError("Manual payments are not enabled for this shop.", field="order", code=PaymentErrorCode.PROVIDER_DISABLED)
    order = _payable(order_id, "order")
    payment = Payment.objects.create(
        order=order, provider=Provider.MANUAL, amount=order.total, currency=order.currency,
        attempt=_next_attempt(order), status=PaymentStatus.SUCCEEDED,
    )
    audit.record(actor=actor, action="payment.mark_paid", obj=payment,
                 changes={"order": order.pk, "amount": str(order.total)})
    payment.order = orders.update_status(actor=actor, order_id=order.pk, status=OrderStatus.PAID)
    from apps.payments import cleanup

    cleanup.queue_intent_cancellation(order.pk)  # the buyer can no longer pay an open intent too
    return payment


# --- webhook ----------------------------------------------------------------------------------

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
    stored.outcome, stored.payment = _apply_event(event)
    stored.save(update_fields=["outcome", "payment"])
    return stored, True


def _apply_event(event: dict[str, Any]) -> tuple[str, Payment | None]:
    from apps.payments import methods, refunds  # both build on this module

    if event["type"] in refunds.EVENTS:  # charge.refunded, refund.updated, charge.dispute.created
        return refunds.apply_event(event)
    target = INTENT_EVENTS.get(event["type"])
    if target is None:
        return "ignored", None
    intent = event.get("data", {}).get("object") or {}
    if (intent.get("metadata") or {}).get("tenant", connection.schema_name) != connection.schema_name:
        return "foreign", None
    intent_id = intent.get("id")
    payment = _locked_payment(provider=Provider.STRIPE, stripe_id=intent_id) if isinstance(intent_id, str) else None
    if payment is None:
        return "unknown_payment", None
    code, message = _failure(intent)
    changed = _apply_state(payment, target, actor=STRIPE_WEBHOOK, failure_code=code, failure_message=message)
    if changed:  # a stale event (a late failure after the success) must not relabel the method
        methods.record_method_type(payment, intent)
    return ("applied" if changed else "stale"), payment
