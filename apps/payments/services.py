"""Writes for payments: the tenant's provider settings, Stripe PaymentIntents (created and
confirmed with the tenant's own key) and manual payments marked by staff.

No Stripe call is made inside a transaction (DESIGN §12). An intent is made in three steps: the
attempt is recorded (a Payment without a Stripe id, committed), Stripe is asked for the intent
with the idempotency key `<schema>:order-<order>:attempt-<attempt>`, and its id is recorded in a
short transaction. A request that dies in between leaves the attempt open: the next
`paymentIntentCreate` of the order (or the reconciler, apps.payments.reconcile) asks again with
the same key, and Stripe hands back the same intent. A confirmation asks Stripe first and applies
its answer after (apps.payments.state: statuses only move up, so the webhook reporting the same
change, before or after, changes nothing).
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.db import transaction
from django.db.models import Max

from apps.audit import services as audit
from apps.common import crypto
from apps.common.actors import Actor
from apps.common.crashpoints import crash_point
from apps.common.errors import NotFound, UserError
from apps.orders import services as orders
from apps.orders.models import Order, OrderStatus
from apps.payments import gateway, selectors, state
from apps.payments.errors import PaymentErrorCode
from apps.payments.models import Payment, PaymentSettings, PaymentStatus, Provider
from tenants.db import connection

log = logging.getLogger(__name__)

KEY_PREFIXES = {
    "stripe_publishable_key": ("pk_",),
    "stripe_secret_key": ("sk_", "rk_"),
    "stripe_webhook_secret": ("whsec_",),
}
MAX_KEY = 255

# --- settings ---------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _key(name: str, value: str) -> str:
    """A Stripe key as given ("" clears it); the message never repeats the value."""
    value = value.strip()
    if value and (
        len(value) > MAX_KEY
        or not value.startswith(KEY_PREFIXES[name])
        or any(c.isspace() for c in value)
    ):
        expected = " or ".join(KEY_PREFIXES[name])
        raise UserError(
            f"This is not a Stripe key of this kind (it should start with {expected}).",
            field=_camel(name),
            code=PaymentErrorCode.INVALID,
        )
    return value


@transaction.atomic
def update_settings(
    *,
    actor: Actor,
    stripe_enabled: bool | None = None,
    manual_enabled: bool | None = None,
    stripe_publishable_key: str | None = None,
    stripe_secret_key: str | None = None,
    stripe_webhook_secret: str | None = None,
) -> PaymentSettings:
    """Change what is given (None: unchanged; "" clears a key). Stripe can be on only with all
    three keys set. The audit entry says a secret was set or cleared, never what it is."""
    current = PaymentSettings.objects.select_for_update().filter(
        pk=PaymentSettings.SINGLETON
    ).first() or PaymentSettings(pk=PaymentSettings.SINGLETON)
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
    for name, given in (
        ("stripe_secret_key", stripe_secret_key),
        ("stripe_webhook_secret", stripe_webhook_secret),
    ):
        if given is not None:
            secret = _key(name, given)
            setattr(current, f"{name}_encrypted", crypto.encrypt(secret))
            changes[_camel(name)] = "set" if secret else "cleared"
    if current.stripe_enabled and not (
        current.stripe_publishable_key
        and current.stripe_secret_key_encrypted
        and current.stripe_webhook_secret_encrypted
    ):
        raise UserError(
            "Stripe needs its publishable key, secret key and webhook signing secret.",
            field="stripeEnabled",
            code=PaymentErrorCode.STRIPE_NOT_CONFIGURED,
        )
    current.save()
    audit.record(actor=actor, action="payment_settings.update", obj=current, changes=changes)
    return current


# --- payments ---------------------------------------------------------------------------------


def _payable(order_id: int, field: str) -> Order:
    """The order, locked, when it is waiting for payment."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", field=field)
    if order.status != OrderStatus.PENDING:
        raise UserError(
            f"Only a pending order can be paid (this one is {order.status}).",
            field=field,
            code=PaymentErrorCode.NOT_PAYABLE,
        )
    if order.total <= 0:
        raise UserError(
            "This order has nothing to pay.", field=field, code=PaymentErrorCode.NOT_PAYABLE
        )
    return order


def _next_attempt(order: Order) -> int:
    return (order.payments.aggregate(last=Max("attempt"))["last"] or 0) + 1


@transaction.atomic
def _open_attempt(order_id: int) -> Payment:
    """The order's open Stripe attempt, or a new one recorded for it (without a Stripe id yet)."""
    order = _payable(order_id, "order")
    if order.payments.filter(status=PaymentStatus.SUCCEEDED).exists():
        raise UserError(
            "This order is paid already.", field="order", code=PaymentErrorCode.ALREADY_PAID
        )
    open_attempt = order.payments.filter(
        provider=Provider.STRIPE, status=PaymentStatus.PENDING
    ).first()
    if open_attempt is not None:
        return open_attempt
    return Payment.objects.create(
        order=order,
        provider=Provider.STRIPE,
        amount=order.total,
        currency=order.currency,
        attempt=_next_attempt(order),
    )


def intent_key(payment: Payment) -> str:
    """The idempotency key of the attempt's intent: every request for it gets the same intent."""
    return f"{connection.schema_name}:order-{payment.order_id}:attempt-{payment.attempt}"


def make_intent(api: stripe.StripeClient, payment: Payment, *, actor: Actor) -> tuple[Payment, Any]:
    """Ask Stripe for the intent of a recorded attempt (again, after a crash: the same key gives
    the same intent), then record its id; (payment, intent). Outside any transaction."""
    schema = connection.schema_name
    order = Order.objects.only("number").get(pk=payment.order_id)
    crash_point("intent.before_call")
    intent = gateway.call(
        api.v1.payment_intents.create,
        params={
            "amount": gateway.minor_units(payment.amount, payment.currency),
            "currency": payment.currency.lower(),
            "metadata": {
                "tenant": schema,
                "order_id": str(payment.order_id),
                "order_number": str(order.number),
                "attempt": str(payment.attempt),
                "payment": str(payment.pk),
            },
        },
        options={"idempotency_key": intent_key(payment)},
    )
    crash_point("intent.after_answer")
    with transaction.atomic():
        locked = state.lock_payment(payment.pk)
        if not locked.stripe_id:
            locked.stripe_id = intent.id
            locked.save(update_fields=["stripe_id", "updated"])
            audit.record(
                actor=actor,
                action="payment.intent_create",
                obj=locked,
                changes={
                    "order": locked.order_id,
                    "attempt": locked.attempt,
                    "amount": str(locked.amount),
                    "stripeId": intent.id,
                },
            )
        elif (
            locked.stripe_id != intent.id
        ):  # Stripe forgot the key (older than 24 h): keep the first
            log.warning(
                "Payment %s has intent %s; Stripe made %s for the same attempt",
                locked.pk,
                locked.stripe_id,
                intent.id,
            )
        crash_point("intent.before_commit")
    return locked, intent


def create_intent(*, actor: Actor, order_id: int) -> tuple[Payment, str]:
    """A Stripe PaymentIntent for a pending order's total and its client secret (not stored).
    An open attempt (still pending) is handed out again instead of starting another; one whose
    intent was never recorded (a request that died, Stripe unreachable) is made now."""
    api = gateway.api_for(selectors.payment_settings(), "order")
    payment = _open_attempt(order_id)
    if payment.stripe_id:
        return payment, gateway.call(
            api.v1.payment_intents.retrieve, payment.stripe_id
        ).client_secret
    payment, intent = make_intent(api, payment, actor=actor)
    if intent.id != payment.stripe_id:
        intent = gateway.call(api.v1.payment_intents.retrieve, payment.stripe_id)
    return payment, intent.client_secret


def _confirm(api: stripe.StripeClient, intent_id: str) -> tuple[str, str, str]:
    try:
        return state.intent_state(api.v1.payment_intents.confirm(intent_id).to_dict())
    except (
        stripe.CardError
    ) as exc:  # declined: a fact about the payment, not a mistake in the input
        return PaymentStatus.FAILED, exc.code or "card_declined", exc.user_message or ""


def confirm_payment(*, actor: Actor, payment_id: int, payment_method: str) -> Payment:
    """Back-office confirmation of a pending Stripe payment with a payment method (pm_…): Stripe
    is asked first, outside any transaction, and its answer applied after."""
    payment_method = (payment_method or "").strip()
    if not payment_method.startswith("pm_") or len(payment_method) > MAX_KEY:
        raise UserError(
            "Give a Stripe payment method id (pm_…).",
            field="paymentMethod",
            code=PaymentErrorCode.INVALID,
        )
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("No such payment.", field="payment")
    if (
        payment.provider != Provider.STRIPE
        or payment.status != PaymentStatus.PENDING
        or not payment.stripe_id
    ):
        raise UserError(
            f"Only a pending Stripe payment can be confirmed (this one is {payment.status}).",
            field="payment",
            code=PaymentErrorCode.NOT_CONFIRMABLE,
        )
    api = gateway.api_for(selectors.payment_settings(), "payment")
    # Set the method, then confirm (localstripe does not take it on confirm; Stripe takes both).
    gateway.call(
        api.v1.payment_intents.update, payment.stripe_id, params={"payment_method": payment_method}
    )
    status, code, message = gateway.call(_confirm, api, payment.stripe_id)
    with transaction.atomic():
        payment = state.lock_payment(payment.pk)
        audit.record(
            actor=actor,
            action="payment.confirm",
            obj=payment,
            changes={"paymentMethod": payment_method},
        )
        state.apply_state(payment, status, actor=actor, failure_code=code, failure_message=message)
    return payment


@transaction.atomic
def mark_paid(*, actor: Actor, order_id: int) -> Payment:
    """A manual payment (cash, bank transfer) of a pending order's total, which pays the order."""
    if not selectors.payment_settings().manual_enabled:
        raise UserError(
            "Manual payments are not enabled for this shop.",
            field="order",
            code=PaymentErrorCode.PROVIDER_DISABLED,
        )
    order = _payable(order_id, "order")
    payment = Payment.objects.create(
        order=order,
        provider=Provider.MANUAL,
        amount=order.total,
        currency=order.currency,
        attempt=_next_attempt(order),
        status=PaymentStatus.SUCCEEDED,
    )
    audit.record(
        actor=actor,
        action="payment.mark_paid",
        obj=payment,
        changes={"order": order.pk, "amount": str(order.total)},
    )
    payment.order = orders.update_status(actor=actor, order_id=order.pk, status=OrderStatus.PAID)
    state.queue_intent_cancellation(order.pk)  # the buyer can no longer pay an open intent too
    return payment
