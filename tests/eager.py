"""Celery tasks run in place for a test, as a worker would run them (retries included), and beat's
per-tenant entries run as beat runs them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from config.celery import app


@contextmanager
def eager() -> Iterator[None]:
    """Within the block, a task queued runs at once in this process, and its errors propagate."""
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = False, False


def run_from_beat(task: Any) -> Any:
    """What beat's entry `task` returns, run in the public schema as beat runs it, with the tasks
    it queues run in place."""
    with eager():
        connection.set_schema_to_public()
        return task.apply().get()
