"""Checks of free text given by users, shared by the services."""

from typing import Any

from apps.common.errors import UserError


def required_text(value: Any, *, field: str, max_length: int, missing: str) -> str:
    """A required line of text, stripped: REQUIRED (with the message `missing`) when empty or
    not text, TOO_LONG when longer than `max_length`."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise UserError(missing, field=field, code="REQUIRED")
    if len(text) > max_length:
        raise UserError(f"At most {max_length} characters.", field=field, code="TOO_LONG")
    return text
