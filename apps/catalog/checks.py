"""The checks of what a user sends for catalog fields. Each returns the value to store or raises
the UserError the user sees (`field` names where, prefixed for nested inputs: `variants.2.sku`);
a slug or a SKU is also checked to be free, which reads the database."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db.models import Model, SlugField
from django.utils.text import slugify

from apps.catalog.errors import ProductErrorCode
from apps.catalog.models import Product, Variant
from apps.common.errors import UserError
from apps.common.rules import required_text

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_TAGS = 50
MAX_COUNT = 2_147_483_647  # what an IntegerField holds


def name(value: str, field: str, max_length: int) -> str:
    return required_text(value, field=field, max_length=max_length, missing="Give it a name.")


def count(value: int, field: str) -> int:
    if value is None or value < 0:
        raise UserError("It cannot be negative.", field=field, code=ProductErrorCode.NEGATIVE)
    if value > MAX_COUNT:
        raise UserError("That number is too large.", field=field, code=ProductErrorCode.TOO_LARGE)
    return value


def json_object(value: Any, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(
            'Send a JSON object, such as {"material": "cotton"}.',
            field=field,
            code=ProductErrorCode.INVALID,
        )
    return value


def options(value: Any, field: str) -> dict[str, str]:
    checked = json_object(value, field)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in checked.items()):
        raise UserError(
            'Options map names to text, such as {"size": "M"}.',
            field=field,
            code=ProductErrorCode.INVALID,
        )
    return checked


def tags(values: Iterable[str] | None, field: str = "tags") -> list[str]:
    checked: list[str] = []
    for value in values or []:
        tag = (value or "").strip()
        if not tag:
            raise UserError("A tag cannot be blank.", field=field, code=ProductErrorCode.INVALID)
        if len(tag) > 50:
            raise UserError(
                "A tag has at most 50 characters.", field=field, code=ProductErrorCode.TOO_LONG
            )
        if tag not in checked:
            checked.append(tag)
    if len(checked) > MAX_TAGS:
        raise UserError(f"At most {MAX_TAGS} tags.", field=field, code=ProductErrorCode.INVALID)
    return checked


def slug(
    model: type[Model],
    value: str | None,
    *,
    source: str,
    field: str = "slug",
    exclude_pk: int | None = None,
) -> str:
    """A given slug must be well formed and free; a missing one is made from `source`."""
    slug_field = model._meta.get_field("slug")
    # Category and Product declare it; a SlugField always has a max_length (50 by default).
    assert isinstance(slug_field, SlugField) and slug_field.max_length is not None
    max_length = slug_field.max_length
    manager = model._default_manager
    others = manager.exclude(pk=exclude_pk) if exclude_pk else manager.all()
    if value is not None:
        value = value.strip()
        if not SLUG.fullmatch(value) or len(value) > max_length:
            raise UserError(
                f"Use lower-case letters, digits and single hyphens (at most {max_length}).",
                field=field,
                code=ProductErrorCode.INVALID,
            )
        if others.filter(slug=value).exists():
            raise UserError("This slug is taken.", field=field, code=ProductErrorCode.DUPLICATE)
        return value
    base = slugify(source)[: max_length - 8].strip("-") or model.__name__.lower()  # its model_name
    taken = set(others.filter(slug__startswith=base).values_list("slug", flat=True))
    made, n = base, 1
    while made in taken:
        n += 1
        made = f"{base}-{n}"
    return made


def status(value: str) -> str:
    if value not in Product.Status.values:
        raise UserError(
            f"Status is one of {', '.join(Product.Status.values)}.",
            field="status",
            code=ProductErrorCode.INVALID,
        )
    return value


def sku(value: str, field: str, *, exclude_pk: int | None = None) -> str:
    checked = (value or "").strip()
    if not checked:
        raise UserError("Give the variant a SKU.", field=field, code=ProductErrorCode.REQUIRED)
    if len(checked) > 64 or any(c.isspace() for c in checked):
        raise UserError(
            "A SKU has at most 64 characters and no spaces.",
            field=field,
            code=ProductErrorCode.INVALID,
        )
    others = Variant.objects.exclude(pk=exclude_pk) if exclude_pk else Variant.objects.all()
    if others.filter(sku__iexact=checked).exists():
        raise UserError(
            "Another variant has this SKU.", field=field, code=ProductErrorCode.DUPLICATE
        )
    return checked


def prices(variant: Variant, prefix: str) -> None:
    """The variant's prices together, once they are set on it."""
    if variant.compare_at_price is not None and variant.compare_at_price < variant.price:
        raise UserError(
            "The compare-at price cannot be below the price.",
            field=f"{prefix}compareAtPrice",
            code=ProductErrorCode.INVALID,
        )
