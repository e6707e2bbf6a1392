"""Catalog background work. Tasks take ids, run in the schema of the tenant that queued them
(tenant-schemas-celery) and may run twice: the second run changes nothing. Retried with backoff
under the one policy (apps.common.retry)."""

from celery import shared_task

from apps.catalog import image_services
from apps.common.retry import RetryingTask


@shared_task(base=RetryingTask)
def make_renditions(image_id: int) -> dict[str, str]:
    """Write the WebP renditions of one product image and record them on it."""
    return image_services.write_renditions(image_id=image_id)
