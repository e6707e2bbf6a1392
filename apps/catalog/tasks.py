"""Catalog background work. Tasks take ids, run in the schema of the tenant that queued them
(tenant-schemas-celery) and may run twice: the second run changes nothing."""

from celery import shared_task
from django.db import OperationalError

from apps.catalog import services


@shared_task(
    autoretry_for=(OSError, OperationalError),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def make_renditions(image_id: int) -> dict[str, str]:
    """Write the WebP renditions of one product image and record them on it."""
    return services.write_renditions(image_id=image_id)
