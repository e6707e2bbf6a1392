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


def _keep_django_logging(**kwargs) -> None:
    """A receiver of setup_logging keeps Celery's hands off the logging Django set up from
    settings.LOGGING (JSON lines with tenant and request context). Without one, a starting worker
    replaces the root logger's handlers and sets its level to the worker's (ERROR for the test
    worker of celery.contrib.testing): in the test process, every warning logged after a worker
    had started vanished (an alert test failed in some orders of the suite)."""


# Connected after tenant-schemas-celery's own prerun handler, so it sees the switched schema.
from celery.signals import setup_logging, task_prerun  # noqa: E402

task_prerun.connect(_log_context_from_connection, weak=False, dispatch_uid="tenant_log_context")
setup_logging.connect(_keep_django_logging, weak=False, dispatch_uid="keep_django_logging")
