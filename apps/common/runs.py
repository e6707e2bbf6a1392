"""When a task run that claimed a piece of work is dead, so that another run may take it over.

A task that must not do its work twice at once (write an export, POST a webhook, send an email)
claims it first in a short transaction: the time and its Celery task id, written into the row.
A worker can die at any line after that (SIGKILL, out of memory, the host gone), leaving the claim
behind; this decides when a later run may take such a claim over:

- the later run is the same message come back (the same task id): the broker hands a message out
  again only when the worker that had it died without acknowledging it (acks late, and the
  visibility timeout outlasts the time limit), and Celery requeues it itself when the pool process
  running it died (reject on worker lost); or
- the claim is older than the task time limit: the worker cuts every task there (the prefork
  pool, as deployed, enforces it; a thread pool would not), so no run that claimed it then can
  still be running.

Otherwise the holder may be alive, and the work is left to it: a duplicate message ends at once."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone


def holder_is_dead(
    *, started_at: datetime | None, holder: str, run_id: str, now: datetime | None = None
) -> bool:
    """Whether the claim (`started_at`, by task `holder`) may be taken over by task `run_id` (empty:
    not a Celery task, so never the same message)."""
    if started_at is None:
        return True
    if run_id and holder == run_id:
        return True
    return started_at < (now or timezone.now()) - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
