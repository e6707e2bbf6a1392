"""`django.db.connection` with the type it has here: tenants.backend's DatabaseWrapper, which knows
its schema and tenant. django-stubs types it as any backend's, so code that reads
`connection.schema_name` or `connection.tenant` imports `connection` from here instead."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db import connection as any_backend_connection

if TYPE_CHECKING:
    from tenants.backend.base import DatabaseWrapper

# The same per-thread proxy, only typed: each access still reaches the current thread's connection.
connection = cast("DatabaseWrapper", any_backend_connection)


def create_connection(alias: str = DEFAULT_DB_ALIAS) -> DatabaseWrapper:
    """A new connection of our backend, apart from the thread's (for work that must commit on
    its own); its owner closes it."""
    return cast("DatabaseWrapper", connections.create_connection(alias))
