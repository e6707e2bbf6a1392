"""What every resolver gets as `info.context`: the request, its tenant and its caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.types import Info

from apps.accounts.authentication import Principal


@dataclass
class Context:
    principal: Principal
    tenant: Any | None
    request: Any | None = None
    response: Any | None = None
    connection_params: dict[str, Any] | None = None


def principal(info: Info) -> Principal:
    return info.context.principal


def tenant(info: Info) -> Any | None:
    return info.context.tenant
