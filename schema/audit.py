"""The audit log of the current tenant (platform actions on the platform host)."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry.scalars import JSON
from strawberry_django.relay import DjangoListConnection

from apps.audit import selectors
from apps.audit.models import AuditEntry
from schema.ids import TenantNode


@strawberry_django.type(AuditEntry, name="AuditEntry")
class AuditEntryType(TenantNode):
    actor_email: str
    api_key_prefix: str
    action: str
    object_type: str
    object_id: str
    changes: JSON
    request_id: str
    created: datetime


@strawberry.type
class Query:
    @strawberry_django.connection(DjangoListConnection[AuditEntryType])
    def audit_log(
        self,
        action: str | None = None,
        actor_email: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> QuerySet[AuditEntry]:
        """Newest first. `action` is a whole action (`member.add`) or a prefix ending in `.`."""
        return selectors.audit_log(
            action=action,
            actor_email=actor_email,
            object_type=object_type,
            object_id=object_id,
            since=since,
            until=until,
        )
