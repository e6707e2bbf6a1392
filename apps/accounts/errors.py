"""The accounts' userError codes (the common ones come with them; see apps/common/errors.py)."""

from apps.common.errors import error_codes

AccountErrorCode = error_codes(
    "Account",
    "INVALID_CREDENTIALS",
    "INVALID_TOKEN",
    "EXPIRED",
    "WEAK_PASSWORD",
    "LAST_OWNER",
)
