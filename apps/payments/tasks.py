"""Payment work in the background. Tasks take ids, run in the schema of the tenant that queued
them and may run twice: the second run changes nothing. They follow the one retry policy
(apps.common.retry): a Stripe that cannot be reached, fails on its side or throttles us is retried
with backoff (up to 8 times, about half an hour at most); a refusal (keys, Stripe switched off, a
request Stripe rejects) is not retried: it fails the task, logged at error level with the tenant
and task id for staff. What a task leaves unfinished (a worker killed mid-call, the last retry
spent) is finished by the reconciler, which beat runs in every tenant."""

from celery import shared_task

from apps.common.retry import RetryingTask
from apps.payments import cleanup, reconcile
from tenants.tasks import queue_in_each_tenant


@shared_task(base=RetryingTask)
def cancel_open_intents(order_id: int) -> None:
    cleanup.cancel_open_intents(order_id=order_id)


@shared_task(base=RetryingTask)
def return_payment(payment_id: int) -> None:
    cleanup.return_payment(payment_id=payment_id)


@shared_task(base=RetryingTask)
def reconcile_payments() -> dict[str, int]:
    """Finish this tenant's Stripe calls left in between (apps.payments.reconcile)."""
    return reconcile.reconcile()


@shared_task
def reconcile_all_tenants() -> int:
    """Beat: queue `reconcile_payments` in each tenant's schema (suspended ones too: money already
    on its way is finished all the same)."""
    return queue_in_each_tenant(reconcile_payments, active_only=False)
