"""Alert deliveries claim their send, send outside any transaction, then record it (the kill itself,
with a real worker, is in tests/faults/test_worker_kill.py): a claim a live run holds is left
alone, the same message come back sends again with the same delivery id or Message-ID, and a
send that failed leaves no claim behind."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.alerts import delivery, webhooks
from apps.alerts.models import Notification, WebhookDelivery
from tests.apps.alerts.helpers import receiver
from tests.apps.alerts.test_delivery import _delivery, _fired


def _claimed(model, pk: int, *, run_id: str, seconds_ago: float, prefix: str) -> None:
    model.objects.filter(pk=pk).update(
        **{
            f"{prefix}_started_at": timezone.now() - timedelta(seconds=seconds_ago),
            f"{prefix}_run_id": run_id,
        }
    )


def test_no_transaction_is_open_while_the_webhook_is_posted(alpha, monkeypatch):
    with receiver(200) as hook:
        notification, _ = _fired(alpha, channels=["webhook"], webhook_url=hook.url)
        sent = _delivery(alpha, notification)
        depth: list[int] = []
        post = webhooks.post

        def watched(*args, **kwargs):
            depth.append(len(connection.atomic_blocks))
            return post(*args, **kwargs)

        monkeypatch.setattr(webhooks, "post", watched)
        with tenant_context(alpha.tenant):
            outside = len(connection.atomic_blocks)  # the test's own transaction
            assert (
                delivery.attempt_webhook(sent.pk, run_id="task-1").status
                == WebhookDelivery.Status.DELIVERED
            )
    assert depth == [outside]


def test_a_webhook_a_live_run_is_sending_is_left_to_it(alpha):
    with receiver(200) as hook:
        notification, _ = _fired(alpha, channels=["webhook"], webhook_url=hook.url)
        sent = _delivery(alpha, notification)
        with tenant_context(alpha.tenant):
            _claimed(WebhookDelivery, sent.pk, run_id="task-1", seconds_ago=1, prefix="attempt")
            assert delivery.attempt_webhook(sent.pk, run_id="task-2") is None
        assert hook.requests == []


def test_the_same_message_come_back_posts_again_with_the_same_delivery_id(alpha):
    with receiver(200) as hook:
        notification, _ = _fired(alpha, channels=["webhook"], webhook_url=hook.url)
        sent = _delivery(alpha, notification)
        with tenant_context(alpha.tenant):
            delivery.attempt_webhook(sent.pk, run_id="task-1")
            # As a worker killed after the POST leaves it: pending, its attempt open.
            WebhookDelivery.objects.filter(pk=sent.pk).update(status=WebhookDelivery.Status.PENDING)
            _claimed(WebhookDelivery, sent.pk, run_id="task-1", seconds_ago=1, prefix="attempt")
            again = delivery.attempt_webhook(sent.pk, run_id="task-1")
        ids = [headers[webhooks.DELIVERY_HEADER] for headers, _ in hook.requests]
    assert (again.status, again.attempts, again.attempt_started_at) == (
        WebhookDelivery.Status.DELIVERED,
        2,
        None,
    )
    assert ids == [delivery.delivery_key("alpha", sent.pk)] * 2


def test_an_email_a_live_run_is_sending_is_left_to_it_and_one_come_back_is_sent(alpha):
    notification, _ = _fired(alpha, channels=["email"], emails=["ops@example.com"])
    mail.outbox.clear()
    with tenant_context(alpha.tenant):
        _claimed(Notification, notification.pk, run_id="task-1", seconds_ago=1, prefix="email")
        assert delivery.send_email(notification.pk, run_id="task-2") is False
        assert delivery.send_email(notification.pk, run_id="task-1") is True
        assert Notification.objects.get(pk=notification.pk).email_started_at is None
    (message,) = mail.outbox
    assert message.extra_headers["Message-ID"] == delivery.message_id("alpha", notification.pk)


def test_an_email_that_could_not_be_sent_leaves_no_claim(alpha, monkeypatch):
    notification, _ = _fired(alpha, channels=["email"], emails=["ops@example.com"])

    def refused(self, *args, **kwargs):
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr(mail.EmailMessage, "send", refused)
    with tenant_context(alpha.tenant):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            delivery.send_email(notification.pk, run_id="task-1")
        found = Notification.objects.get(pk=notification.pk)
    assert (found.emailed_at, found.email_started_at) == (None, None)
