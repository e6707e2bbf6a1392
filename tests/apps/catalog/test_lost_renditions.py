"""Renditions whose task message was lost (queued on commit while the broker was down, which
apps.common.outages.after_commit logs and drops) are queued again by beat's catalog.renditions
(apps.catalog.image_services.requeue_lost_renditions): for images that should have renditions and
have none, RENDITIONS_LOST_AFTER to a day after their upload."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.authentication import Principal
from apps.catalog import image_services, tasks
from apps.catalog.models import Product, ProductImage
from tenants.models import Tenant
from tests.apps.catalog.factories import image_bytes
from tests.eager import eager, run_from_beat


def _uploaded(size: tuple[int, int]) -> ProductImage:
    """An upload whose renditions task never runs: the test's transaction never commits, so what
    it queued on commit is as lost as a message the broker never took."""
    product, _ = Product.objects.get_or_create(name="Lost", slug="lost")
    file = BytesIO(image_bytes("JPEG", size, "orange"))
    (image,) = image_services.add_product_images(
        actor=Principal(), product_id=product.pk, uploads=[file]
    )
    return image


def test_an_image_whose_renditions_message_was_lost_gets_them_once(
    alpha, django_capture_on_commit_callbacks
):
    with tenant_context(alpha.tenant):
        image = _uploaded((800, 400))
        tiny = _uploaded((120, 90))  # smaller than every size: it has none to make
        now = timezone.now()
        assert image_services.requeue_lost_renditions(now=now) == 0  # may still be on its way
        late = now + image_services.RENDITIONS_LOST_AFTER + timedelta(seconds=1)
        with eager(), django_capture_on_commit_callbacks(execute=True):
            assert image_services.requeue_lost_renditions(now=late) == 1
        image.refresh_from_db()
        tiny.refresh_from_db()
        assert sorted(image.renditions) == ["160", "640"] and tiny.renditions == {}
        assert all(default_storage.exists(name) for name in image.renditions.values())
        assert image_services.requeue_lost_renditions(now=late) == 0  # done: nothing lost
        too_old = now + image_services.RENDITIONS_LOOK_BACK + timedelta(seconds=1)
        ProductImage.objects.filter(pk=image.pk).update(renditions={})
        assert image_services.requeue_lost_renditions(now=too_old) == 0
        for name in [*image.renditions.values(), image.image.name, tiny.image.name]:
            default_storage.delete(name)


def test_beat_looks_in_every_active_tenant(alpha, beta):
    entry = settings.CELERY_BEAT_SCHEDULE["catalog.renditions"]
    assert entry["task"] == tasks.requeue_lost_renditions_all_tenants.name
    queued = run_from_beat(tasks.requeue_lost_renditions_all_tenants)
    active = Tenant.objects.filter(status=Tenant.Status.ACTIVE, is_template=False)
    assert queued == active.exclude(schema_name="public").count() >= 2
