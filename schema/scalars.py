"""Scalars and shared value types: Decimal travels as a string (strawberry's `Decimal`
scalar); money is `Money { amount currency }` in the tenant's currency."""

from __future__ import annotations

from decimal import Decimal
from typing import overload

import strawberry


@strawberry.type
class Money:
    amount: Decimal
    currency: str


@overload
def money(amount: Decimal, currency: str) -> Money: ...
@overload
def money(amount: Decimal | None, currency: str) -> Money | None: ...
def money(amount: Decimal | None, currency: str) -> Money | None:
    return None if amount is None else Money(amount=amount, currency=currency)
