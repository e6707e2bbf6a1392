"""What a firing does: the Notification (in-app, published on the live bus topic
`notifications`), an email to the rule's addresses and a signed webhook, each by a task queued
when the firing commits (apps.alerts.tasks). Tasks may run twice: an email is sent once per
notification (`emailed_at`), a delivered webhook is not sent again."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from apps.alerts import webhooks
from apps.alerts.models import AlertRule, Channel, Comparison, Notification, WebhookDelivery
from apps.analytics.metrics import METRICS
from apps.analytics.query import DateRange
from apps.common import global_ids
from apps.common.outages import after_commit
from apps.live import bus
from apps.payments import crypto

# After the first attempt: seven in all, the last at most 10.5 min after the first (the backoff of
# apps.common.retry: 10 + 20 + ... + 320 s at most, about half that on average).
WEBHOOK_MAX_RETRIES = 6

VERBS = {Comparison.ABOVE: "is above", Comparison.BELOW: "is below"}


def _text(number: Decimal | None) -> str | None:
    return None if number is None else format(number.normalize(), "f")


def _describe(rule: AlertRule, value: Decimal | None, span: DateRange) -> tuple[str, str]:
    label = METRICS[rule.metric].label
    days = "today" if rule.window_days == 1 else f"the last {rule.window_days} days"
    if rule.comparison == Comparison.PERCENT_CHANGE:
        condition = f"changed by {_text(value)}% (threshold {_text(rule.threshold)}%)"
        days += " vs the period before"
    else:
        condition = f"{VERBS[rule.comparison]} {_text(rule.threshold)}: {_text(value)}"
    return (f"{rule.name}: {label} {condition}"[:200],
            f"{label} over {days} ({span.first} to {span.last}) {condition}.")


def _queue(task: Any, object_id: int) -> None:
    """After commit, in this tenant's schema (named: never whatever schema a connection has then)."""
    schema = connection.schema_name
    after_commit(lambda: task.apply_async((object_id,), headers={"_schema_name": schema}))


def fire(rule: AlertRule, *, value: Decimal | None, range: DateRange, now: datetime) -> Notification:
    """Within the evaluation's transaction: the notification, and its deliveries queued."""
    from apps.alerts import tasks

    title, body = _describe(rule, value, range)
    notification = Notification.objects.create(
        rule=rule, title=title, body=body, in_app=Channel.IN_APP in rule.channels,
        data={"rule": rule.name, "metric": rule.metric, "comparison": rule.comparison, "value": _text(value),
              "threshold": _text(rule.threshold), "windowDays": rule.window_days,
              "from": range.first.isoformat(), "to": range.last.isoformat()},
    )
    if notification.in_app:
        bus.publish_on_commit("notifications", {"notification": notification.pk})
    if Channel.EMAIL in rule.channels and rule.emails:
        _queue(tasks.send_email, notification.pk)
    if Channel.WEBHOOK in rule.channels and rule.webhook_url:
        schema = connection.schema_name  # the ids the tenant's API gives for these rows
        body = json.dumps({
            "rule": global_ids.encode("AlertRule", rule.pk, schema), "metric": rule.metric, "value": _text(value),
            "threshold": _text(rule.threshold), "firedAt": now.isoformat(),
            "notification": global_ids.encode("Notification", notification.pk, schema),
        }, separators=(",", ":"))
        sent = WebhookDelivery.objects.create(notification=notification, rule=rule, url=rule.webhook_url, body=body)
        _queue(tasks.deliver_webhook, sent.pk)
    return notification


@transaction.atomic
def send_email(notification_id: int) -> bool:
    """Mails the notification to its rule's addresses, once; whether it did now."""
    notification = (Notification.objects.select_for_update(of=("self",)).select_related("rule")
                    .filter(pk=notification_id, emailed_at__isnull=True).first())
    if notification is None or notification.rule is None or not notification.rule.emails:
        return False
    send_mail(notification.title, notification.body, settings.DEFAULT_FROM_EMAIL, notification.rule.emails)
    notification.emailed_at = timezone.now()
    notification.save(update_fields=["emailed_at"])
    return True


@transaction.atomic
def attempt_webhook(delivery_id: int) -> WebhookDelivery | None:
    """One attempt at a pending delivery, recorded on it (None: delivered, given up, or being
    attempted elsewhere right now). Failed after the last attempt the task will make."""
    sent = (WebhookDelivery.objects.select_for_update(of=("self",), skip_locked=True).select_related("rule")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).first())
    if sent is None:
        return None
    now = timezone.now()
    if sent.rule is None:  # deleted since: nothing left to sign with
        outcome = webhooks.Outcome(False, None, "The alert rule was deleted.")
        sent.attempts = WEBHOOK_MAX_RETRIES
    else:
        outcome = webhooks.post(sent.url, sent.body, secret=crypto.decrypt(sent.rule.webhook_secret))
    sent.attempts += 1
    sent.last_status_code, sent.last_error, sent.last_attempt_at = outcome.status_code, outcome.error, now
    if outcome.ok:
        sent.status, sent.delivered_at = WebhookDelivery.Status.DELIVERED, now
    elif sent.attempts > WEBHOOK_MAX_RETRIES:
        sent.status = WebhookDelivery.Status.FAILED
    sent.save()
    return sent
