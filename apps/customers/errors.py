"""The customers' userError codes (the common ones come with them; see apps/common/errors.py)."""

from apps.common.errors import error_codes

CustomerErrorCode = error_codes(
    "Customer",
    "HAS_ORDERS",  # a customer with orders is not deleted
)
