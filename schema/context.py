"""What every resolver gets as `info.context`: the request, its tenant and its caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strawberry.types import Info

from apps.accounts.authentication import Principal
from schema.errors import bad_request

if TYPE_CHECKING:
    from tenants.models import Tenant


@dataclass
class Context:
    principal: Principal
    tenant: Tenant | None  # None on the platform host
    request: Any | None = None
    response: Any | None = None
    connection_params: dict[str, Any] | None = None
    # What one operation reads once for many objects (e.g. the RFM table for a page of customers).
    memo: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


def principal(info: Info) -> Principal:
    return info.context.principal


def tenant(info: Info) -> Tenant:
    """The tenant of a field served on tenant hosts only (schema/permissions.py refuses those
    fields elsewhere before they resolve)."""
    current = info.context.tenant
    if current is None:
        raise bad_request("This needs a tenant: use a tenant host or X-Tenant-ID.")
    return current


def tenant_or_none(info: Info) -> Tenant | None:
    """The tenant, or None on the platform host (for fields served on both)."""
    return info.context.tenant
