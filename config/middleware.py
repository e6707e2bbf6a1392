"""Request id (taken from a sane `X-Request-ID` or made up, put on logs and on the response)
and one JSON access-log line per request, which carries the tenant and that id."""

import logging
import re
import time
import uuid

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
            access_log.info(
                "%s %s %s %.1f ms",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                # the tenant context is over by now: name it explicitly
                extra={"tenant": getattr(getattr(request, "tenant", None), "schema_name", None)},
            )
            return response
        finally:
            current_request_id.reset(token)
