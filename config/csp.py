"""The Content-Security-Policy header (django-csp, settings.CONTENT_SECURITY_POLICY) with
`connect-src` narrowed to the request's own host.

The middleware sits right after the security middleware, before WhiteNoise and the tenant
middleware, so the static files WhiteNoise answers, the 404 of an unknown tenant and the 400 of a
host we do not serve carry the policy too. In DEBUG, django-csp leaves 404 and 500 pages without
one, so Django's debug pages (inline script) keep working on the dev server."""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


def own_sockets(request: HttpRequest) -> list[str]:
    """WebSocket sources for the request's own host: CSP's 'self' does not cover ws:/wss: in
    every browser, and a bare `ws:` would allow any host. An https page may not open ws:// at all."""
    try:
        host = request.get_host()  # validated against ALLOWED_HOSTS: nothing can be injected
    except DisallowedHost:  # the 400 for that host is being answered: name no host
        return []
    return [f"wss://{host}"] if request.is_secure() else [f"ws://{host}", f"wss://{host}"]


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        sockets = own_sockets(request)
        if sockets:
            update = dict(parts.update or {})
            update["connect-src"] = [*update.get("connect-src", []), *sockets]
            parts.update = update
        return parts
