"""Puts the caller (a Principal) on every request, after the tenant is known."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.http import HttpRequest

from apps.accounts.authentication import Principal, authenticate
from tenants.errors import RequestRefused

if TYPE_CHECKING:
    from tenants.models import Tenant


class ResolvedRequest(HttpRequest):
    """What views are handed once the middleware has run (Django makes plain requests; this class
    only names the attributes the middleware sets, for type checking)."""

    tenant: Tenant | None  # tenants.middleware: None on the platform host
    principal: Principal  # below


def resolved(request: HttpRequest) -> ResolvedRequest:
    """`request` as a ResolvedRequest, in code that frameworks hand a plain HttpRequest to (a view
    class's overridden methods) but that runs only after the middleware."""
    return cast(ResolvedRequest, request)


SESSION_TENANT_KEY = "tenant"


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class PrincipalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            request.principal = authenticate(
                tenant=request.tenant,
                authorization=request.headers.get("Authorization"),
                api_key=request.headers.get("X-API-Key"),
                session_user=request.user,
                session_tenant=request.session.get(SESSION_TENANT_KEY),
                client_ip=client_ip(request),
            )
        except RequestRefused as refused:
            return refused.as_response()
        return self.get_response(request)
