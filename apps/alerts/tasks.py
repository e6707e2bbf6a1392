"""Alert work for Celery. Beat runs `evaluate_all_tenants` every minute (in the public schema);
it queues `evaluate` in the schema of each active tenant (tenant-schemas-celery), which evaluates
that tenant's rules. Deliveries run as tasks of their own; every task takes ids and may run twice
(apps.alerts.delivery). Retries follow the one policy (apps.common.retry): its backoff, its
retryable errors; only how many retries differs, and why is said at each task."""

from __future__ import annotations

from celery import shared_task

from apps.alerts import delivery, evaluation
from apps.alerts.models import WebhookDelivery
from apps.common.retry import RetryingTask, TryAgain
from tenants.db import connection
from tenants.tasks import queue_in_each_tenant

EVALUATE_EXPIRES_SECONDS = 55  # a minute's evaluation not started within the minute is dropped


class WebhookFailed(TryAgain):
    """An attempt failed and more are left (the delivery row holds why): retried with backoff."""


@shared_task
def evaluate_all_tenants() -> int:
    """Queues `evaluate` for every active tenant (not the template); how many."""
    return queue_in_each_tenant(evaluate, active_only=True, expires=EVALUATE_EXPIRES_SECONDS)


# Twice only: the next minute's evaluation covers the same rules, so a late retry adds nothing.
@shared_task(base=RetryingTask, max_retries=2)
def evaluate() -> int:
    """Evaluates the rules of the tenant the task runs in, then queues again the sends whose
    message was lost (apps.alerts.delivery.requeue_lost); how many rules fired."""
    fired = evaluation.evaluate_all(tenant=connection.tenant)
    delivery.requeue_lost()
    return fired


@shared_task(base=RetryingTask, bind=True)
def send_email(self, notification_id: int) -> bool:
    return delivery.send_email(notification_id, run_id=self.request.id or "")


# As many as the delivery row counts: its last attempt marks it failed, so the two must agree.
@shared_task(base=RetryingTask, bind=True, max_retries=delivery.WEBHOOK_MAX_RETRIES)
def deliver_webhook(self, delivery_id: int) -> str | None:
    """One attempt; a failure with attempts left raises for Celery's retry. The final status."""
    sent = delivery.attempt_webhook(delivery_id, run_id=self.request.id or "")
    if sent is not None and sent.status == WebhookDelivery.Status.PENDING:
        raise WebhookFailed(f"{sent.url}: {sent.last_error}")
    return None if sent is None else sent.status
