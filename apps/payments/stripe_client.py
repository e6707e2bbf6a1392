"""The Stripe edge: one StripeClient per call with the tenant's own secret key (never the SDK's
global `stripe.api_key`, which tenants would share), amounts in integer minor units, and the
webhook signature check."""

from __future__ import annotations

from decimal import Decimal

import stripe
from django.conf import settings

from apps.common.errors import UserError
from apps.payments.errors import PaymentErrorCode

# Stripe's currencies without minor units, and with three decimals (ISO 4217 exponents).
ZERO_DECIMAL = frozenset(
    ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def minor_units(amount: Decimal, currency: str) -> int:
    """`amount` in the currency's smallest unit (12.34 USD → 1234, 500 JPY → 500)."""
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    units = amount.scaleb(exponent)
    if units != units.to_integral_value():
        raise UserError(f"{amount} {code} has more decimals than {code} allows.", field="amount", code=PaymentErrorCode.INVALID)
    return int(units)


def from_minor_units(units: int, currency: str) -> Decimal:
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Decimal(units).scaleb(-exponent).quantize(Decimal("0.01"))


def client(secret_key: str) -> stripe.StripeClient:
    """A client for one tenant's account; STRIPE_API_BASE points it elsewhere (localstripe).

    A hung Stripe gives up after STRIPE_TIMEOUT_SECONDS of silence (to connect, or between bytes
    of an answer), not the SDK's 80 s, since the caller may hold an order's lock meanwhile. The
    SDK retries a network failure, 409 or 5xx twice with the same idempotency key, so a retry
    gets Stripe's first answer instead of doing the work again."""
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {}
    http = stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
    return stripe.StripeClient(secret_key, base_addresses=base, max_network_retries=2, http_client=http)


def verify_signature(payload: bytes, header: str, secret: str) -> bool:
    """Stripe's scheme: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">`, within the tolerance."""
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), header, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return False
    return True
