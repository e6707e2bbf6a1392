"""HTTP tenant middleware: resolves the tenant, points the connection and the URL map at it."""

from django.conf import settings

from tenants.context import enter, leave
from tenants.db import connection
from tenants.errors import RequestRefused
from tenants.resolution import PUBLIC, TenantSignals, resolve_tenant

# Probes answer on any host, before a tenant is looked up.
UNTENANTED_PATHS = frozenset({"/healthz", "/readyz"})


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in UNTENANTED_PATHS:
            tenant = None
        else:
            try:
                signals = TenantSignals.from_headers(
                    request.get_host(),
                    {k.lower(): v for k, v in request.headers.items()},
                    dict(request.GET.lists()),
                )
                tenant = resolve_tenant(signals)
            except RequestRefused as refused:
                return refused.as_response()
        request.tenant = tenant
        schema_tenant = tenant or PUBLIC
        connection.set_tenant(schema_tenant)
        if tenant is None:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        entered = enter(schema_tenant)
        try:
            return self.get_response(request)
        finally:
            leave(entered)
            connection.set_schema_to_public()  # the thread's next user starts from public
