"""Sends whose task message was lost (queued on commit while the broker was down, which
apps.common.outages.after_commit logs and drops) are queued again by the minute's evaluation
(apps.alerts.delivery.requeue_lost): once they are LOST_AFTER old, only if their task never ran,
and never more than a day back."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.alerts import delivery, tasks
from apps.alerts.models import Notification, WebhookDelivery
from tests.apps.alerts.helpers import receiver
from tests.apps.alerts.test_delivery import _fired
from tests.eager import eager


def test_an_email_and_a_webhook_whose_messages_were_lost_are_sent_once(
    alpha, django_capture_on_commit_callbacks
):
    with receiver(200) as hook:
        # Fired, and what it queued on commit is never run: the messages are lost.
        notification, _ = _fired(
            alpha, channels=["email", "webhook"], emails=["ops@example.com"], webhook_url=hook.url
        )
        now = timezone.now()
        with tenant_context(alpha.tenant):
            assert delivery.requeue_lost(now=now) == 0  # too fresh: the task may be on its way
            late = now + delivery.LOST_AFTER + timedelta(seconds=1)
            with eager(), django_capture_on_commit_callbacks(execute=True):
                assert delivery.requeue_lost(now=late) == 2
            assert delivery.requeue_lost(now=late) == 0  # sent: nothing lost any more
            sent = WebhookDelivery.objects.get(notification=notification)
            emailed = Notification.objects.get(pk=notification.pk).emailed_at
        assert len(hook.requests) == 1
    assert [m.to for m in mail.outbox] == [["ops@example.com"]] and emailed is not None
    assert (sent.status, sent.attempts) == (WebhookDelivery.Status.DELIVERED, 1)


def test_sends_a_task_has_run_or_older_than_a_day_are_left_alone(alpha):
    with receiver(500) as hook:
        notification, _ = _fired(
            alpha, channels=["email", "webhook"], emails=["ops@example.com"], webhook_url=hook.url
        )
        with tenant_context(alpha.tenant):
            sent = WebhookDelivery.objects.get(notification=notification)
            delivery.attempt_webhook(sent.pk, run_id="task-1")  # failed once: its task retries
            Notification.objects.filter(pk=notification.pk).update(email_run_id="task-2")
            late = timezone.now() + delivery.LOST_AFTER + timedelta(seconds=1)
            assert delivery.requeue_lost(now=late) == 0
            Notification.objects.filter(pk=notification.pk).update(email_run_id="")
            WebhookDelivery.objects.filter(pk=sent.pk).update(attempts=0)
            assert delivery.requeue_lost(now=late) == 2  # as never run, they would be
            too_old = timezone.now() + delivery.LOOK_BACK + timedelta(seconds=1)
            assert delivery.requeue_lost(now=too_old) == 0


def test_the_minutes_evaluation_queues_them_again(alpha, django_capture_on_commit_callbacks):
    notification, _ = _fired(alpha, channels=["email"], emails=["ops@example.com"])
    with tenant_context(alpha.tenant):
        fired_at = timezone.now() - delivery.LOST_AFTER - timedelta(seconds=1)
        Notification.objects.filter(pk=notification.pk).update(created=fired_at)
        with eager(), django_capture_on_commit_callbacks(execute=True):
            tasks.evaluate.apply().get()
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
