"""django-tenants' PostgreSQL backend that follows the tenant context variable.

A connection is shared by whatever thread or coroutine Django hands it to; the `search_path` it
last had may belong to another request. Before every cursor the connection compares the context's
scope (`tenants.context.current_scope`, new at every entry of a tenant) with the one it last
applied and, when it is another, switches to the context's tenant. Explicit
`connection.set_tenant()` / `schema_context()` inside the same scope still win, because the scope
has not changed since it was applied. (Comparing the tenant instead of the scope missed a new
entry of the same tenant after an explicit switch: the connection stayed in the switched-to schema,
e.g. public, and a later block for that tenant read the wrong schema; make test-stress seed 45337.)

When the context has left every tenant it entered, and nothing switched the connection explicitly
since, the next cursor returns the connection to the tenant it had before the first of them
(public, or what an explicit switch outside had chosen).
Without that the connection stayed in the last block's schema, and code after the block ran there:
a test's sign-in wrote its audit entry into alpha's schema (make test-stress seed 2845).
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
        # Nothing applied from a context yet, even if one was active when this connection was made.
        self._context_scope: object | None = None
        # The tenant to return to once the context has left its tenants, while one is applied.
        self._outside: SchemaTenant | None = None
        super().__init__(*args, **kwargs)  # sets the public schema, through set_tenant()
        self._context_scope, self._outside = None, None  # whatever context this was made in

    def set_tenant(self, tenant: SchemaTenant, include_public: bool = True) -> None:
        # An explicit switch counts as having applied the current scope: it holds until the
        # context enters a tenant again, and after the blocks are left (code that switches
        # restores for itself: tenant-schemas-celery puts the caller's schema back while the
        # task's block is still entered).
        self._outside = None
        self._context_scope = current_scope.get()
        super().set_tenant(tenant, include_public)

    def _remember_outside(self) -> None:
        if self._outside is None:
            self._outside = getattr(self, "tenant", None)  # None while __init__ sets the first

    def active_tenant(self) -> SchemaTenant:
        """The tenant the next query runs for: the context's, when it was entered since this
        connection last applied a scope (the next cursor applies it); the one from before the
        blocks, when they have all been left since; else the connection's own."""
        tenant = current_tenant.get()
        if current_scope.get() is not self._context_scope:
            if tenant is not None:
                return tenant
            if self._outside is not None:
                return self._outside
        return self.tenant

    def _cursor(self, name=None):
        tenant, scope = current_tenant.get(), current_scope.get()
        if scope is not self._context_scope:
            if tenant is not None:
                self._remember_outside()
                self._switch(tenant)
            elif self._outside is not None:  # every block left: back to where it was before
                self._switch(self._outside)
                self._outside = None
            self._context_scope = scope
        return super()._cursor(name)

    def _switch(self, tenant: SchemaTenant) -> None:
        if tenant.schema_name != self.schema_name:
            super().set_tenant(tenant)
