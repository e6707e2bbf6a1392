"""`POST /webhooks/stripe/` on a tenant host: Stripe's signed events, verified with the tenant's
webhook signing secret, stored once and applied in one transaction (apps.payments.webhooks).

400: a bad or stale signature, or a body that is not an event (nothing written; Stripe gives up
after retries, as it should for a forgery). 500: our failure (nothing written; Stripe retries).
200: stored and applied, or stored before (a replay: nothing changes).
"""

from __future__ import annotations

import json
import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.payments import gateway, selectors, webhooks
from tenants.errors import RequestRefused, bad_request, not_found

log = logging.getLogger(__name__)
MAX_ID = 255


def _event(body: bytes) -> dict | None:
    """The event when the body is one: an object with a string id and type (and an object
    under `data`, when there is `data`)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    event_id, kind, data = event.get("id"), event.get("type"), event.get("data", {})
    if not (
        isinstance(event_id, str)
        and 0 < len(event_id) <= MAX_ID
        and isinstance(kind, str)
        and 0 < len(kind) <= 100
    ):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("object", {}), dict):
        return None
    return event


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    if getattr(request, "tenant", None) is None:
        return not_found("Stripe webhooks are received on the tenant's host.").as_response()
    secret = selectors.stripe_webhook_secret()
    body = request.body
    if not secret or not gateway.verify_signature(
        body, request.headers.get("Stripe-Signature", ""), secret
    ):
        log.warning("Stripe webhook refused: missing, bad or stale signature")
        return bad_request("Missing, bad or stale Stripe-Signature.").as_response()
    event = _event(body)
    if event is None:
        log.warning("Stripe webhook refused: the body is not an event")
        return bad_request("The body is not a Stripe event.").as_response()
    try:
        # The body verified is valid UTF-8: stored as it came, not dumped again.
        stored, created = webhooks.receive_event(event=event, payload=body.decode("utf-8"))
    except Exception:
        log.exception(
            "Stripe webhook %s (%s) failed; Stripe will retry", event["id"], event["type"]
        )
        return RequestRefused("Internal server error.", status=500, code="INTERNAL").as_response()
    log.info(
        "Stripe webhook %s (%s): %s",
        event["id"],
        event["type"],
        stored.outcome if created else "replay",
    )
    return JsonResponse({"received": True, "duplicate": not created})
