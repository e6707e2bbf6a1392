"""Writing audit entries. Called by every service that changes something a user asked for."""

from typing import Any

from apps.audit.models import AuditEntry
from apps.common.actors import Actor
from tenants.context import current_request_id


def record(
    *,
    actor: Actor | None,
    action: str,
    obj: Any | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """Store one entry in the current schema. `actor` is a Principal, a User or None."""
    user = getattr(actor, "user", actor)
    api_key = getattr(actor, "api_key", None)
    return AuditEntry.objects.create(
        actor_id=getattr(user, "pk", None),
        actor_email=getattr(user, "email", "") or "",
        api_key_prefix=getattr(api_key, "prefix", "") or "",
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or ""),
        changes=changes or {},
        request_id=current_request_id.get() or "",
    )
