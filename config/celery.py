"""The Celery app. tenant-schemas-celery runs each task in the schema of the tenant that queued
it (taken from the active connection when the task is sent)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from tenant_schemas_celery.app import CeleryApp

app = CeleryApp("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _log_context_from_connection(**kwargs) -> None:
    """After tenant-schemas-celery switched the schema, put that tenant on the task's log lines."""
    from django.db import connection

    from tenants.context import current_tenant

    current_tenant.set(connection.tenant)


# Connected after tenant-schemas-celery's own prerun handler, so it sees the switched schema.
from celery.signals import task_prerun  # noqa: E402

task_prerun.connect(_log_context_from_connection, weak=False, dispatch_uid="tenant_log_context")
