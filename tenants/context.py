"""The tenant and request id of the work in progress, as context variables.

Middleware (HTTP and WebSocket), Celery task hooks and management code set them; asgiref copies
them into `sync_to_async` threads, so the database backend (tenants.backend) and the log filter
see the same tenant whatever thread the work lands on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

current_tenant: ContextVar[Any | None] = ContextVar("current_tenant", default=None)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


@contextlib.contextmanager
def tenant_context(tenant: Any) -> Iterator[None]:
    """Run a block as `tenant` (a Tenant, or the public FakeTenant) for DB, cache and logs."""
    token = current_tenant.set(tenant)
    try:
        yield
    finally:
        current_tenant.reset(token)


def current_schema_name() -> str | None:
    tenant = current_tenant.get()
    return getattr(tenant, "schema_name", None)
