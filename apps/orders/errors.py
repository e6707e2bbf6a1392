"""The orders' userError codes (the common ones come with them; see apps/common/errors.py)."""

from apps.common.errors import error_codes

OrderErrorCode = error_codes(
    "Order",
    "INSUFFICIENT_STOCK",
    "NOT_FOR_SALE",  # a variant of a product that is not active
    "ILLEGAL_TRANSITION",  # the status machine (apps/orders/status.py) forbids it
    "NOT_REFUNDABLE",
    "OVER_REFUND",
    "NOTHING_TO_REFUND",
    "KEY_REUSED",  # a refund's request key used for another order
    # refundCreate and orderCancel go through apps.payments.refunds (an order paid through Stripe
    # is refunded through Stripe), so the orders' payloads can carry the codes of that path too.
    "NO_STRIPE_PAYMENT",
    "REFUND_THROUGH_STRIPE",
    "STRIPE_NOT_CONFIGURED",
    "PROVIDER_DISABLED",
    "PROVIDER_AUTH",
    "PROVIDER_ERROR",
)
