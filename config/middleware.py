"""Request id (taken from a sane `X-Request-ID` or made up, put on logs and on the response)
and one JSON access-log line per request, which carries the tenant and that id; and the answer
to a request that an outage of PostgreSQL or Redis stopped (apps.common.outages)."""

import logging
import re
import sys
import time
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from apps.common import metrics
from apps.common.outages import RETRY_AFTER_SECONDS, is_outage
from tenants.context import current_request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("shop.access")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request.id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        token = current_request_id.set(request.id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.id
            seconds = time.perf_counter() - started
            # the tenant context is over by now: name it explicitly
            tenant = getattr(getattr(request, "tenant", None), "schema_name", None)
            access_log.info(
                "%s %s %s %.1f ms",
                request.method,
                request.path,
                response.status_code,
                seconds * 1000,
                extra={"tenant": tenant},
            )
            metrics.request_answered(tenant, request.method or "", response.status_code, seconds)
            return response
        finally:
            current_request_id.reset(token)


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """handler500 of every URLconf: Django turns an exception anywhere in the middleware or the
    view into a response at the layer it was raised in, and calls this for uncaught ones. One
    that an outage of PostgreSQL or Redis caused (tenant resolution, sign-in, a view) answers 503
    with the code UNAVAILABLE and Retry-After, in the GraphQL error shape; the next request tries
    again (connections are opened per request). Anything else is our bug: a plain 500."""
    error = sys.exc_info()[1]
    if error is not None and is_outage(error):
        logging.getLogger(__name__).warning(
            "Unavailable: %s %s: %r", request.method, request.path, error
        )
        response = JsonResponse(
            {
                "errors": [
                    {
                        "message": "A service this request needs is unavailable; try again shortly.",
                        "extensions": {"code": "UNAVAILABLE"},
                    }
                ]
            },
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return defaults.server_error(request, *args, **kwargs)
