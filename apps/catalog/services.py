"""Writes for the catalog: categories, products, variants and their images. Every check a user
can fail is a UserError raised before anything is written; every change is audited."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils.text import slugify

from apps.audit import services as audit
from apps.catalog import hooks, images, selectors
from apps.catalog.errors import ProductErrorCode
from apps.catalog.models import Category, Product, ProductImage, Variant
from apps.common.errors import NotFound, UserError
from apps.common.outages import after_commit
from apps.common.rules import money, optional_text, required_text

log = logging.getLogger(__name__)

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_TAGS = 50


# --- checks -------------------------------------------------------------------------------------

def _name(value: str, field: str, max_length: int) -> str:
    return required_text(value, field=field, max_length=max_length, missing="Give it a name.")


def _count(value: int, field: str) -> int:
    if value is None or value < 0:
        raise UserError("It cannot be negative.", field=field, code=ProductErrorCode.NEGATIVE)
    if value > 2_147_483_647:
        raise UserError("That number is too large.", field=field, code=ProductErrorCode.TOO_LARGE)
    return value


def _json_object(value: Any, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError("Send a JSON object, such as {\"material\": \"cotton\"}.", field=field, code=ProductErrorCode.INVALID)
    return value


def _options(value: Any, field: str) -> dict[str, str]:
    options = _json_object(value, field)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in options.items()):
        raise UserError("Options map names to text, such as {\"size\": \"M\"}.", field=field, code=ProductErrorCode.INVALID)
    return options


def _tags(values: Iterable[str] | None, field: str = "tags") -> list[str]:
    tags: list[str] = []
    for value in values or []:
        tag = (value or "").strip()
        if not tag:
            raise UserError("A tag cannot be blank.", field=field, code=ProductErrorCode.INVALID)
        if len(tag) > 50:
            raise UserError("A tag has at most 50 characters.", field=field, code=ProductErrorCode.TOO_LONG)
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise UserError(f"At most {MAX_TAGS} tags.", field=field, code=ProductErrorCode.INVALID)
    return tags


def _slug(model, value: str | None, *, source: str, field: str = "slug", exclude_pk: int | None = None) -> str:
    """A given slug must be well formed and free; a missing one is made from `source`."""
    max_length = model._meta.get_field("slug").max_length
    others = model.objects.exclude(pk=exclude_pk) if exclude_pk else model.objects.all()
    if value is not None:
        value = value.strip()
        if not SLUG.fullmatch(value) or len(value) > max_length:
            raise UserError(
                f"Use lower-case letters, digits and single hyphens (at most {max_length}).",
                field=field, code=ProductErrorCode.INVALID,
            )
        if others.filter(slug=value).exists():
            raise UserError("This slug is taken.", field=field, code=ProductErrorCode.DUPLICATE)
        return value
    base = slugify(source)[: max_length - 8].strip("-") or model._meta.model_name
    taken = set(others.filter(slug__startswith=base).values_list("slug", flat=True))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _saved(obj, duplicate_field: str, *, message: str) -> None:
    """Save; a unique value taken by a concurrent write since our check is a userError too."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise UserError(message, field=duplicate_field, code=ProductErrorCode.DUPLICATE) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Category | Product):
        return value.pk
    return value


def _apply(obj, values: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Set `values` on `obj`; what changed, as {field: [before, after]} for the audit log."""
    changes = {}
    for name, value in values.items():
        before = getattr(obj, name)
        if before != value:
            changes[name] = [_plain(before), _plain(value)]
            setattr(obj, name, value)
    return changes


def _get(model, pk: int, message: str, *, lock: bool = False, field: str = "id"):
    queryset = model.objects.select_for_update() if lock else model.objects
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise NotFound(message, field=field)
    return obj


# --- categories ---------------------------------------------------------------------------------

def _parent(parent_id: int | None, *, moving: Category | None = None) -> Category | None:
    if parent_id is None:
        return None
    parent = Category.objects.filter(pk=parent_id).first()
    if parent is None:
        raise NotFound("No such parent category.", field="parent")
    if moving is not None and moving.pk in selectors.category_ancestor_ids(parent.pk, include_self=True):
        raise UserError("A category cannot sit under itself or one of its subcategories.",
                        field="parent", code=ProductErrorCode.CYCLE)
    return parent


@transaction.atomic
def create_category(
    *, actor, name: str, slug: str | None = None, parent_id: int | None = None, position: int = 0
) -> Category:
    name = _name(name, "name", 120)
    category = Category(
        name=name,
        slug=_slug(Category, slug, source=name),
        parent=_parent(parent_id),
        position=_count(position, "position"),
    )
    _saved(category, "slug", message="This slug is taken.")
    audit.record(actor=actor, action="category.create", obj=category,
                 changes={"name": name, "slug": category.slug, "parent": parent_id})
    return category


@transaction.atomic
def update_category(*, actor, category_id: int, changes: Mapping[str, Any]) -> Category:
    """`changes` may hold name, slug, parent_id (None: top level) and position."""
    category = _get(Category, category_id, "No such category.", lock=True)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _name(changes["name"], "name", 120)
    if "slug" in changes:
        values["slug"] = _slug(Category, changes["slug"], source=category.name, exclude_pk=category.pk)
    if "parent_id" in changes:
        values["parent"] = _parent(changes["parent_id"], moving=category)
    if "position" in changes:
        values["position"] = _count(changes["position"], "position")
    diff = _apply(category, values)
    if diff:
        _saved(category, "slug", message="This slug is taken.")
        audit.record(actor=actor, action="category.update", obj=category, changes=diff)
    return category


@transaction.atomic
def delete_category(*, actor, category_id: int) -> None:
    """Its products stay, without a category; a category with subcategories stays too."""
    category = _get(Category, category_id, "No such category.", lock=True)
    if category.children.exists():
        raise UserError("Move or delete its subcategories first.", field="id", code=ProductErrorCode.IN_USE)
    audit.record(actor=actor, action="category.delete", obj=category,
                 changes={"name": category.name, "slug": category.slug})
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


def _status(value: str) -> str:
    if value not in Product.Status.values:
        raise UserError(f"Status is one of {', '.join(Product.Status.values)}.", field="status", code=ProductErrorCode.INVALID)
    return value


@transaction.atomic
def create_product(
    *,
    actor,
    name: str,
    slug: str | None = None,
    description: str = "",
    status: str = Product.Status.DRAFT,
    category_id: int | None = None,
    tags: Iterable[str] = (),
    attributes: dict | None = None,
    variants: Iterable[Mapping[str, Any]] = (),
) -> Product:
    """A product and, in the same transaction, its first variants (keyword dicts of create_variant)."""
    name = _name(name, "name", 200)
    product = Product(
        name=name,
        slug=_slug(Product, slug, source=name),
        description=optional_text(description, field="description", max_length=100_000),
        status=_status(status),
        category=_category(category_id),
        tags=_tags(tags),
        attributes=_json_object(attributes, "attributes"),
    )
    _saved(product, "slug", message="This slug is taken.")
    audit.record(actor=actor, action="product.create", obj=product,
                 changes={"name": name, "slug": product.slug, "status": product.status})
    for index, variant in enumerate(variants):
        # Each variant is saved before the next is checked, so a SKU repeated here is a duplicate too.
        fields = {"position": index, **variant}
        _create_variant(actor=actor, product=product, field_prefix=f"variants.{index}.", **fields)
    return product


@transaction.atomic
def update_product(*, actor, product_id: int, changes: Mapping[str, Any]) -> Product:
    """`changes` may hold name, slug, description, status, category_id, tags and attributes."""
    product = _get(Product, product_id, "No such product.", lock=True)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _name(changes["name"], "name", 200)
    if "slug" in changes:
        values["slug"] = _slug(Product, changes["slug"], source=product.name, exclude_pk=product.pk)
    if "description" in changes:
        values["description"] = optional_text(changes["description"], field="description", max_length=100_000)
    if "status" in changes:
        values["status"] = _status(changes["status"])
    if "category_id" in changes:
        values["category"] = _category(changes["category_id"])
    if "tags" in changes:
        values["tags"] = _tags(changes["tags"])
    if "attributes" in changes:
        values["attributes"] = _json_object(changes["attributes"], "attributes")
    diff = _apply(product, values)
    if diff:
        _saved(product, "slug", message="This slug is taken.")
        audit.record(actor=actor, action="product.update", obj=product, changes=diff)
        hooks.product_updated.send(product=product, changes=diff)
    return product


def _delete_files_on_commit(names: Iterable[str]) -> None:
    names = [name for name in names if name]
    if names:
        after_commit(lambda: _delete_files(names))


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:  # a file already gone is what we wanted
            log.warning("could not delete %s", name)


def _files_of(image: ProductImage) -> list[str]:
    return [image.image.name, *image.renditions.values()]


@transaction.atomic
def delete_product(*, actor, product_id: int) -> None:
    """The product, its variants and images (and their files, once committed). Order lines keep
    their snapshot of what was sold."""
    product = _get(Product, product_id, "No such product.", lock=True)
    files = [name for image in product.images.all() for name in _files_of(image)]
    audit.record(actor=actor, action="product.delete", obj=product,
                 changes={"name": product.name, "slug": product.slug})
    product.delete()
    hooks.product_deleted.send(product_id=product_id)
    _delete_files_on_commit(files)


# --- variants -----------------------------------------------------------------------------------

def _sku(value: str, field: str, *, exclude_pk: int | None = None) -> str:
    sku = (value or "").strip()
    if not sku:
        raise UserError("Give the variant a SKU.", field=field, code=ProductErrorCode.REQUIRED)
    if len(sku) > 64 or any(c.isspace() for c in sku):
        raise UserError("A SKU has at most 64 characters and no spaces.", field=field, code=ProductErrorCode.INVALID)
    others = Variant.objects.exclude(pk=exclude_pk) if exclude_pk else Variant.objects.all()
    if others.filter(sku__iexact=sku).exists():
        raise UserError("Another variant has this SKU.", field=field, code=ProductErrorCode.DUPLICATE)
    return sku


def _check_prices(variant: Variant, prefix: str) -> None:
    if variant.compare_at_price is not None and variant.compare_at_price < variant.price:
        raise UserError("The compare-at price cannot be below the price.",
                        field=f"{prefix}compareAtPrice", code=ProductErrorCode.INVALID)


def _create_variant(
    *,
    actor,
    product: Product,
    sku: str,
    price: Decimal,
    name: str = "",
    options: dict | None = None,
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
        sku=_sku(sku, f"{p}sku"),
        name=optional_text(name, field=f"{p}name", max_length=120),
        options=_options(options, f"{p}options"),
        price=money(price, field=f"{p}price", required=True),
        compare_at_price=money(compare_at_price, field=f"{p}compareAtPrice"),
        cost_price=money(cost_price, field=f"{p}costPrice"),
        stock=_count(stock, f"{p}stock"),
        low_stock_threshold=_count(low_stock_threshold, f"{p}lowStockThreshold"),
        position=_count(position, f"{p}position"),
    )
    _check_prices(variant, p)
    _saved(variant, f"{p}sku", message="Another variant has this SKU.")
    audit.record(actor=actor, action="variant.create", obj=variant,
                 changes={"product": product.pk, "sku": variant.sku, "price": str(variant.price),
                          "stock": variant.stock})
    return variant


@transaction.atomic
def create_variant(*, actor, product_id: int, **fields: Any) -> Variant:
    """A variant of a product; `fields` as `_create_variant` takes them."""
    product = _get(Product, product_id, "No such product.", lock=True, field="product")
    return _create_variant(actor=actor, product=product, **fields)


VARIANT_FIELDS = {
    "name": lambda v: optional_text(v, field="name", max_length=120),
    "options": lambda v: _options(v, "options"),
    "price": lambda v: money(v, field="price", required=True),
    "compare_at_price": lambda v: money(v, field="compareAtPrice"),
    "cost_price": lambda v: money(v, field="costPrice"),
    "stock": lambda v: _count(v, "stock"),
    "low_stock_threshold": lambda v: _count(v, "lowStockThreshold"),
    "position": lambda v: _count(v, "position"),
}


@transaction.atomic
def update_variant(*, actor, variant_id: int, changes: Mapping[str, Any]) -> Variant:
    """`changes` may hold sku and any of VARIANT_FIELDS. The row is locked, so a stock set here
    and a reservation by an order never interleave."""
    variant = _get(Variant, variant_id, "No such variant.", lock=True)
    values = {name: check(changes[name]) for name, check in VARIANT_FIELDS.items() if name in changes}
    if "sku" in changes:
        values["sku"] = _sku(changes["sku"], "sku", exclude_pk=variant.pk)
    diff = _apply(variant, values)
    _check_prices(variant, "")
    if diff:
        _saved(variant, "sku", message="Another variant has this SKU.")
        audit.record(actor=actor, action="variant.update", obj=variant, changes=diff)
    return variant


@transaction.atomic
def delete_variant(*, actor, variant_id: int) -> None:
    variant = _get(Variant, variant_id, "No such variant.", lock=True)
    audit.record(actor=actor, action="variant.delete", obj=variant,
                 changes={"product": variant.product_id, "sku": variant.sku})
    variant.delete()


# --- images -------------------------------------------------------------------------------------

def _queue_renditions(image_ids: list[int]) -> None:
    """After commit, in this tenant's schema (named explicitly: the task must never run in
    whatever schema a connection happens to have when the callback fires)."""
    from apps.catalog.tasks import make_renditions

    schema = connection.schema_name

    def send() -> None:
        for image_id in image_ids:
            make_renditions.apply_async((image_id,), headers={"_schema_name": schema})

    after_commit(send)


def add_product_image(*, actor, product_id: int, upload: Any, alt_text: str = "") -> ProductImage:
    """Store one uploaded image after the last one of a product (see add_product_images)."""
    alt_text = optional_text(alt_text, field="altText", max_length=300)
    cleaned = [(images.clean(upload, field="file"), alt_text)]
    (image,) = _add_images(actor=actor, product_id=product_id, cleaned=cleaned)
    return image


def add_product_images(*, actor, product_id: int, uploads: list[Any]) -> list[ProductImage]:
    """Store uploaded images after the last ones of a product. Every file is checked and cleaned
    first: one bad file (its error names it, `files.2`) and nothing is stored."""
    limit = settings.PRODUCT_IMAGE_MAX_FILES
    if not uploads:
        raise UserError("Send at least one file.", field="files", code=ProductErrorCode.REQUIRED)
    if len(uploads) > limit:
        raise UserError(f"At most {limit} files at once.", field="files", code=ProductErrorCode.TOO_MANY_FILES)
    cleaned = [(images.clean(upload, field=f"files.{index}"), "") for index, upload in enumerate(uploads)]
    return _add_images(actor=actor, product_id=product_id, cleaned=cleaned)


def _add_images(*, actor, product_id: int, cleaned: list[tuple[images.CleanImage, str]]) -> list[ProductImage]:
    stored: list[str] = []
    try:
        with transaction.atomic():
            product = _get(Product, product_id, "No such product.", lock=True, field="product")
            last = product.images.aggregate(last=Max("position"))["last"]
            position = -1 if last is None else last
            made = []
            for clean, alt_text in cleaned:
                position += 1
                image = ProductImage(product=product, alt_text=alt_text, position=position,
                                     width=clean.width, height=clean.height)
                image.image.save(f"{uuid.uuid4().hex}.{clean.extension}", ContentFile(clean.content), save=False)
                stored.append(image.image.name)
                image.save()
                made.append(image)
                audit.record(actor=actor, action="product_image.create", obj=image,
                             changes={"product": product.pk, "file": image.image.name,
                                      "width": clean.width, "height": clean.height})
            _queue_renditions([image.pk for image in made])
    except BaseException:
        _delete_files(stored)  # nothing was committed: leave no file behind either
        raise
    return made


@transaction.atomic
def update_product_image(*, actor, image_id: int, alt_text: str) -> ProductImage:
    image = _get(ProductImage, image_id, "No such image.", lock=True)
    diff = _apply(image, {"alt_text": optional_text(alt_text, field="altText", max_length=300)})
    if diff:
        image.save(update_fields=["alt_text"])
        audit.record(actor=actor, action="product_image.update", obj=image, changes=diff)
    return image


@transaction.atomic
def delete_product_image(*, actor, image_id: int) -> None:
    image = _get(ProductImage, image_id, "No such image.", lock=True)
    files = _files_of(image)
    audit.record(actor=actor, action="product_image.delete", obj=image,
                 changes={"product": image.product_id, "file": image.image.name})
    image.delete()
    _delete_files_on_commit(files)


@transaction.atomic
def reorder_product_images(*, actor, product_id: int, image_ids: list[int]) -> list[ProductImage]:
    """`image_ids` lists every image of the product, once each, in the new order."""
    product = _get(Product, product_id, "No such product.", lock=True, field="product")
    current = {image.pk: image for image in product.images.all()}
    if len(image_ids) != len(set(image_ids)) or set(image_ids) != set(current):
        raise UserError("List every image of this product exactly once.", field="images", code=ProductErrorCode.INVALID)
    ordered = [current[pk] for pk in image_ids]
    before = [image.pk for image in sorted(current.values(), key=lambda i: (i.position, i.pk))]
    moved = [image for position, image in enumerate(ordered) if image.position != position]
    for position, image in enumerate(ordered):
        image.position = position
    if moved:  # only a real change is written, and every written change is audited
        ProductImage.objects.bulk_update(moved, ["position"])
        audit.record(actor=actor, action="product_image.reorder", obj=product,
                     changes={"images": [before, image_ids]})
    return ordered


def write_renditions(*, image_id: int) -> dict[str, str]:
    """The WebP renditions of one image, written and recorded; run again, it does nothing new.
    An image deleted or replaced meanwhile keeps no file of ours."""
    image = ProductImage.objects.filter(pk=image_id).first()
    if image is None:
        return {}
    sizes = images.rendition_sizes(image.width, image.height)
    if sorted(int(s) for s in image.renditions) == sizes and all(
        default_storage.exists(name) for name in image.renditions.values()
    ):
        return image.renditions
    original = image.image.name
    if not default_storage.exists(original):
        log.warning("image %s has no file %s", image_id, original)
        return {}
    with default_storage.open(original, "rb") as file:
        made = images.renditions(file.read(), sizes)
    stem = original.rsplit(".", 1)[0]
    names = {}
    for size, content in made.items():
        name = f"{stem}-{size}.webp"
        default_storage.delete(name)  # a half-done earlier run: replace, never make name_xyz copies
        names[str(size)] = default_storage.save(name, ContentFile(content))
    if not ProductImage.objects.filter(pk=image_id, image=original).update(renditions=names):
        _delete_files(names.values())
        return {}
    return names
