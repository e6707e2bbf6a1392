"""What every resolver gets as `info.context`: the request, its tenant and its caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    # What one operation reads once for many objects (e.g. the RFM table for a page of customers).
    memo: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


def principal(info: Info) -> Principal:
    return info.context.principal


def tenant(info: Info) -> Any | None:
    return info.context.tenant
