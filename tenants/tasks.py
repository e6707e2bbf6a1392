"""Tenant-level Celery tasks."""

from celery import shared_task

from tenants.db import connection


@shared_task
def worker_probe() -> dict[str, str]:
    """Where a worker runs a task: the tenant schema it switched to and PostgreSQL's own view of
    the search path. Operators queue it in a tenant to check workers end to end."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (current_schema,) = cursor.fetchone()
    return {"schema": connection.schema_name, "current_schema": current_schema}
