"""The catalog's userError codes (the common ones come with them; see apps/common/errors.py)."""

from apps.common.errors import error_codes

ProductErrorCode = error_codes(
    "Product",
    "CYCLE",  # a category under itself or one of its subcategories
    "IN_USE",  # a category that still has subcategories
    "INVALID_IMAGE",  # not an image we read, or damaged
    "FILE_TOO_LARGE",
    "TOO_MANY_PIXELS",
    "TOO_MANY_FILES",
)
