"""Payment clean-up work queued on commit (apps.payments.cleanup). Tasks take ids, run in the
schema of the tenant that queued them and may run twice: the second run changes nothing. A
Stripe that cannot be reached is retried with backoff; a refusal (keys, Stripe switched off) is
left on the order's events for staff."""

import logging

from celery import shared_task
from django.db import OperationalError

from apps.common.errors import UserError
from apps.payments import cleanup

log = logging.getLogger(__name__)
RETRY = {"autoretry_for": (OSError, OperationalError), "retry_backoff": 5, "retry_backoff_max": 600,
         "retry_jitter": True, "max_retries": 8}


def _run(task, work) -> None:
    try:
        work()
    except UserError as error:
        if error.code == "PROVIDER_ERROR":  # Stripe unreachable or failing: try again later
            raise task.retry(exc=error) from error
        log.warning("Payment clean-up refused: %s (%s)", error.message, error.code)


@shared_task(bind=True, **RETRY)
def cancel_open_intents(self, order_id: int) -> None:
    _run(self, lambda: cleanup.cancel_open_intents(order_id=order_id))


@shared_task(bind=True, **RETRY)
def return_payment(self, payment_id: int) -> None:
    _run(self, lambda: cleanup.return_payment(payment_id=payment_id))
