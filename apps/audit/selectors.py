"""Reads of the audit log."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.audit.models import AuditEntry


def audit_log(
    *,
    action: str | None = None,
    actor_email: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Newest first. `action` matches a whole action ("member.add") or a prefix ending in "."
    ("member.")."""
    entries = AuditEntry.objects.all()
    if action:
        entries = (
            entries.filter(action__startswith=action)
            if action.endswith(".")
            else entries.filter(action=action)
        )
    if actor_email:
        entries = entries.filter(actor_email__iexact=actor_email)
    if object_type:
        entries = entries.filter(object_type=object_type)
    if object_id:
        entries = entries.filter(object_id=object_id)
    if since:
        entries = entries.filter(created__gte=since)
    if until:
        entries = entries.filter(created__lt=until)
    return entries.order_by("-created", "-id")
