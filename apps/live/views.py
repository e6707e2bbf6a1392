"""The live dashboard page (`/dashboard/` on tenant hosts): the reference client of the live
subscriptions. Signed-in members who may read analytics (the same session login as GraphiQL)
get a page of our own static files; it reads `analyticsOverview` over HTTP and keeps itself
current with `liveMetrics` and `orderEvents` over graphql-transport-ws."""

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from apps.accounts.middleware import ResolvedRequest
from apps.accounts.models import Role

ANALYTICS_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.STAFF, Role.ANALYST})


@require_GET
def dashboard(request: ResolvedRequest) -> HttpResponse:
    if request.tenant is None:
        return HttpResponse(
            "The dashboard is served on tenant hosts.", status=404, content_type="text/plain"
        )
    principal = request.principal
    if principal.via != "session":
        return redirect(f"/login/?next={request.path}")
    if principal.role not in ANALYTICS_ROLES:
        return HttpResponse(
            "Your role may not read analytics.", status=403, content_type="text/plain"
        )
    return render(
        request,
        "dashboard.html",
        {
            "tenant_name": request.tenant.name,
            "currency": request.tenant.currency,
            "time_zone": request.tenant.time_zone,
            "graphql_url": "/graphql/",
        },
    )
