"""`POST /webhooks/stripe/` on a tenant host: Stripe's signed events, verified with the tenant's
webhook signing secret, stored once and applied (apps.payments.webhooks.deliver).

400: a bad or stale signature, or a body that is not an event (nothing written; Stripe gives up
after retries, as it should for a forgery). 500: our failure (nothing written; Stripe retries).
200: stored and applied, or stored before (a replay: nothing changes).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.payments import webhooks
from tenants.errors import RequestRefused, bad_request, not_found

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    if getattr(request, "tenant", None) is None:
        return not_found("Stripe webhooks are received on the tenant's host.").as_response()
    try:
        stored, created = webhooks.deliver(
            body=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except webhooks.Refused as refused:
        log.warning("Stripe webhook refused: %s", refused)
        return bad_request(str(refused)).as_response()
    except Exception:
        log.exception("Stripe webhook failed; Stripe will retry")
        return RequestRefused("Internal server error.", status=500, code="INTERNAL").as_response()
    log.info(
        "Stripe webhook %s (%s): %s",
        stored.event_id,
        stored.type,
        stored.outcome if created else "replay",
    )
    return JsonResponse({"received": True, "duplicate": not created})
