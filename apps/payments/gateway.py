"""The Stripe edge, at the bottom of the payments app: a client per call with the tenant's own
secret key (never the SDK's global `stripe.api_key`, which tenants would share), amounts in
integer minor units, the webhook signature check, the translation of Stripe's errors into what
callers read, and the lookups that ask Stripe what a call that may or may not have reached it
did. Nothing here touches the database; nothing here is called inside a transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from apps.common.errors import UserError
from apps.common.external import outside_transactions
from apps.common.retry import is_retryable
from apps.payments.errors import PaymentErrorCode
from apps.payments.models import PaymentSettings

log = logging.getLogger(__name__)

# Stripe's currencies without minor units, and with three decimals (ISO 4217 exponents).
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
# What callers read when Stripe cannot be reached or fails (the details are in the log).
PROVIDER_UNREACHABLE = "The payment provider could not be reached; try again."
PROVIDER_FAILED = "The payment provider could not complete the request."
LOOKUP_PAGE = 100


def minor_units(amount: Decimal, currency: str) -> int:
    """`amount` in the currency's smallest unit (12.34 USD → 1234, 500 JPY → 500)."""
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    units = amount.scaleb(exponent)
    if units != units.to_integral_value():
        raise UserError(
            f"{amount} {code} has more decimals than {code} allows.",
            field="amount",
            code=PaymentErrorCode.INVALID,
        )
    return int(units)


def from_minor_units(units: int, currency: str) -> Decimal:
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Decimal(units).scaleb(-exponent).quantize(Decimal("0.01"))


class _Http(stripe.RequestsClient):
    """The SDK's requests client, checking before each request that no transaction is open.
    Signatures as RequestsClient's own (which already differ from its base class's)."""

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        outside_transactions(f"Stripe {method.upper()} {url}")
        return super().request(method, url, headers, post_data)

    def request_stream(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[Any, int, Mapping[str, str]]:
        outside_transactions(f"Stripe {method.upper()} {url}")
        return super().request_stream(method, url, headers, post_data)


def client(secret_key: str) -> stripe.StripeClient:
    """A client for one tenant's account; STRIPE_API_BASE points it elsewhere (localstripe).

    A hung Stripe gives up after STRIPE_TIMEOUT_SECONDS of silence (to connect, or between bytes
    of an answer), not the SDK's 80 s. The SDK retries a network failure, 409 or 5xx twice with
    the same idempotency key, so a retry gets Stripe's first answer instead of doing the work
    again. No request may leave inside a database transaction (apps.common.external)."""
    http = _Http(timeout=settings.STRIPE_TIMEOUT_SECONDS)
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {},
        max_network_retries=2,
        http_client=http,
    )


def api_for(config: PaymentSettings, field: str) -> stripe.StripeClient:
    """The tenant's client, when Stripe is switched on (a userError on `field` otherwise)."""
    if not config.stripe_enabled:
        raise UserError(
            "Stripe payments are not enabled for this shop.",
            field=field,
            code=PaymentErrorCode.PROVIDER_DISABLED,
        )
    return client(config.stripe_secret_key)


def call(make: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A Stripe API call. What Stripe answers about the payment (a declined card, a request it
    refuses) becomes a userError in Stripe's own words, which are written for people and carry no
    secrets. A failure to reach Stripe, or one on its side, becomes one stable message: the SDK's
    text names hosts, ports and library internals, so it goes to the log only, where the request
    id (config.logging) finds it. The Stripe error stays the userError's cause, so the retry
    policy (apps.common.retry) judges it: unreachable, 5xx and 429 are worth retrying."""
    try:
        return make(*args, **kwargs)
    except stripe.AuthenticationError as exc:
        log.warning("Stripe refused the tenant's secret key (%s)", exc.http_status)
        raise UserError(
            "Stripe refused this shop's secret key.",
            field=None,
            code=PaymentErrorCode.PROVIDER_AUTH,
        ) from exc
    except (stripe.CardError, stripe.InvalidRequestError) as exc:
        log.warning("Stripe refused the request: %s %s", exc.http_status, exc.code)
        message = exc.user_message or "the request failed"
        raise UserError(
            f"Stripe: {message}", field=None, code=PaymentErrorCode.PROVIDER_ERROR
        ) from exc
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
        log.warning("Stripe could not be reached (%s): %s", type(exc).__name__, exc)
        raise UserError(
            PROVIDER_UNREACHABLE, field=None, code=PaymentErrorCode.PROVIDER_ERROR
        ) from exc
    except stripe.StripeError as exc:  # permissions of a restricted key, idempotency conflicts
        log.warning(
            "Stripe failed the request (%s, %s): %s", type(exc).__name__, exc.http_status, exc
        )
        raise UserError(PROVIDER_FAILED, field=None, code=PaymentErrorCode.PROVIDER_ERROR) from exc


def outcome_unknown(error: UserError) -> bool:
    """Whether a failed call may still have been carried out by Stripe (it could not be reached,
    or failed on its side): then the record of the call stays open, to be finished by asking
    Stripe. False for a refusal, which Stripe never carried out."""
    return is_retryable(error)


def refund_made_for(
    api: stripe.StripeClient, intent_id: str, marker: dict[str, str]
) -> dict[str, Any] | None:
    """The refund of PaymentIntent `intent_id` whose metadata carries every item of `marker`, if
    Stripe made one: how a call whose answer was lost (a crash, a timeout) is finished without a
    second refund. Stripe's idempotency keys do the same for 24 hours; this works at any age, and
    on servers that do not keep idempotency keys (localstripe)."""
    params: dict[str, Any] = {"payment_intent": intent_id, "limit": LOOKUP_PAGE}
    while True:
        page = call(api.v1.refunds.list, params=params)
        for refund in page.data:
            found = refund.to_dict()
            if all((found.get("metadata") or {}).get(k) == v for k, v in marker.items()):
                return found
        if not page.has_more or not page.data:
            return None
        params["starting_after"] = page.data[-1].id


def verify_signature(payload: bytes, header: str, secret: str) -> bool:
    """Stripe's scheme: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">`, within the tolerance."""
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), header, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return False
    return True
