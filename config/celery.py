"""The Celery app. tenant-schemas-celery runs each task in the schema of the tenant that queued
it (taken from the active connection when the task is sent)."""

import contextlib
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from tenant_schemas_celery.app import CeleryApp

app = CeleryApp("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _log_context_from_connection(task=None, **kwargs) -> None:
    """After tenant-schemas-celery switched the schema, enter that tenant for the task (its log
    lines, and the database backend's context) until the task ends."""
    from tenants.context import enter
    from tenants.db import connection

    if task is not None:
        task.request.tenant_entered = enter(connection.tenant)


def _leave_task_context(task=None, **kwargs) -> None:
    """Give the context back as the task found it: a task run in place (eager, `apply()`) must
    not leave its tenant in the caller's context."""
    from tenants.context import leave

    entered = getattr(getattr(task, "request", None), "tenant_entered", None)
    if entered is not None:
        task.request.tenant_entered = None
        with contextlib.suppress(ValueError):  # entered in another context: nothing to give back
            leave(entered)


def _keep_django_logging(**kwargs) -> None:
    """A receiver of setup_logging keeps Celery's hands off the logging Django set up from
    settings.LOGGING (JSON lines with tenant and request context). Without one, a starting worker
    replaces the root logger's handlers and sets its level to the worker's (ERROR for the test
    worker of celery.contrib.testing): in the test process, every warning logged after a worker
    had started vanished (an alert test failed in some orders of the suite)."""


# Connected after tenant-schemas-celery's own prerun handler, so it sees the switched schema.
from celery.signals import setup_logging, task_postrun, task_prerun  # noqa: E402

task_prerun.connect(_log_context_from_connection, weak=False, dispatch_uid="tenant_log_context")
task_postrun.connect(_leave_task_context, weak=False, dispatch_uid="tenant_log_context_leave")
setup_logging.connect(_keep_django_logging, weak=False, dispatch_uid="keep_django_logging")
