"""The input rules every domain shares, each with one outcome wherever it applies: ranges of
days, money, text. They raise the common codes (apps/common/errors.py), which every domain's enum
holds, so a mutation shows them as its userErrors and a query as a top-level `BAD_REQUEST` with
`extensions.reason` set to the same code (schema/errors.py: `read_or_bad_request`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from apps.common.errors import CommonErrorCode as Code
from apps.common.errors import UserError
from apps.common.money import quantize

# --- ranges of days ------------------------------------------------------------------------------

MIN_DAY, MAX_DAY = date(1900, 1, 1), date(2999, 12, 31)

Day = TypeVar("Day", bound=date)


def check_day(day: Day, *, field: str, earliest: date = MIN_DAY, latest: date = MAX_DAY) -> Day:
    """A day a range starts or ends on, within the bounds the caller can answer for: BAD_RANGE."""
    if not earliest <= day <= latest:
        name = field.rsplit(".", 1)[-1]
        raise UserError(
            f"`{name}` must be within {earliest} and {latest}.", field=field, code=Code.BAD_RANGE
        )
    return day


def check_range(
    first: date,
    last: date,
    *,
    field: str | None = None,
    longest: int | None = None,
    length: int | None = None,
    unit: str = "days",
    hint: str = "",
) -> None:
    """The rule for every `from`/`to` pair: `from` after `to`, or a range longer than `longest`
    (`length` in `unit`, by default the days from `first` to `last`, both included; `hint`
    ends the message), is BAD_RANGE. `field` is where the pair sits (`filters.placed`), None for top-level arguments."""
    at = f"{field}." if field else ""
    if first > last:
        raise UserError("`from` must not be after `to`.", field=f"{at}from", code=Code.BAD_RANGE)
    length = (last - first).days + 1 if length is None else length
    if longest is not None and length > longest:
        raise UserError(
            f"A range spans at most {longest} {unit}{hint}.", field=f"{at}to", code=Code.BAD_RANGE
        )


# --- money ---------------------------------------------------------------------------------------

MAX_MONEY = Decimal("9999999999.99")  # what MoneyField holds: max_digits=12, decimal_places=2


def money(value: Decimal | None, *, field: str, required: bool = False) -> Decimal | None:
    """An amount of money given by a user, as stored (two places): REQUIRED when missing and
    `required`, INVALID when not a finite number, NEGATIVE below zero, TOO_LARGE over
    MAX_MONEY, TOO_PRECISE with more than two decimal places (trailing zeros do not count)."""
    if value is None:
        if required:
            raise UserError("An amount is required.", field=field, code=Code.REQUIRED)
        return None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise UserError("Enter an amount such as 19.99.", field=field, code=Code.INVALID)
    if value < 0:
        raise UserError("The amount cannot be negative.", field=field, code=Code.NEGATIVE)
    if value > MAX_MONEY:
        raise UserError(f"The amount is at most {MAX_MONEY}.", field=field, code=Code.TOO_LARGE)
    if quantize(value) != value:
        raise UserError("At most two decimal places.", field=field, code=Code.TOO_PRECISE)
    return quantize(value)


# --- text ----------------------------------------------------------------------------------------


def required_text(value: Any, *, field: str, max_length: int, missing: str) -> str:
    """A required line of text, stripped: REQUIRED (with the message `missing`) when empty or
    not text, TOO_LONG when longer than `max_length`."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise UserError(missing, field=field, code=Code.REQUIRED)
    return optional_text(text, field=field, max_length=max_length)


def optional_text(value: Any, *, field: str, max_length: int) -> str:
    """Text that may be blank, stripped (None is blank): INVALID when not text, TOO_LONG when
    longer than `max_length`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError("Must be text.", field=field, code=Code.INVALID)
    text = value.strip()
    if len(text) > max_length:
        raise UserError(f"At most {max_length} characters.", field=field, code=Code.TOO_LONG)
    return text
