"""Tenant-level Celery tasks."""

from typing import Any

from celery import Task, shared_task
from django_tenants.utils import get_public_schema_name

from tenants.db import connection
from tenants.models import Tenant


def queue_in_each_tenant(task: Task, *, active_only: bool, **options: Any) -> int:
    """What beat's per-tenant entries run in public: queue `task` once in the schema of each
    tenant (not public, not the template), of the active ones only if `active_only`, with the
    Celery `options` given; how many it queued."""
    tenants = Tenant.objects.filter(is_template=False).exclude(schema_name=get_public_schema_name())
    if active_only:
        tenants = tenants.filter(status=Tenant.Status.ACTIVE)
    schemas = list(tenants.values_list("schema_name", flat=True))
    for schema in schemas:
        task.apply_async(headers={"_schema_name": schema}, **options)
    return len(schemas)


@shared_task
def worker_probe() -> dict[str, str]:
    """Where a worker runs a task: the tenant schema it switched to and PostgreSQL's own view of
    the search path. Operators queue it in a tenant to check workers end to end."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (current_schema,) = cursor.fetchone()
    return {"schema": connection.schema_name, "current_schema": current_schema}
