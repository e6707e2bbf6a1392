"""Scalars and shared value types: Decimal travels as a string (strawberry's `Decimal`
scalar); money is `Money { amount currency }` in the tenant's currency."""

from __future__ import annotations

from decimal import Decimal

import strawberry


@strawberry.type
class Money:
    amount: Decimal
    currency: str


def money(amount: Decimal | None, currency: str) -> Money | None:
    return None if amount is None else Money(amount=amount, currency=currency)
