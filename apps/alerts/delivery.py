"""What a firing does: the Notification (in-app, published on the live bus topic
`notifications`), an email to the rule's addresses and a signed webhook, each by a task queued
when the firing commits (apps.alerts.tasks). Tasks may run twice: an email is sent once per
notification (`emailed_at`), a delivered webhook is not sent again. Neither is sent inside a
transaction: each is claimed, sent, then recorded, so a worker killed mid-send leaves a claim the
next run of the message takes over (apps.common.runs) and sends again with the same Message-ID or
delivery id: at least once, and a receiver keeps one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from apps.alerts import webhooks
from apps.alerts.models import AlertRule, Channel, Comparison, Notification, WebhookDelivery
from apps.analytics.metrics import METRICS
from apps.analytics.query import DateRange
from apps.common import crypto, global_ids, runs
from apps.common.external import outside_transactions
from apps.common.outages import after_commit
from apps.live import bus
from tenants.db import connection

# After the first attempt: seven in all, the last at most 10.5 min after the first (the backoff of
# apps.common.retry: 10 + 20 + ... + 320 s at most, about half that on average).
WEBHOOK_MAX_RETRIES = 6

VERBS: dict[str, str] = {Comparison.ABOVE: "is above", Comparison.BELOW: "is below"}


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
    return (
        f"{rule.name}: {label} {condition}"[:200],
        f"{label} over {days} ({span.first} to {span.last}) {condition}.",
    )


def _queue(task: Any, object_id: int) -> None:
    """After commit, in this tenant's schema (named: never whatever schema a connection has then)."""
    schema = connection.schema_name
    after_commit(lambda: task.apply_async((object_id,), headers={"_schema_name": schema}))


def fire(
    rule: AlertRule, *, value: Decimal | None, range: DateRange, now: datetime
) -> Notification:
    """Within the evaluation's transaction: the notification, and its deliveries queued."""
    from apps.alerts import tasks

    title, body = _describe(rule, value, range)
    notification = Notification.objects.create(
        rule=rule,
        title=title,
        body=body,
        in_app=Channel.IN_APP in rule.channels,
        data={
            "rule": rule.name,
            "metric": rule.metric,
            "comparison": rule.comparison,
            "value": _text(value),
            "threshold": _text(rule.threshold),
            "windowDays": rule.window_days,
            "from": range.first.isoformat(),
            "to": range.last.isoformat(),
        },
    )
    if notification.in_app:
        bus.publish_on_commit("notifications", {"notification": notification.pk})
    if Channel.EMAIL in rule.channels and rule.emails:
        _queue(tasks.send_email, notification.pk)
    if Channel.WEBHOOK in rule.channels and rule.webhook_url:
        schema = connection.schema_name  # the ids the tenant's API gives for these rows
        body = json.dumps(
            {
                "rule": global_ids.encode("AlertRule", rule.pk, schema),
                "metric": rule.metric,
                "value": _text(value),
                "threshold": _text(rule.threshold),
                "firedAt": now.isoformat(),
                "notification": global_ids.encode("Notification", notification.pk, schema),
            },
            separators=(",", ":"),
        )
        sent = WebhookDelivery.objects.create(
            notification=notification, rule=rule, url=rule.webhook_url, body=body
        )
        _queue(tasks.deliver_webhook, sent.pk)
    return notification


# A send whose task has not run this long after its firing lost its message (queued while the
# broker was down: after_commit drops it then); the reconciler looks back this far at most.
LOST_AFTER = timedelta(minutes=10)
LOOK_BACK = timedelta(days=1)
REQUEUE_BATCH = 500  # of each kind a run at most: the next minute's run takes the rest


def requeue_lost(*, now: datetime | None = None) -> int:
    """Queue again the sends whose task never ran: emails of notifications never claimed and
    webhook deliveries never attempted, fired between LOOK_BACK and LOST_AFTER ago; how many.
    A message merely late (a worker down for longer) is then run twice, which the claims make
    harmless: the second run finds the email sent, or makes one more attempt of a delivery whose
    every POST carries the same delivery id."""
    from apps.alerts import tasks

    now = now or timezone.now()
    window = (now - LOOK_BACK, now - LOST_AFTER)
    emails = Notification.objects.filter(
        created__range=window,
        emailed_at__isnull=True,
        email_run_id="",
        rule__channels__contains=[Channel.EMAIL],
    ).exclude(rule__emails=[])
    hooks = WebhookDelivery.objects.filter(
        created__range=window, status=WebhookDelivery.Status.PENDING, attempts=0
    )
    lost = [
        (tasks.send_email, pk)
        for pk in emails.order_by("pk").values_list("pk", flat=True)[:REQUEUE_BATCH]
    ]
    lost += [
        (tasks.deliver_webhook, pk)
        for pk in hooks.order_by("pk").values_list("pk", flat=True)[:REQUEUE_BATCH]
    ]
    for task, pk in lost:
        _queue(task, pk)
    return len(lost)


def delivery_key(schema: str, delivery_id: int) -> str:
    """The id every POST of one delivery carries (webhooks.DELIVERY_HEADER): the delivery's global
    id, the same across attempts, so a receiver drops a repeat."""
    return global_ids.encode("WebhookDelivery", delivery_id, schema)


def message_id(schema: str, notification_id: int) -> str:
    """The Message-ID of a notification's email, the same however often it is sent."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return f"<alert-{schema}-{notification_id}@{domain}>"


# --- email: claimed, sent outside any transaction, then marked sent --------------------------------


def send_email(notification_id: int, run_id: str = "") -> bool:
    """Mails the notification to its rule's addresses; whether it did now. Sent once, unless a
    worker dies after sending and before marking it sent: the run after then sends it again, with
    the same Message-ID, by which a mail system or client can drop the repeat. `run_id` is
    the Celery task's id (apps.common.runs)."""
    notification = _claim_email(notification_id, run_id)
    if notification is None:
        return False
    assert notification.rule is not None  # _claim_email claims only notifications of a rule
    message = EmailMessage(
        notification.title,
        notification.body,
        settings.DEFAULT_FROM_EMAIL,
        notification.rule.emails,
        headers={"Message-ID": message_id(connection.schema_name, notification.pk)},
    )
    try:
        outside_transactions("Alert email")
        message.send()
    except BaseException:
        _release_email(notification)  # not sent: the retry (or another run) may claim it at once
        raise
    Notification.objects.filter(
        pk=notification.pk, email_run_id=run_id, email_started_at=notification.email_started_at
    ).update(emailed_at=timezone.now(), email_started_at=None)
    return True


@transaction.atomic
def _claim_email(notification_id: int, run_id: str) -> Notification | None:
    notification = (
        Notification.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(pk=notification_id, emailed_at__isnull=True)
        .first()
    )
    if notification is None or notification.rule is None or not notification.rule.emails:
        return None
    now = timezone.now()
    if not runs.holder_is_dead(
        started_at=notification.email_started_at,
        holder=notification.email_run_id,
        run_id=run_id,
        now=now,
    ):
        return None
    notification.email_started_at, notification.email_run_id = now, run_id
    notification.save(update_fields=["email_started_at", "email_run_id"])
    return notification


def _release_email(notification: Notification) -> None:
    Notification.objects.filter(
        pk=notification.pk,
        email_run_id=notification.email_run_id,
        email_started_at=notification.email_started_at,
    ).update(email_started_at=None)


# --- webhooks: the attempt committed, the POST outside any transaction, its outcome recorded --------


def attempt_webhook(delivery_id: int, run_id: str = "") -> WebhookDelivery | None:
    """One attempt at a pending delivery, recorded on it (None: delivered, given up, or being
    attempted right now by a run that may be alive). Failed after the last attempt the task will
    make. `run_id` is the Celery task's id (apps.common.runs).

    No transaction is open during the POST (DESIGN §12): the attempt is committed first, then the
    POST is made, then its outcome is recorded. A worker killed in between leaves the attempt open
    and the delivery pending; the run of the message that comes back makes the next attempt, with
    the same body and delivery id (`delivery_key`). So a webhook is delivered at least once, and a
    receiver that keeps the delivery ids it has seen takes it exactly once."""
    sent = _begin_attempt(delivery_id, run_id)
    if sent is None or sent.status != WebhookDelivery.Status.PENDING:
        return sent
    assert sent.rule is not None  # _begin_attempt fails a delivery whose rule was deleted
    outcome = webhooks.post(
        sent.url,
        sent.body,
        secret=crypto.decrypt(sent.rule.webhook_secret),
        delivery_id=delivery_key(connection.schema_name, sent.pk),
    )
    return _end_attempt(sent, outcome)


@transaction.atomic
def _begin_attempt(delivery_id: int, run_id: str) -> WebhookDelivery | None:
    sent = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .first()
    )
    now = timezone.now()
    if sent is None or not runs.holder_is_dead(
        started_at=sent.attempt_started_at, holder=sent.attempt_run_id, run_id=run_id, now=now
    ):
        return None
    sent.attempts += 1
    sent.last_attempt_at = now
    if sent.rule is None:  # deleted since: nothing left to sign with
        sent.status, sent.last_status_code, sent.last_error = (
            WebhookDelivery.Status.FAILED,
            None,
            "The alert rule was deleted.",
        )
        sent.attempt_started_at = None
    else:
        sent.attempt_started_at, sent.attempt_run_id = now, run_id
    sent.save()
    return sent


@transaction.atomic
def _end_attempt(sent: WebhookDelivery, outcome: webhooks.Outcome) -> WebhookDelivery | None:
    """The outcome on the delivery, unless another run took the attempt over meanwhile (this run
    was presumed dead: past the time limit); then that run's outcome counts."""
    current = (
        WebhookDelivery.objects.select_for_update()
        .filter(
            pk=sent.pk,
            status=WebhookDelivery.Status.PENDING,
            attempt_run_id=sent.attempt_run_id,
            attempt_started_at=sent.attempt_started_at,
        )
        .first()
    )
    if current is None:
        return None
    current.last_status_code, current.last_error = outcome.status_code, outcome.error
    current.attempt_started_at = None
    if outcome.ok:
        current.status, current.delivered_at = WebhookDelivery.Status.DELIVERED, timezone.now()
    elif current.attempts > WEBHOOK_MAX_RETRIES:
        current.status = WebhookDelivery.Status.FAILED
    current.save()
    return current
