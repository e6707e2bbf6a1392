"""The error a service raises for anything the caller can fix (the API shows it as a userError),
and the one registry of the codes it may carry.

A code is a member of a registered StrEnum, never a bare string: the common codes below are
shared by every domain (the shared rules in apps/common/rules.py raise only these), and each app
declares its domain's extra codes once, in its own errors.py:

    OrderErrorCode = error_codes("Order", "INSUFFICIENT_STOCK", "ILLEGAL_TRANSITION")

Every domain's enum holds the common codes too (and those of the domains it `include`s, when its
services pass their errors on), so the API can show any of them in that domain's GraphQL enum
(schema/errors.py). A UserError with a code the registry does not declare is refused where it is
raised, so a typo fails the first test that reaches it instead of reaching a client.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import cast


class CommonErrorCode(StrEnum):
    """The codes every domain's enum holds. A class, not an `error_codes` call, so that the mypy
    hook (mypy_plugins/error_codes.py) gives each domain these members from this source."""

    INVALID = "INVALID"  # the value is not of the expected form (and no more precise code fits)
    REQUIRED = "REQUIRED"  # missing or blank
    TOO_LONG = "TOO_LONG"  # text or list over its limit
    NOT_FOUND = "NOT_FOUND"  # no such object (or not visible to the caller)
    PERMISSION_DENIED = "PERMISSION_DENIED"  # the caller's role may not do this with this object
    DUPLICATE = "DUPLICATE"  # another object has this unique value
    NEGATIVE = "NEGATIVE"  # an amount or count below zero
    TOO_LARGE = "TOO_LARGE"  # a number over its limit (money: more than 9,999,999,999.99)
    TOO_PRECISE = "TOO_PRECISE"  # more decimal places than allowed (money: two)
    OUT_OF_RANGE = "OUT_OF_RANGE"  # a number outside its documented bounds
    BAD_RANGE = "BAD_RANGE"  # a range of days: `from` after `to`, a day out of bounds, or too long


COMMON = tuple(code.value for code in CommonErrorCode)

_REGISTERED: dict[str, type[StrEnum]] = {CommonErrorCode.__name__: CommonErrorCode}


def error_codes(domain: str, *codes: str, include: Iterable[type[StrEnum]] = ()) -> type[StrEnum]:
    """Declare a domain's codes: the common ones, those of the included domains, then its own.
    The enum is named `<domain>ErrorCode`, the name its GraphQL enum takes."""
    name = f"{domain}ErrorCode"
    assert name not in _REGISTERED, f"{name} is declared twice"
    names = dict.fromkeys(COMMON)
    for other in include:
        names.update(dict.fromkeys(member.value for member in other))
    for code in codes:
        assert code.isupper() and code.isidentifier(), code
        assert code not in COMMON and codes.count(code) == 1, f"{name}.{code} is declared twice"
        names[code] = None
    # A cast: typeshed says the functional API makes a `type[Enum]`, whichever enum class it is
    # called on. mypy_plugins/error_codes.py gives mypy each declared enum's members.
    enum = cast("type[StrEnum]", StrEnum(name, {code: code for code in names}, module=__name__))
    _REGISTERED[name] = enum
    return enum


def registered() -> dict[str, type[StrEnum]]:
    """Every declared domain, by enum name (apps declare theirs when imported)."""
    return dict(_REGISTERED)


class UserError(Exception):
    def __init__(self, message: str, *, field: str | None = None, code: StrEnum):
        # Refused with a TypeError, not an assert, so it holds under `python -O` too.
        if not (isinstance(code, StrEnum) and _REGISTERED.get(type(code).__name__) is type(code)):
            raise TypeError(
                f"A UserError's code is a member of a registered error-code enum, not {code!r}."
            )
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NotFound(UserError):
    def __init__(self, message: str = "Not found.", *, field: str | None = "id"):
        super().__init__(message, field=field, code=CommonErrorCode.NOT_FOUND)


class PermissionDenied(UserError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message, field=field, code=CommonErrorCode.PERMISSION_DENIED)
