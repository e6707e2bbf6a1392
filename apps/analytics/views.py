"""`POST /api/events` on a tenant host: a batch of events from a shop's servers, authenticated by
an API key of the tenant with the `events` scope (`X-API-Key: sk_…` or `Authorization: Bearer
sk_…`), validated and stored by apps.analytics.events.

The body is a JSON array of events (`Content-Type: application/json`), reported by their
position in it, or NDJSON (`application/x-ndjson`: one event per line, blank lines skipped),
reported by their 0-based line number; a line that is not JSON is rejected on its own. At most
REST_MAX_EVENTS (10,000) events and MAX_BODY_BYTES a request (413 beyond).

200: `{accepted, rejected, errors: [{index, code, message}]}`: the accepted events are stored
(committed) when it answers. 400: a body that is not a JSON array (where it breaks is said).
401/403: no API key, a key of another tenant or without the `events` scope. 429: the caller's
rate bucket (the GraphQL one, apps/common/throttle.py) is empty: each request costs one
point per started 1,000 events."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.accounts.models import ApiKey
from apps.analytics import events
from apps.common import throttle
from tenants.errors import AuthenticationError, RequestRefused, bad_request, forbidden, not_found

if TYPE_CHECKING:
    from apps.accounts.middleware import ResolvedRequest
    from tenants.models import Tenant

# 10,000 events of ~300 bytes are ~3 MB; room for large properties. Read here, not through
# request.body, so DATA_UPLOAD_MAX_MEMORY_SIZE stays small for every other route.
MAX_BODY_BYTES = 16 * 1024 * 1024
EVENTS_PER_POINT = 1000
NDJSON = "application/x-ndjson"


class Throttled(RequestRefused):
    def __init__(self, retry_after: int):
        super().__init__(f"Throttled: retry in {retry_after} s.", status=429, code="THROTTLED")
        self.retry_after = retry_after

    def as_response(self) -> JsonResponse:
        response = super().as_response()
        response["Retry-After"] = str(self.retry_after)
        return response


def _too_large(message: str) -> RequestRefused:
    return RequestRefused(message, status=413, code="PAYLOAD_TOO_LARGE")


def _array(body: bytes) -> events.Batch:
    try:
        batch = events.decode_array(body)
    except UnicodeDecodeError as exc:
        raise bad_request(f"The body is not UTF-8 (byte {exc.start}).") from exc
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"The body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(character {exc.pos})."
        ) from exc
    except RecursionError as exc:  # json and msgspec alike: arrays in arrays thousands deep
        raise bad_request("The body is not JSON we read: it nests too deeply.") from exc
    except events.NotAnArray as exc:
        raise bad_request(
            f"The body must be a JSON array of events (or NDJSON with Content-Type {NDJSON})."
        ) from exc
    if len(batch) > events.REST_MAX_EVENTS:
        raise _too_large(f"{len(batch)} events; at most {events.REST_MAX_EVENTS} a request.")
    return batch


def _ndjson(body: bytes) -> list[tuple[int, object]]:
    lines = [(number, line) for number, line in enumerate(body.split(b"\n")) if line.strip()]
    if len(lines) > events.REST_MAX_EVENTS:
        raise _too_large(f"{len(lines)} events; at most {events.REST_MAX_EVENTS} a request.")
    items: list[tuple[int, object]] = []
    for number, line in lines:
        try:
            items.append((number, events.decode_event(line)))
        except UnicodeDecodeError as exc:
            items.append(
                (number, events.Unreadable(f"Line {number} is not UTF-8 (byte {exc.start})."))
            )
        except json.JSONDecodeError as exc:
            items.append(
                (
                    number,
                    events.Unreadable(
                        f"Line {number} is not JSON: {exc.msg} at column {exc.colno}."
                    ),
                )
            )
        except RecursionError:
            items.append((number, events.Unreadable(f"Line {number} nests too deeply.")))
    return items


def _admit(request: ResolvedRequest) -> None:
    """Raises RequestRefused unless an API key of this tenant with the `events` scope calls."""
    principal = request.principal
    if principal.api_key is None:
        if not principal.is_authenticated:
            raise AuthenticationError(
                "Send an API key with the events scope: X-API-Key or Authorization: Bearer sk_…."
            )
        raise forbidden("Events are sent with an API key (the events scope), not a user's sign-in.")
    if not principal.may(ApiKey.Scope.EVENTS):
        raise forbidden("This API key lacks the 'events' scope.")


def _body(request: ResolvedRequest) -> bytes:
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        raise _too_large(f"The body is {declared} bytes; at most {MAX_BODY_BYTES}.")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise _too_large(f"The body is over {MAX_BODY_BYTES} bytes.")
    return body


def _spend(request: ResolvedRequest, tenant: Tenant, count: int) -> None:
    bucket = throttle.bucket_key(tenant.schema_name, request.principal.credential_id)
    cost = max(1, math.ceil(count / EVENTS_PER_POINT))
    status = throttle.spend(bucket, cost)
    if status is not None and not status.allowed:  # None: Redis is down, events go in unmetered
        raise Throttled(math.ceil(status.retry_after(cost)))


@csrf_exempt
@require_POST
def track_events(request: ResolvedRequest) -> JsonResponse:
    tenant: Tenant | None = getattr(request, "tenant", None)
    if tenant is None:
        return not_found("Events are sent to the tenant's host.").as_response()
    try:
        _admit(request)
        media_type = (request.content_type or "").lower()
        if media_type not in ("application/json", NDJSON):
            raise RequestRefused(
                f"Send application/json (an array of events) or {NDJSON}.",
                status=415,
                code="UNSUPPORTED_MEDIA_TYPE",
            )
        body = _body(request)
        items = _ndjson(body) if media_type == NDJSON else _array(body)
        _spend(request, tenant, len(items))
    except RequestRefused as refused:
        return refused.as_response()
    outcome = events.ingest(tenant=tenant, events=items)
    return JsonResponse(
        {
            "accepted": outcome.accepted,
            "rejected": outcome.rejected,
            "errors": [
                {"index": r.index, "code": r.code, "message": r.message} for r in outcome.rejections
            ],
        }
    )
