"""`django.db.connection` with the type it has here: tenants.backend's DatabaseWrapper, which knows
its schema and tenant. django-stubs types it as any backend's, so code that reads
`connection.schema_name` or `connection.tenant` imports `connection` from here instead."""

from typing import TYPE_CHECKING, cast

from django.db import connection as any_backend_connection

if TYPE_CHECKING:
    from tenants.backend.base import DatabaseWrapper

# The same per-thread proxy, only typed: each access still reaches the current thread's connection.
connection = cast("DatabaseWrapper", any_backend_connection)
