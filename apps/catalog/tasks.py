"""Catalog background work. Tasks take ids, run in the schema of the tenant that queued them
(tenant-schemas-celery) and may run twice: the second run changes nothing. Retried with backoff
under the one policy (apps.common.retry)."""

from celery import shared_task

from apps.catalog import image_services
from apps.common.retry import RetryingTask
from tenants.tasks import queue_in_each_tenant


@shared_task(base=RetryingTask)
def make_renditions(image_id: int) -> dict[str, str]:
    """Write the WebP renditions of one product image and record them on it."""
    return image_services.write_renditions(image_id=image_id)


@shared_task(base=RetryingTask)
def requeue_lost_renditions() -> int:
    """Queue again the renditions whose message was lost, in this tenant (image_services)."""
    return image_services.requeue_lost_renditions()


@shared_task
def requeue_lost_renditions_all_tenants() -> int:
    """Beat: `requeue_lost_renditions` in each active tenant's schema; how many tenants."""
    return queue_in_each_tenant(requeue_lost_renditions, active_only=True)
