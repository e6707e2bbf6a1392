"""Alerts of one tenant: rules that watch a metric of the analytics engine, the notifications
their firings write, and the webhook deliveries of those notifications (apps.alerts.evaluation,
apps.alerts.delivery)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Comparison(models.TextChoices):
    ABOVE = "above"  # the window's value > threshold
    BELOW = "below"  # the window's value < threshold
    # vs the previous window of the same length, in percent, signed: a positive threshold fires on
    # a rise of at least that much, a negative one on a fall of at least that much
    PERCENT_CHANGE = "percent_change"


class Channel(models.TextChoices):
    IN_APP = "in_app"
    EMAIL = "email"
    WEBHOOK = "webhook"


class AlertRule(models.Model):
    class State(models.TextChoices):
        CLEAR = "clear"
        FIRING = "firing"

    name = models.CharField(max_length=120)
    metric = models.CharField(max_length=64)  # a name of apps.analytics.metrics.METRICS, in total
    comparison = models.CharField(max_length=16, choices=Comparison.choices)
    window_days = (
        models.PositiveSmallIntegerField()
    )  # whole local days ending today (1: today so far)
    threshold = models.DecimalField(max_digits=16, decimal_places=4)
    cooldown_minutes = models.PositiveIntegerField(default=60)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list)
    emails = ArrayField(models.EmailField(), default=list, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    # Fernet token (apps.common.crypto): the secret must be read back to sign, so it cannot be hashed.
    webhook_secret = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)  # a public-schema user
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # What the last evaluation saw.
    state = models.CharField(max_length=8, choices=State.choices, default=State.CLEAR)
    last_value = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    """One firing of a rule. Read state is shared by the tenant's members (one `read_at`)."""

    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )  # kept when the rule is deleted
    title = models.CharField(max_length=200)
    body = models.TextField()
    data = models.JSONField(
        default=dict
    )  # rule, metric, value, threshold, comparison, window, range
    in_app = models.BooleanField(
        default=True
    )  # shown in the app (`notifications`), per the rule's channels
    created = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)  # so a task run twice mails once
    # The email being sent: when, by which Celery task (apps.alerts.delivery, apps.common.runs).
    email_started_at = models.DateTimeField(null=True, blank=True)
    email_run_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(
                fields=["-created", "-id"], name="notification_recent", condition=Q(in_app=True)
            ),
            models.Index(
                fields=["-created", "-id"],
                name="notification_unread",
                condition=Q(in_app=True, read_at__isnull=True),
            ),
            # apps.alerts.delivery.requeue_lost: emails never claimed
            models.Index(
                fields=["created"],
                name="notification_email_unclaimed",
                condition=Q(emailed_at__isnull=True, email_run_id=""),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class WebhookDelivery(models.Model):
    """A notification POSTed to its rule's webhook: the exact body signed, and every attempt."""

    class Status(models.TextChoices):
        PENDING = "pending"  # not yet delivered, attempts left
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    url = models.URLField(max_length=500)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The attempt being made (the POST in flight): when, by which Celery task; cleared with its
    # outcome (apps.alerts.delivery, apps.common.runs).
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    attempt_run_id = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            # apps.alerts.delivery.requeue_lost: deliveries never attempted
            models.Index(
                fields=["created"],
                name="webhook_delivery_unattempted",
                condition=Q(status="pending", attempts=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.status})"
