"""Writes for the catalog: categories, products and variants (their images:
apps.catalog.image_services). Every check a user can fail is a UserError raised before anything
is written (apps.catalog.checks); every change is audited."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max

from apps.audit import services as audit
from apps.catalog import checks, hooks, image_services, rows, selectors
from apps.catalog.errors import ProductErrorCode
from apps.catalog.models import Category, Product, Variant
from apps.catalog.rows import FieldCheck
from apps.common.actors import Actor
from apps.common.errors import NotFound, UserError
from apps.common.rules import money, optional_text

SLUG_TAKEN = "This slug is taken."
SKU_TAKEN = "Another variant has this SKU."


# --- categories ---------------------------------------------------------------------------------


def _parent(parent_id: int | None, *, moving: Category | None = None) -> Category | None:
    if parent_id is None:
        return None
    parent = Category.objects.filter(pk=parent_id).first()
    if parent is None:
        raise NotFound("No such parent category.", field="parent")
    if moving is not None and moving.pk in selectors.category_ancestor_ids(
        parent.pk, include_self=True
    ):
        raise UserError(
            "A category cannot sit under itself or one of its subcategories.",
            field="parent",
            code=ProductErrorCode.CYCLE,
        )
    return parent


@transaction.atomic
def create_category(
    *,
    actor: Actor,
    name: str,
    slug: str | None = None,
    parent_id: int | None = None,
    position: int = 0,
) -> Category:
    name = checks.name(name, "name", 120)
    category = Category(
        name=name,
        slug=checks.slug(Category, slug, source=name),
        parent=_parent(parent_id),
        position=checks.count(position, "position"),
    )
    rows.save_unique(category, "slug", message=SLUG_TAKEN)
    audit.record(
        actor=actor,
        action="category.create",
        obj=category,
        changes={"name": name, "slug": category.slug, "parent": parent_id},
    )
    return category


CATEGORY_FIELDS: dict[str, FieldCheck] = {
    "name": ("name", lambda value, category: checks.name(value, "name", 120)),
    "slug": (
        "slug",
        lambda value, category: checks.slug(
            Category, value, source=category.name, exclude_pk=category.pk
        ),
    ),
    "parent_id": (
        "parent",
        lambda value, category: _parent(value, moving=category),
    ),  # None: top level
    "position": ("position", lambda value, category: checks.count(value, "position")),
}


@transaction.atomic
def update_category(*, actor: Actor, category_id: int, changes: Mapping[str, Any]) -> Category:
    """`changes` may hold any of CATEGORY_FIELDS."""
    category = rows.locked(Category, category_id, "No such category.")
    rows.update(
        category,
        changes,
        CATEGORY_FIELDS,
        actor=actor,
        action="category.update",
        unique_field="slug",
        taken=SLUG_TAKEN,
    )
    return category


@transaction.atomic
def delete_category(*, actor: Actor, category_id: int) -> None:
    """Its products stay, without a category; a category with subcategories stays too."""
    category = rows.locked(Category, category_id, "No such category.")
    if category.children.exists():
        raise UserError(
            "Move or delete its subcategories first.", field="id", code=ProductErrorCode.IN_USE
        )
    audit.record(
        actor=actor,
        action="category.delete",
        obj=category,
        changes={"name": category.name, "slug": category.slug},
    )
    category.delete()
    hooks.category_deleted.send(category_id=category_id)


# --- products -----------------------------------------------------------------------------------


def _category(category_id: int | None) -> Category | None:
    if category_id is None:
        return None
    category = Category.objects.filter(pk=category_id).first()
    if category is None:
        raise NotFound("No such category.", field="category")
    return category


def _description(value: str) -> str:
    return optional_text(value, field="description", max_length=100_000)


@transaction.atomic
def create_product(
    *,
    actor: Actor,
    name: str,
    slug: str | None = None,
    description: str = "",
    status: str = Product.Status.DRAFT,
    category_id: int | None = None,
    tags: Iterable[str] = (),
    attributes: object = None,  # any JSON value the client sent: checks.json_object refuses others
    variants: Iterable[Mapping[str, Any]] = (),
) -> Product:
    """A product and, in the same transaction, its first variants (keyword dicts of create_variant)."""
    name = checks.name(name, "name", 200)
    product = Product(
        name=name,
        slug=checks.slug(Product, slug, source=name),
        description=_description(description),
        status=checks.status(status),
        category=_category(category_id),
        tags=checks.tags(tags),
        attributes=checks.json_object(attributes, "attributes"),
    )
    rows.save_unique(product, "slug", message=SLUG_TAKEN)
    audit.record(
        actor=actor,
        action="product.create",
        obj=product,
        changes={"name": name, "slug": product.slug, "status": product.status},
    )
    for index, variant in enumerate(variants):
        # Each variant is saved before the next is checked, so a SKU repeated here is a duplicate too.
        fields = {"position": index, **variant}
        _create_variant(actor=actor, product=product, field_prefix=f"variants.{index}.", **fields)
    return product


PRODUCT_FIELDS: dict[str, FieldCheck] = {
    "name": ("name", lambda value, product: checks.name(value, "name", 200)),
    "slug": (
        "slug",
        lambda value, product: checks.slug(
            Product, value, source=product.name, exclude_pk=product.pk
        ),
    ),
    "description": ("description", lambda value, product: _description(value)),
    "status": ("status", lambda value, product: checks.status(value)),
    "category_id": ("category", lambda value, product: _category(value)),
    "tags": ("tags", lambda value, product: checks.tags(value)),
    "attributes": ("attributes", lambda value, product: checks.json_object(value, "attributes")),
}


@transaction.atomic
def update_product(*, actor: Actor, product_id: int, changes: Mapping[str, Any]) -> Product:
    """`changes` may hold any of PRODUCT_FIELDS."""
    product = rows.locked(Product, product_id, "No such product.")
    diff = rows.update(
        product,
        changes,
        PRODUCT_FIELDS,
        actor=actor,
        action="product.update",
        unique_field="slug",
        taken=SLUG_TAKEN,
    )
    if diff:
        hooks.product_updated.send(product=product, changes=diff)
    return product


@transaction.atomic
def delete_product(*, actor: Actor, product_id: int) -> None:
    """The product, its variants and images (and their files, once committed). Order lines keep
    their snapshot of what was sold."""
    product = rows.locked(Product, product_id, "No such product.")
    files = [name for image in product.images.all() for name in image_services.files_of(image)]
    audit.record(
        actor=actor,
        action="product.delete",
        obj=product,
        changes={"name": product.name, "slug": product.slug},
    )
    product.delete()
    hooks.product_deleted.send(product_id=product_id)
    image_services.delete_files_on_commit(files)


# --- variants -----------------------------------------------------------------------------------


def _create_variant(
    *,
    actor: Actor,
    product: Product,
    sku: str,
    price: Decimal,
    name: str = "",
    options: object = None,  # any JSON value the client sent: checks.options refuses others
    compare_at_price: Decimal | None = None,
    cost_price: Decimal | None = None,
    stock: int = 0,
    low_stock_threshold: int = 5,
    position: int | None = None,
    field_prefix: str = "",
) -> Variant:
    p = field_prefix
    if position is None:
        position = (product.variants.aggregate(last=Max("position"))["last"] or 0) + 1
    variant = Variant(
        product=product,
        sku=checks.sku(sku, f"{p}sku"),
        name=optional_text(name, field=f"{p}name", max_length=120),
        options=checks.options(options, f"{p}options"),
        price=money(price, field=f"{p}price", required=True),
        compare_at_price=money(compare_at_price, field=f"{p}compareAtPrice"),
        cost_price=money(cost_price, field=f"{p}costPrice"),
        stock=checks.count(stock, f"{p}stock"),
        low_stock_threshold=checks.count(low_stock_threshold, f"{p}lowStockThreshold"),
        position=checks.count(position, f"{p}position"),
    )
    checks.prices(variant, p)
    rows.save_unique(variant, f"{p}sku", message=SKU_TAKEN)
    audit.record(
        actor=actor,
        action="variant.create",
        obj=variant,
        changes={
            "product": product.pk,
            "sku": variant.sku,
            "price": str(variant.price),
            "stock": variant.stock,
        },
    )
    return variant


@transaction.atomic
def create_variant(*, actor: Actor, product_id: int, **fields: Any) -> Variant:
    """A variant of a product; `fields` as `_create_variant` takes them."""
    product = rows.locked(Product, product_id, "No such product.", field="product")
    return _create_variant(actor=actor, product=product, **fields)


VARIANT_FIELDS: dict[str, FieldCheck] = {
    "name": ("name", lambda value, variant: optional_text(value, field="name", max_length=120)),
    "options": ("options", lambda value, variant: checks.options(value, "options")),
    "price": ("price", lambda value, variant: money(value, field="price", required=True)),
    "compare_at_price": (
        "compare_at_price",
        lambda value, variant: money(value, field="compareAtPrice"),
    ),
    "cost_price": ("cost_price", lambda value, variant: money(value, field="costPrice")),
    "stock": ("stock", lambda value, variant: checks.count(value, "stock")),
    "low_stock_threshold": (
        "low_stock_threshold",
        lambda value, variant: checks.count(value, "lowStockThreshold"),
    ),
    "position": ("position", lambda value, variant: checks.count(value, "position")),
    "sku": ("sku", lambda value, variant: checks.sku(value, "sku", exclude_pk=variant.pk)),
}


@transaction.atomic
def update_variant(*, actor: Actor, variant_id: int, changes: Mapping[str, Any]) -> Variant:
    """`changes` may hold any of VARIANT_FIELDS. The row is locked, so a stock set here and a
    reservation by an order never interleave."""
    variant = rows.locked(Variant, variant_id, "No such variant.")
    rows.update(
        variant,
        changes,
        VARIANT_FIELDS,
        actor=actor,
        action="variant.update",
        unique_field="sku",
        taken=SKU_TAKEN,
        check_row=lambda row: checks.prices(row, ""),
    )
    return variant


@transaction.atomic
def delete_variant(*, actor: Actor, variant_id: int) -> None:
    variant = rows.locked(Variant, variant_id, "No such variant.")
    audit.record(
        actor=actor,
        action="variant.delete",
        obj=variant,
        changes={"product": variant.product_id, "sku": variant.sku},
    )
    variant.delete()
