"""django-tenants' PostgreSQL backend that follows the tenant context variable.

A connection is shared by whatever thread or coroutine Django hands it to; the `search_path` it
last had may belong to another request. Before every cursor the connection compares the tenant in
`tenants.context.current_tenant` with the one it last applied from the context and switches when
they differ. Explicit `connection.set_tenant()` / `schema_context()` inside the same context still
win, because the context value has not changed since it was applied.
"""

from django_tenants.postgresql_backend import base as tenants_base

from tenants.context import current_tenant

DatabaseError = tenants_base.DatabaseError
IntegrityError = tenants_base.IntegrityError


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # sets the public schema, through set_tenant()
        # Nothing applied from a context yet, even if one was active when this connection was made.
        self._context_tenant = None

    def set_tenant(self, tenant, include_public=True):
        # An explicit switch counts as having applied the current context: it holds until the
        # context variable changes.
        self._context_tenant = current_tenant.get()
        super().set_tenant(tenant, include_public)

    def active_tenant(self):
        """The tenant the next query runs for: the context's, when it changed since this
        connection last applied it (the next cursor applies it), else the connection's own."""
        tenant = current_tenant.get()
        if tenant is not None and tenant is not self._context_tenant:
            return tenant
        return self.tenant

    def _cursor(self, name=None):
        tenant = current_tenant.get()
        if tenant is not None and tenant is not self._context_tenant:
            if tenant.schema_name != self.schema_name:
                self.set_tenant(tenant)
            self._context_tenant = tenant
        return super()._cursor(name)
