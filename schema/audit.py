"""The audit log of the current tenant."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from strawberry import relay
from strawberry.scalars import JSON
from strawberry_django.relay import DjangoListConnection

from apps.audit.models import AuditEntry


@strawberry_django.type(AuditEntry, name="AuditEntry")
class AuditEntryType(relay.Node):
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
    audit_log: DjangoListConnection[AuditEntryType] = strawberry_django.connection()
