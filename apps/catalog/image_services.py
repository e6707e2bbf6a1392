"""Writes for product images: adding uploads (checked and cleaned by apps.catalog.images before
anything is stored), alt text, order, deletion, and the WebP renditions a task writes after the
upload commits. Stored files follow their rows: a file is deleted once the deletion of its row
commits, and an upload rolled back leaves no file behind."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from apps.audit import services as audit
from apps.catalog import images, rows
from apps.catalog.errors import ProductErrorCode
from apps.catalog.models import Product, ProductImage
from apps.common.actors import Actor
from apps.common.errors import UserError
from apps.common.outages import after_commit
from apps.common.rules import optional_text
from tenants.db import connection

log = logging.getLogger(__name__)


# --- stored files -------------------------------------------------------------------------------


def files_of(image: ProductImage) -> list[str]:
    return [image.image.name, *image.renditions.values()]


def delete_files_on_commit(names: Iterable[str]) -> None:
    names = [name for name in names if name]
    if names:
        after_commit(lambda: _delete_files(names))


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:  # a file already gone is what we wanted
            log.warning("could not delete %s", name)


# --- uploads, edits, renditions -----------------------------------------------------------------


def _queue_renditions(image_ids: list[int]) -> None:
    """After commit, in this tenant's schema (named explicitly: the task must never run in
    whatever schema a connection happens to have when the callback fires)."""
    from apps.catalog.tasks import make_renditions

    schema = connection.schema_name

    def send() -> None:
        for image_id in image_ids:
            make_renditions.apply_async((image_id,), headers={"_schema_name": schema})

    after_commit(send)


def add_product_image(
    *, actor: Actor, product_id: int, upload: Any, alt_text: str = ""
) -> ProductImage:
    """Store one uploaded image after the last one of a product (see add_product_images)."""
    alt_text = optional_text(alt_text, field="altText", max_length=300)
    cleaned = [(images.clean(upload, field="file"), alt_text)]
    (image,) = _add_images(actor=actor, product_id=product_id, cleaned=cleaned)
    return image


def add_product_images(*, actor: Actor, product_id: int, uploads: list[Any]) -> list[ProductImage]:
    """Store uploaded images after the last ones of a product. Every file is checked and cleaned
    first: one bad file (its error names it, `files.2`) and nothing is stored."""
    limit = settings.PRODUCT_IMAGE_MAX_FILES
    if not uploads:
        raise UserError("Send at least one file.", field="files", code=ProductErrorCode.REQUIRED)
    if len(uploads) > limit:
        raise UserError(
            f"At most {limit} files at once.", field="files", code=ProductErrorCode.TOO_MANY_FILES
        )
    cleaned = [
        (images.clean(upload, field=f"files.{index}"), "") for index, upload in enumerate(uploads)
    ]
    return _add_images(actor=actor, product_id=product_id, cleaned=cleaned)


def _add_images(
    *, actor: Actor, product_id: int, cleaned: list[tuple[images.CleanImage, str]]
) -> list[ProductImage]:
    stored: list[str] = []
    try:
        with transaction.atomic():
            product = rows.locked(Product, product_id, "No such product.", field="product")
            last = product.images.aggregate(last=Max("position"))["last"]
            position = -1 if last is None else last
            made = []
            for clean, alt_text in cleaned:
                position += 1
                image = ProductImage(
                    product=product,
                    alt_text=alt_text,
                    position=position,
                    width=clean.width,
                    height=clean.height,
                )
                image.image.save(
                    f"{uuid.uuid4().hex}.{clean.extension}", ContentFile(clean.content), save=False
                )
                stored.append(image.image.name)
                image.save()
                made.append(image)
                audit.record(
                    actor=actor,
                    action="product_image.create",
                    obj=image,
                    changes={
                        "product": product.pk,
                        "file": image.image.name,
                        "width": clean.width,
                        "height": clean.height,
                    },
                )
            _queue_renditions([image.pk for image in made])
    except BaseException:
        _delete_files(stored)  # nothing was committed: leave no file behind either
        raise
    return made


@transaction.atomic
def update_product_image(*, actor: Actor, image_id: int, alt_text: str) -> ProductImage:
    image = rows.locked(ProductImage, image_id, "No such image.")
    diff = rows.apply(image, {"alt_text": optional_text(alt_text, field="altText", max_length=300)})
    if diff:
        image.save(update_fields=["alt_text"])
        audit.record(actor=actor, action="product_image.update", obj=image, changes=diff)
    return image


@transaction.atomic
def delete_product_image(*, actor: Actor, image_id: int) -> None:
    image = rows.locked(ProductImage, image_id, "No such image.")
    files = files_of(image)
    audit.record(
        actor=actor,
        action="product_image.delete",
        obj=image,
        changes={"product": image.product_id, "file": image.image.name},
    )
    image.delete()
    delete_files_on_commit(files)


@transaction.atomic
def reorder_product_images(
    *, actor: Actor, product_id: int, image_ids: list[int]
) -> list[ProductImage]:
    """`image_ids` lists every image of the product, once each, in the new order."""
    product = rows.locked(Product, product_id, "No such product.", field="product")
    current = {image.pk: image for image in product.images.all()}
    if len(image_ids) != len(set(image_ids)) or set(image_ids) != set(current):
        raise UserError(
            "List every image of this product exactly once.",
            field="images",
            code=ProductErrorCode.INVALID,
        )
    ordered = [current[pk] for pk in image_ids]
    before = [image.pk for image in sorted(current.values(), key=lambda i: (i.position, i.pk))]
    moved = [image for position, image in enumerate(ordered) if image.position != position]
    for position, image in enumerate(ordered):
        image.position = position
    if moved:  # only a real change is written, and every written change is audited
        ProductImage.objects.bulk_update(moved, ["position"])
        audit.record(
            actor=actor,
            action="product_image.reorder",
            obj=product,
            changes={"images": [before, image_ids]},
        )
    return ordered


# An image still without the renditions it should have this long after its upload lost its task's
# message (queued on commit while the broker was down: logged and dropped); looked for a day back.
RENDITIONS_LOST_AFTER = timedelta(minutes=10)
RENDITIONS_LOOK_BACK = timedelta(days=1)
REQUEUE_BATCH = 500


def requeue_lost_renditions(*, now: datetime | None = None) -> int:
    """Queue the renditions task again for this tenant's images uploaded between
    RENDITIONS_LOOK_BACK and RENDITIONS_LOST_AFTER ago that should have renditions (larger than
    the smallest size) and have none; how many. A message merely late runs twice, which changes
    nothing (write_renditions)."""
    now = now or timezone.now()
    smallest = min(settings.PRODUCT_IMAGE_RENDITIONS)
    lost = list(
        ProductImage.objects.filter(
            Q(width__gt=smallest) | Q(height__gt=smallest),
            renditions={},
            created__range=(now - RENDITIONS_LOOK_BACK, now - RENDITIONS_LOST_AFTER),
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:REQUEUE_BATCH]
    )
    if lost:
        _queue_renditions(lost)
    return len(lost)


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
