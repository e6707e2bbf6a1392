"""Payment clean-up work queued on commit (apps.payments.cleanup). Tasks take ids, run in the
schema of the tenant that queued them and may run twice: the second run changes nothing. They
follow the one retry policy (apps.common.retry): a Stripe that cannot be reached, fails on its
side or throttles us is retried with backoff (up to 8 times, about half an hour at most); a
refusal (keys, Stripe switched off, a request Stripe rejects) is not retried: it fails the task,
logged at error level with the tenant and task id for staff."""

from celery import shared_task

from apps.common.retry import RetryingTask
from apps.payments import cleanup


@shared_task(base=RetryingTask)
def cancel_open_intents(order_id: int) -> None:
    cleanup.cancel_open_intents(order_id=order_id)


@shared_task(base=RetryingTask)
def return_payment(payment_id: int) -> None:
    cleanup.return_payment(payment_id=payment_id)
