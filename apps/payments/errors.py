"""The payments' userError codes: the common ones, the orders' (payments move orders through
apps.orders.services, whose errors pass on) and their own."""

from apps.common.errors import error_codes
from apps.orders.errors import OrderErrorCode

PaymentErrorCode = error_codes(
    "Payment",
    "NOT_PAYABLE",
    "ALREADY_PAID",
    "NOT_CONFIRMABLE",
    "NOT_ATTACHED",  # a payment method that is not one of this customer's
    "ATTACHED_ELSEWHERE",  # a payment method of another Stripe customer
    include=[OrderErrorCode],
)
