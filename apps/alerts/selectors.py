"""Reading alert rules and notifications."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.alerts.models import AlertRule, Notification


def rules() -> QuerySet[AlertRule]:
    return AlertRule.objects.all()


def notifications(*, unread: bool | None = None) -> QuerySet[Notification]:
    """The in-app notifications, newest first; `unread`: only those (not) read yet."""
    found = Notification.objects.filter(in_app=True)
    if unread is not None:
        found = found.filter(read_at__isnull=unread)
    return found


def notification(notification_id: int) -> Notification | None:
    return notifications().select_related("rule").filter(pk=notification_id).first()
