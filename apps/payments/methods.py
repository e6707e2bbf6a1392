"""Saved payment methods: one Stripe Customer per shop customer (created on first need, with the
tenant's own key), whose payment methods are listed, attached, detached and made the default at
Stripe. Stripe keeps the methods; only the Stripe Customer's id is stored here.

A stored Stripe Customer that Stripe no longer knows (the tenant switched to another Stripe
account, or it was deleted in the dashboard) reads as having no methods, and the next attach
replaces it with a new one.

Stripe lets anyone holding a method's id attach it, so a method already attached to another
Stripe customer is refused here (otherwise it would silently move between shoppers), and detach
and set-default check that the method is this customer's first.

No Stripe call is made inside a transaction (DESIGN §12). A first use creates the Stripe Customer
with the idempotency key `<schema>:customer-<pk>`, so two concurrent first uses get the same one
from Stripe, then records it in a short transaction under the customer row's lock, where the first
recorded wins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import stripe
from django.db import transaction

from apps.audit import services as audit
from apps.common.actors import Actor
from apps.common.errors import NotFound, UserError
from apps.customers.models import Customer
from apps.payments import gateway, selectors
from apps.payments.errors import PaymentErrorCode
from apps.payments.models import Payment, StripeCustomer
from tenants.db import connection

MAX_ID = 255


@dataclass(frozen=True)
class SavedMethod:
    """A payment method as Stripe reports it (card details only for cards)."""

    id: str
    type: str
    is_default: bool
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


def _saved(method: dict[str, Any], default_id: str | None) -> SavedMethod:
    card = method.get("card") or {}
    return SavedMethod(
        id=method["id"],
        type=method.get("type") or "",
        is_default=method["id"] == default_id,
        brand=card.get("brand"),
        last4=card.get("last4"),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
    )


def _method_id(value: str) -> str:
    value = (value or "").strip()
    if not value.startswith("pm_") or len(value) > MAX_ID or any(c.isspace() for c in value):
        raise UserError(
            "Give a Stripe payment method id (pm_…).",
            field="paymentMethod",
            code=PaymentErrorCode.INVALID,
        )
    return value


def _call(
    call: Callable[..., Any], *args: Any, missing: str = "paymentMethod", **kwargs: Any
) -> Any:
    """A Stripe call (apps.payments.gateway.call), where what Stripe does not know (`missing`: the
    payment method, or the customer) is NOT_FOUND."""

    @wraps(call)
    def missing_is_not_found(*a: Any, **kw: Any) -> Any:
        try:
            return call(*a, **kw)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                what = "payment method" if missing == "paymentMethod" else "customer"
                raise NotFound(f"Stripe knows no such {what}.", field=missing) from exc
            raise

    return gateway.call(missing_is_not_found, *args, **kwargs)


def _api() -> stripe.StripeClient:
    return gateway.api_for(selectors.payment_settings(), "customer")


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.", field="customer")
    return customer


def _stripe_customer(
    customer: Customer,
    api: stripe.StripeClient,
    *,
    actor: Actor,
    replacing: StripeCustomer | None = None,
) -> StripeCustomer:
    """A Stripe Customer for a customer that has none yet, or whose stored one Stripe no longer
    knows (`replacing`: the tenant switched Stripe accounts, or it was deleted there): made at
    Stripe, then recorded unless a concurrent first use recorded one meanwhile."""
    schema = connection.schema_name
    # A retry after a rolled-back first use gets the same Stripe Customer, not a second one; a
    # replacement has a key of its own, or Stripe would hand back the customer it replaces.
    key = f"{schema}:customer-{customer.pk}" + (
        f":after-{replacing.stripe_customer_id}" if replacing else ""
    )
    created = _call(
        api.v1.customers.create,
        params={
            "email": customer.email,
            "metadata": {"tenant": schema, "customer_id": str(customer.pk)},
        },
        options={"idempotency_key": key},
    )
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list(
            "pk", flat=True
        ).first()
        current = StripeCustomer.objects.filter(customer=customer).first()
        if current is not None and (replacing is None or current.pk != replacing.pk):
            return current  # recorded by a concurrent first use
        if replacing is not None:
            replacing.delete()
            audit.record(
                actor=actor,
                action="stripe_customer.replace",
                obj=customer,
                changes={"stripeCustomerId": [replacing.stripe_customer_id, created.id]},
            )
        row = StripeCustomer.objects.create(customer=customer, stripe_customer_id=created.id)
        audit.record(
            actor=actor,
            action="stripe_customer.create",
            obj=row,
            changes={"stripeCustomerId": created.id},
        )
    return row


def _known(api: stripe.StripeClient, row: StripeCustomer | None) -> bool:
    """Whether Stripe (the tenant's current account) knows the stored Stripe Customer."""
    if row is None:
        return False
    try:
        _default_id(api, row.stripe_customer_id)
    except NotFound:
        return False
    return True


def _default_id(api: stripe.StripeClient, stripe_customer_id: str) -> str | None:
    found = _call(api.v1.customers.retrieve, stripe_customer_id, missing="customer").to_dict()
    return (found.get("invoice_settings") or {}).get("default_payment_method")


def _owned(
    api: stripe.StripeClient, row: StripeCustomer | None, method_id: str
) -> tuple[StripeCustomer, dict[str, Any]]:
    """The customer's Stripe row and the method, when the method is attached to that customer."""
    method = _call(api.v1.payment_methods.retrieve, method_id).to_dict()
    if row is None or method.get("customer") != row.stripe_customer_id:
        raise UserError(
            "This payment method is not one of this customer's.",
            field="paymentMethod",
            code=PaymentErrorCode.NOT_ATTACHED,
        )
    return row, method


def list_methods(*, customer_id: int) -> list[SavedMethod]:
    """The customer's card payment methods at Stripe, the default marked; none before the first
    attach (a read creates no Stripe Customer)."""
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound("No such customer.", field="customer")
    row = StripeCustomer.objects.filter(customer_id=customer_id).first()
    if row is None:
        return []
    api = _api()
    try:
        default_id = _default_id(api, row.stripe_customer_id)
    except NotFound:  # another Stripe account, or deleted there: nothing saved here any more
        return []
    # type=card: the one type localstripe lists (Stripe needs a type per list call too).
    found = _call(
        api.v1.payment_methods.list,
        params={"customer": row.stripe_customer_id, "type": "card", "limit": 100},
    )
    return [_saved(method.to_dict(), default_id) for method in found.data]


def attach(*, actor: Actor, customer_id: int, payment_method: str) -> SavedMethod:
    """Attach a method to the customer's Stripe Customer (made now if there is none). Attaching
    one that is already the customer's changes nothing."""
    method_id = _method_id(payment_method)
    customer = _customer(customer_id)
    api = _api()
    method = _call(api.v1.payment_methods.retrieve, method_id).to_dict()
    existing = StripeCustomer.objects.filter(customer=customer).first()
    if existing is not None and method.get("customer") == existing.stripe_customer_id:
        return _saved(method, _default_id(api, existing.stripe_customer_id))
    if method.get("customer"):
        raise UserError(
            "This payment method belongs to someone else.",
            field="paymentMethod",
            code=PaymentErrorCode.ATTACHED_ELSEWHERE,
        )
    if existing is not None and _known(api, existing):
        row = existing
    else:
        row = _stripe_customer(customer, api, actor=actor, replacing=existing)
    attached = _call(
        api.v1.payment_methods.attach, method_id, params={"customer": row.stripe_customer_id}
    )
    audit.record(
        actor=actor,
        action="payment_method.attach",
        obj=row,
        changes={"paymentMethod": method_id, "type": method.get("type")},
    )
    return _saved(attached.to_dict(), _default_id(api, row.stripe_customer_id))


def detach(*, actor: Actor, customer_id: int, payment_method: str) -> SavedMethod:
    """Detach one of the customer's methods; if it was the default, there is no default after."""
    method_id = _method_id(payment_method)
    customer = _customer(customer_id)
    api = _api()
    row, _ = _owned(api, StripeCustomer.objects.filter(customer=customer).first(), method_id)
    was_default = _default_id(api, row.stripe_customer_id) == method_id
    if was_default:
        _call(
            api.v1.customers.update,
            row.stripe_customer_id,
            params={"invoice_settings": {"default_payment_method": ""}},
            missing="customer",
        )
    detached = _call(api.v1.payment_methods.detach, method_id)
    audit.record(
        actor=actor,
        action="payment_method.detach",
        obj=row,
        changes={"paymentMethod": method_id, "wasDefault": was_default},
    )
    return _saved(detached.to_dict(), None)


def set_default(*, actor: Actor, customer_id: int, payment_method: str) -> SavedMethod:
    """Make one of the customer's methods its default (invoice_settings.default_payment_method)."""
    method_id = _method_id(payment_method)
    customer = _customer(customer_id)
    api = _api()
    row, method = _owned(api, StripeCustomer.objects.filter(customer=customer).first(), method_id)
    before = _default_id(api, row.stripe_customer_id)
    if before != method_id:
        _call(
            api.v1.customers.update,
            row.stripe_customer_id,
            params={"invoice_settings": {"default_payment_method": method_id}},
            missing="customer",
        )
        audit.record(
            actor=actor,
            action="payment_method.set_default",
            obj=row,
            changes={"defaultPaymentMethod": [before, method_id]},
        )
    return _saved(method, method_id)


def method_type(intent: dict[str, Any]) -> str:
    """The kind of method a PaymentIntent used, from what Stripe's event says: the failed method,
    the (expanded) method, or the one type the intent allows; empty when it says none."""
    failed = (intent.get("last_payment_error") or {}).get("payment_method") or {}
    used = method if isinstance(method := intent.get("payment_method"), dict) else {}
    allowed = intent.get("payment_method_types") or []
    found = failed.get("type") or used.get("type") or (allowed[0] if len(allowed) == 1 else "")
    return found if isinstance(found, str) else ""


def record_method_type(payment: Payment, intent: dict[str, Any]) -> None:
    """Note on a payment the kind of method its PaymentIntent used (`method_type`)."""
    found = method_type(intent)
    if found and found[:32] != payment.method_type:
        payment.method_type = found[:32]
        Payment.objects.filter(pk=payment.pk).update(method_type=payment.method_type)
