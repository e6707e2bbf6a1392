"""What an outage of a backing service looks like from here (DESIGN §12 "Degraded modes"):
PostgreSQL unreachable, restarting or failing over, or Redis unreachable. Such errors are not bugs
of ours and not the caller's fault: the API answers them with the code UNAVAILABLE (HTTP 503 with
Retry-After when nothing of the request could be done), fast, and recovers by itself once the
service is back (connections are opened again per request; nothing is cached across the outage).

The degraded modes, decided:
- PostgreSQL down: every request that needs it answers 503 UNAVAILABLE at once (tenant resolution
  is its first query); probes say so (/readyz).
- Redis down: reads go on. The throttle bucket cannot be paid into, so operations run unmetered
  (their cost is still computed and capped; `throttleStatus` is left out of the answer) rather
  than refusing every caller; analytics answers are computed instead of read from the cache;
  live visitor counts skip the visit. What a committed write does after its commit through Redis
  (the analytics version bump, live-metric and order-event publishes, queueing its Celery task)
  is logged and dropped, never a 500 for a write that has committed: a client that saw a 500
  would retry a write that was done. Open subscriptions stay open and quiet (what was written
  meanwhile published nothing; live metrics show its figures once Redis is back) and resume by
  themselves, no reconnect needed (apps.live.layer); a subscription asked for meanwhile is
  refused with UNAVAILABLE, the socket staying up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import redis
from django.db import transaction
from django.db.utils import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

DATABASE_OUTAGES = (OperationalError, InterfaceError)
REDIS_OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, BrokerUnavailable)
OUTAGES = DATABASE_OUTAGES + REDIS_OUTAGES
RETRY_AFTER_SECONDS = 5


def is_outage(error: BaseException) -> bool:
    return isinstance(error, OUTAGES)


def without_redis(work: Callable[[], T], fallback: T, what: str) -> T:
    """`work()`, or `fallback` while Redis cannot be reached (logged as what was skipped)."""
    try:
        return work()
    except REDIS_OUTAGES as error:
        log.warning("Redis unavailable, %s: %s", what, error)
        return fallback


def after_commit(callback: Callable[[], object]) -> None:
    """Run `callback` once the current transaction commits. A failure there (Redis or the broker
    down) is logged, not raised: the write has committed, and a 500 would make the client retry
    it."""

    def run() -> object:
        return callback()

    # Django names a failing callback by its __qualname__ in that log line; a functools.partial
    # (what hooks queue) has none, and the AttributeError escaped as a 500 after the commit.
    inner = getattr(callback, "func", callback)
    run.__qualname__ = getattr(inner, "__qualname__", type(inner).__qualname__)
    transaction.on_commit(run, robust=True)
