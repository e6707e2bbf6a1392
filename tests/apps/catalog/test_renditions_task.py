"""The renditions task on a real worker (threads, Redis broker): queued when the upload commits,
run in the uploading tenant's schema, its files in that tenant's folder.

The worker has its own database connections, so it only sees committed rows: the upload runs in a
thread of its own (autocommit, outside the test's transaction) and the rows are removed after."""

from __future__ import annotations

import time
from io import BytesIO
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from apps.accounts.authentication import Principal
from apps.audit.models import AuditEntry
from apps.catalog import image_services
from apps.catalog.models import Product, ProductImage
from config.celery import app
from tests.apps.catalog.factories import image_bytes
from tests.committed import run_committed


@pytest.fixture(scope="module")
def worker():
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10
    ):
        yield


def _upload(fixture, slug: str) -> tuple[int, int]:
    def work():
        product = Product.objects.create(name=slug, slug=slug)
        file = BytesIO(image_bytes("JPEG", (1600, 800), "orange"))
        (image,) = image_services.add_product_images(
            actor=Principal(), product_id=product.pk, uploads=[file]
        )
        return product.pk, image.pk

    return run_committed(fixture.tenant, work)


def _renditions(fixture, image_id: int, *, timeout: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = run_committed(
            fixture.tenant, lambda: ProductImage.objects.get(pk=image_id).renditions
        )
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the worker wrote no renditions")


def _remove(fixture, product_id: int) -> None:
    def work():
        for image in ProductImage.objects.filter(product_id=product_id):
            for name in [image.image.name, *image.renditions.values()]:
                image.image.storage.delete(name)
        Product.objects.filter(pk=product_id).delete()
        AuditEntry.objects.filter(
            action="product_image.create", changes__product=product_id
        ).delete()

    run_committed(fixture.tenant, work)


def test_a_worker_writes_the_renditions_in_the_uploading_tenants_schema(worker, alpha, beta):
    made = {fixture.slug: _upload(fixture, f"worker-{fixture.slug}") for fixture in (alpha, beta)}
    try:
        for fixture in (alpha, beta):
            product_id, image_id = made[fixture.slug]
            renditions = _renditions(fixture, image_id)
            assert sorted(renditions, key=int) == ["160", "640", "1280"]
            for size, name in renditions.items():
                path = Path(settings.MEDIA_ROOT) / fixture.tenant.schema_name / name
                assert (
                    path.is_file()
                    and name.startswith(f"products/{product_id}/")
                    and name.endswith(f"-{size}.webp")
                )
    finally:
        for fixture in (alpha, beta):
            _remove(fixture, made[fixture.slug][0])
