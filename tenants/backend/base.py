"""django-tenants' PostgreSQL backend that follows the tenant context variable.

A connection is shared by whatever thread or coroutine Django hands it to; the `search_path` it
last had may belong to another request. Before every cursor the connection compares the context's
scope (`tenants.context.current_scope`, new at every entry of a tenant) with the one it last
applied and, when it is another, switches to the context's tenant. Explicit
`connection.set_tenant()` / `schema_context()` inside the same scope still win, because the scope
has not changed since it was applied. (Comparing the tenant instead of the scope missed a new
entry of the same tenant after an explicit switch: the connection stayed in the switched-to schema,
e.g. public, and a later block for that tenant read the wrong schema; make test-stress seed 45337.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django_tenants.postgresql_backend import base as tenants_base

from tenants.context import current_scope, current_tenant

if TYPE_CHECKING:
    from tenants.context import SchemaTenant

DatabaseError = tenants_base.DatabaseError
IntegrityError = tenants_base.IntegrityError


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    # Set by django-tenants (which has no type hints): the schema the next query runs in, and its
    # tenant.
    schema_name: str
    tenant: SchemaTenant

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # sets the public schema, through set_tenant()
        # Nothing applied from a context yet, even if one was active when this connection was made.
        self._context_scope = None

    def set_tenant(self, tenant: SchemaTenant, include_public: bool = True) -> None:
        # An explicit switch counts as having applied the current scope: it holds until the
        # context enters a tenant again.
        self._context_scope = current_scope.get()
        super().set_tenant(tenant, include_public)

    def active_tenant(self) -> SchemaTenant:
        """The tenant the next query runs for: the context's, when it was entered since this
        connection last applied a scope (the next cursor applies it), else the connection's own."""
        tenant = current_tenant.get()
        if tenant is not None and current_scope.get() is not self._context_scope:
            return tenant
        return self.tenant

    def _cursor(self, name=None):
        tenant, scope = current_tenant.get(), current_scope.get()
        if tenant is not None and scope is not self._context_scope:
            if tenant.schema_name != self.schema_name:
                self.set_tenant(tenant)
            self._context_scope = scope
        return super()._cursor(name)
