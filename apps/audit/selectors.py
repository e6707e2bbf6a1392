"""Reads of the audit log."""

from django.db.models import QuerySet

from apps.audit.models import AuditEntry


def audit_log() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.all()
