"""The tenant and request id of the work in progress, as context variables.

Middleware (HTTP and WebSocket), Celery task hooks and management code set them; asgiref copies
them into `sync_to_async` threads, so the database backend (tenants.backend) and the log filter
see the same tenant whatever thread the work lands on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django_tenants.postgresql_backend.base import FakeTenant

    from tenants.models import Tenant

# What a connection's search_path belongs to: a tenant, or a FakeTenant (django-tenants' holder of
# a bare schema name) for public and for schemas entered by name.
SchemaTenant: TypeAlias = "Tenant | FakeTenant"

current_tenant: ContextVar[SchemaTenant | None] = ContextVar("current_tenant", default=None)
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
# A new object each time a tenant is entered: how the database backend tells a new entry of the
# same tenant (to apply again) from the entry it already applied (where an explicit switch wins).
current_scope: ContextVar[object | None] = ContextVar("current_scope", default=None)

Entered = tuple[Token, Token]


def enter(tenant: SchemaTenant) -> Entered:
    """Make `tenant` (a Tenant, or the public FakeTenant) the context's tenant, in a scope of its
    own; hand what this returns to `leave`."""
    return current_tenant.set(tenant), current_scope.set(object())


def leave(entered: Entered) -> None:
    tenant_token, scope_token = entered
    current_scope.reset(scope_token)
    current_tenant.reset(tenant_token)


@contextlib.contextmanager
def tenant_context(tenant: SchemaTenant) -> Iterator[None]:
    """Run a block as `tenant` (a Tenant, or the public FakeTenant) for DB, cache and logs."""
    entered = enter(tenant)
    try:
        yield
    finally:
        leave(entered)


def current_schema_name() -> str | None:
    tenant = current_tenant.get()
    return getattr(tenant, "schema_name", None)
