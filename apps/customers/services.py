"""Writes for customers: create, update and delete them (validated here, whoever calls), add
notes, and `record_order`, which keeps a customer's order statistics current; the order services
call it inside their own transaction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Expression, F, ProtectedError
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from apps.audit import services as audit
from apps.common.actors import Actor
from apps.common.errors import NotFound, UserError
from apps.common.rules import optional_text, required_text
from apps.customers.countries import COUNTRY_CODES
from apps.customers.errors import CustomerErrorCode
from apps.customers.models import Customer, CustomerNote

# The keys an address may have (a list of these objects is stored in Customer.addresses).
ADDRESS_KEYS = ("line1", "line2", "city", "region", "postal_code", "country")
REQUIRED_ADDRESS_KEYS = ("line1", "city", "country")
ADDRESS_FIELD_MAX = 200
MAX_ADDRESSES = 20
MAX_TAGS = 50
TAG_MAX = 50  # the model's CharField(max_length=50)
NAME_MAX = 100
NOTE_MAX = 10_000
# E.164: a '+', a country code that does not start with 0, at most 15 digits in all. People
# write spaces, dots, dashes and parentheses between the digits; those are dropped.
PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
EDITABLE = ("email", "first_name", "last_name", "phone", "addresses", "tags", "accepts_marketing")
CAMEL = {
    "first_name": "firstName",
    "last_name": "lastName",
    "postal_code": "postalCode",
    "accepts_marketing": "acceptsMarketing",
}


def clean_email(value: Any) -> str:
    email = optional_text(value, field="email", max_length=254).lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise UserError(
            "Enter a valid email address.", field="email", code=CustomerErrorCode.INVALID
        ) from exc
    return email


def clean_phone(value: Any) -> str:
    phone = PHONE_SEPARATORS.sub("", optional_text(value, field="phone", max_length=40))
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if phone and not PHONE.fullmatch(phone):
        raise UserError(
            "Enter the phone number in international form: + and the country code, 7 to 15 digits.",
            field="phone",
            code=CustomerErrorCode.INVALID,
        )
    return phone


def clean_addresses(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise UserError(
            "Addresses must be a list.", field="addresses", code=CustomerErrorCode.INVALID
        )
    if len(value) > MAX_ADDRESSES:
        raise UserError(
            f"At most {MAX_ADDRESSES} addresses.", field="addresses", code=CustomerErrorCode.INVALID
        )
    cleaned = []
    for index, address in enumerate(value):
        where = (
            f"addresses.{index}"  # the path style of every userErrors.field: dotted, indexes too
        )
        if not isinstance(address, Mapping):
            raise UserError(
                "An address must be an object.", field=where, code=CustomerErrorCode.INVALID
            )
        unknown = sorted(set(address) - set(ADDRESS_KEYS))
        if unknown:
            raise UserError(
                f"Unknown address field {unknown[0]!r}.",
                field=f"{where}.{unknown[0]}",
                code=CustomerErrorCode.INVALID,
            )
        item = {
            key: optional_text(
                address.get(key),
                field=f"{where}.{CAMEL.get(key, key)}",
                max_length=ADDRESS_FIELD_MAX,
            )
            for key in ADDRESS_KEYS
        }
        for key in REQUIRED_ADDRESS_KEYS:
            if not item[key]:
                raise UserError(
                    "Required.",
                    field=f"{where}.{CAMEL.get(key, key)}",
                    code=CustomerErrorCode.INVALID,
                )
        item["country"] = item["country"].upper()
        if item["country"] not in COUNTRY_CODES:
            raise UserError(
                "Use a two-letter ISO 3166 country code, such as DE or US.",
                field=f"{where}.country",
                code=CustomerErrorCode.INVALID,
            )
        cleaned.append(item)
    return cleaned


def clean_tags(value: Any) -> list[str]:
    """Lower-case (so that the tag filter finds "VIP" and "vip" alike, with the array index),
    trimmed, without blanks or repeats, in the order given."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(tag, str) for tag in value):
        raise UserError(
            "Tags must be a list of text.", field="tags", code=CustomerErrorCode.INVALID
        )
    tags = list(dict.fromkeys(tag.strip().lower() for tag in value if tag.strip()))
    if any(len(tag) > TAG_MAX for tag in tags):
        raise UserError(
            f"A tag has at most {TAG_MAX} characters.", field="tags", code=CustomerErrorCode.INVALID
        )
    if len(tags) > MAX_TAGS:
        raise UserError(f"At most {MAX_TAGS} tags.", field="tags", code=CustomerErrorCode.INVALID)
    return tags


def _cleaned(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise UserError(
            f"{unknown[0]} cannot be changed.",
            field=CAMEL.get(unknown[0], unknown[0]),
            code=CustomerErrorCode.INVALID,
        )
    cleaners = {
        "email": clean_email,
        "first_name": lambda v: optional_text(v, field="firstName", max_length=NAME_MAX),
        "last_name": lambda v: optional_text(v, field="lastName", max_length=NAME_MAX),
        "phone": clean_phone,
        "addresses": clean_addresses,
        "tags": clean_tags,
        "accepts_marketing": _flag,
    }
    return {name: cleaners[name](value) for name, value in changes.items()}


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(
            "Must be true or false.", field="acceptsMarketing", code=CustomerErrorCode.INVALID
        )
    return value


def _ensure_email_free(email: str, *, other_than: int | None = None) -> None:
    taken = Customer.objects.filter(email=email)
    if other_than is not None:
        taken = taken.exclude(pk=other_than)
    if taken.exists():
        raise UserError(
            "Another customer has this email address.",
            field="email",
            code=CustomerErrorCode.DUPLICATE,
        )


def _save(customer: Customer, **kwargs: Any) -> None:
    """Save; a concurrent write of the same email (the unique index) is a userError too."""
    try:
        with transaction.atomic():
            customer.save(**kwargs)
    except IntegrityError as exc:
        raise UserError(
            "Another customer has this email address.",
            field="email",
            code=CustomerErrorCode.DUPLICATE,
        ) from exc


def _locked(customer_id: int) -> Customer:
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.")
    return customer


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@transaction.atomic
def create_customer(*, actor: Actor, email: str, **fields: Any) -> Customer:
    """A new customer. `fields`: first_name, last_name, phone, addresses (dicts with the keys of
    ADDRESS_KEYS), tags, accepts_marketing. Email is stored lower-case, unique in the tenant."""
    values = _cleaned({"email": email, **fields})
    _ensure_email_free(values["email"])
    customer = Customer(**values)
    if customer.accepts_marketing:
        customer.marketing_consent_at = timezone.now()
    _save(customer)
    audit.record(
        actor=actor,
        action="customer.create",
        obj=customer,
        changes={name: _audit_value(getattr(customer, name)) for name in EDITABLE},
    )
    return customer


@transaction.atomic
def update_customer(*, actor: Actor, customer_id: int, changes: Mapping[str, Any]) -> Customer:
    """Change the given fields (names of EDITABLE). Marketing consent is time-stamped when it
    is given and the time cleared when it is withdrawn."""
    values = _cleaned(changes)
    customer = _locked(customer_id)
    if "email" in values:
        _ensure_email_free(values["email"], other_than=customer.pk)
    if "accepts_marketing" in values and values["accepts_marketing"] != customer.accepts_marketing:
        values["marketing_consent_at"] = timezone.now() if values["accepts_marketing"] else None
    changed = {name: value for name, value in values.items() if getattr(customer, name) != value}
    if not changed:
        return customer
    before = {name: getattr(customer, name) for name in changed}
    for name, value in changed.items():
        setattr(customer, name, value)
    _save(customer, update_fields=list(changed))
    audit.record(
        actor=actor,
        action="customer.update",
        obj=customer,
        changes={
            name: [_audit_value(before[name]), _audit_value(value)]
            for name, value in changed.items()
        },
    )
    return customer


HAS_ORDERS = "This customer has orders and cannot be deleted; orders keep their customer."


@transaction.atomic
def delete_customer(*, actor: Actor, customer_id: int) -> None:
    """Delete a customer who has no orders (orders PROTECT their customer), with their notes."""
    customer = _locked(customer_id)
    if customer.orders.exists():
        raise UserError(HAS_ORDERS, field="id", code=CustomerErrorCode.HAS_ORDERS)
    audit.record(
        actor=actor, action="customer.delete", obj=customer, changes={"email": customer.email}
    )
    try:
        with transaction.atomic():
            customer.delete()
    except ProtectedError as exc:  # an order was placed since the check
        raise UserError(HAS_ORDERS, field="id", code=CustomerErrorCode.HAS_ORDERS) from exc


def _author(actor: Actor) -> tuple[int | None, str]:
    user = getattr(actor, "user", None)
    if user is not None:
        return user.pk, user.email
    api_key = getattr(actor, "api_key", None)
    return None, f"API key {api_key.prefix}" if api_key is not None else ""


@transaction.atomic
def add_note(*, actor: Actor, customer_id: int, body: str) -> CustomerNote:
    """A note on a customer, signed by the caller (a person, or the API key that wrote it)."""
    body = required_text(body, field="body", max_length=NOTE_MAX, missing="Write something.")
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.")
    author_id, author_email = _author(actor)
    note = CustomerNote.objects.create(
        customer=customer, body=body, author_id=author_id, author_email=author_email
    )
    audit.record(
        actor=actor, action="customer.note_add", obj=note, changes={"customer": customer.pk}
    )
    return note


def record_order(
    *, customer_id: int, counted: int, spent: Decimal, placed_at: datetime | None
) -> None:
    """Add `counted` orders (+1 placed, -1 cancelled) and `spent` money (negative for refunds
    and cancellations) to a customer's statistics, atomically in SQL (no read-modify-write)."""
    changes: dict[str, Expression] = {
        "orders_count": F("orders_count") + counted,
        "total_spent": F("total_spent") + spent,
    }
    if placed_at is not None and counted > 0:
        changes["first_order_at"] = Least(F("first_order_at"), placed_at)
        changes["last_order_at"] = Greatest(F("last_order_at"), placed_at)
    Customer.objects.filter(pk=customer_id).update(**changes)
