"""Watching a Celery task's retries in a test: the `Retry` each attempt asks for, as a worker would
receive it (its countdown is `when`), read off Celery's own `task_retry` signal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from celery import Task
from celery.exceptions import Retry
from celery.signals import task_retry


@contextmanager
def retries_of(task: Task, *, then: Callable[[], None] | None = None) -> Iterator[list[Retry]]:
    """Every Retry `task` asks for while inside; `then()` runs at the first, before the retry
    does (under `apply()` a retry runs at once: this is where a test ends the outage)."""
    asked: list[Retry] = []

    def record(sender, reason, **kwargs) -> None:
        asked.append(reason)
        if then is not None and len(asked) == 1:
            then()

    task_retry.connect(record, sender=task, weak=False)
    try:
        yield asked
    finally:
        task_retry.disconnect(record, sender=task)
