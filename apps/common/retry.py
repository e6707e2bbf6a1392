"""The one retry policy for outbound calls and the Celery tasks that make them (DESIGN §7, §12).

- **When**: attempt n (0 for the first retry) waits a random time in [0, min(CAP, BASE x 2**n)]
  seconds ("full jitter"): 10 s, 20 s, 40 s ... up to 10 min at most. The randomness spreads the
  retries of many tasks that failed together (a Stripe or database outage) instead of sending
  them back all at once.
- **What**: `is_retryable` names the errors that may pass by themselves (networks, Stripe 5xx and
  429, database connections and lock timeouts, Redis, SMTP 4xx). Anything else is permanent: a
  card declined, a request or a key Stripe refuses, our own bugs. A retry cannot fix those.
- **How**: tasks declare `base=RetryingTask`. A retryable error is retried with `backoff` through
  Celery's own `Task.retry` (the retry is a new message with a countdown, so a worker is never
  held); a permanent error, or the last retry's, is logged at error level with the tenant and
  task id and fails the task.

Stripe's SDK also repeats a failed call twice within the call (`max_network_retries`, same
idempotency key, a second or two in all): that covers a blip; this policy covers an outage.
"""

from __future__ import annotations

import logging
import random
import smtplib

import stripe
from celery import Task
from celery.exceptions import Retry, TaskPredicate
from django.db import connection
from tenant_schemas_celery.task import TenantTask

from apps.common.outages import OUTAGES

log = logging.getLogger(__name__)

BASE_SECONDS = 10
FACTOR = 2
CAP_SECONDS = 600
MAX_RETRIES = 8  # after the first attempt: nine in all, the last at most ~30 min after the first

_EXPONENT_LIMIT = 64  # past it the ceiling is the cap anyway; keeps the integers small


class TryAgain(Exception):
    """An attempt failed in a way worth repeating, and the caller has recorded why (a webhook
    answered 500: the delivery row holds the answer)."""


# Stripe: cannot be reached, failed on its side (5xx), or asks us to slow down (429).
# Outages (apps.common.outages): PostgreSQL connection lost, lock or statement timeout, deadlock,
# serialization failure (OperationalError in Django); Redis or the broker unreachable.
# OSError: refused, reset, timed out (socket.timeout is TimeoutError).
RETRYABLE: tuple[type[BaseException], ...] = (
    stripe.APIConnectionError,
    stripe.APIError,
    stripe.RateLimitError,
    *OUTAGES,
    OSError,
    TryAgain,
)


def ceiling(attempt: int) -> int:
    """The longest wait before retry number `attempt` + 1 (0-based): BASE x FACTOR**attempt, capped."""
    if attempt < 0:
        raise ValueError("attempt counts retries already made: 0 or more")
    return min(CAP_SECONDS, BASE_SECONDS * FACTOR ** min(attempt, _EXPONENT_LIMIT))


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` + 1: uniform in [0, ceiling(attempt)]."""
    return (rng or random).uniform(0, ceiling(attempt))


def _smtp_retryable(error: smtplib.SMTPException) -> bool:
    # SMTP says it itself: 4xx is "try again later", 5xx is "never".
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return True  # disconnected, no connection: the network


def is_retryable(error: BaseException) -> bool:
    """Whether a later attempt may succeed where this one failed. An error that wraps another
    (a UserError raised `from` a Stripe error) is judged by what it wraps."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, smtplib.SMTPException):
            return _smtp_retryable(current)
        if isinstance(current, RETRYABLE):
            return True
        current = current.__cause__
    return False


def retry_later(task: Task, error: BaseException) -> Retry:
    """Schedule `task` again after `backoff(retries so far)`; the Retry to raise. Past the task's
    max_retries Celery raises `error` itself instead."""
    return task.retry(exc=error, countdown=backoff(task.request.retries))


class RetryingTask(TenantTask):
    """A task under the policy, run in its tenant's schema as every task of the app: retryable
    errors are retried with `backoff` up to `max_retries` (MAX_RETRIES unless the task says
    otherwise), the others fail it at once, logged for staff."""

    max_retries = MAX_RETRIES

    def __call__(self, *args, **kwargs):
        if (
            self.request.called_directly
        ):  # a plain function call (shell, tests): no queue to retry on
            return super().__call__(*args, **kwargs)
        # Under a worker or apply() the request is already pushed: run as Celery's tracer would.
        try:
            return self.run(*args, **kwargs)
        except TaskPredicate:  # Retry, Ignore, Reject: the task told Celery what to do already
            raise
        except Exception as error:
            retryable = is_retryable(error)
            if retryable and self.request.retries < self.max_retries:
                raise retry_later(self, error) from error
            log.error(
                "Task %s[%s] in tenant %s failed for good (%s): %s: %s",
                self.name,
                self.request.id,
                connection.schema_name,
                "retries exhausted" if retryable else "not retryable",
                type(error).__name__,
                error,
                exc_info=error,
            )
            raise
