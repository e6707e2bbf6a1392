"""Writes for customers. `record_order` keeps a customer's order statistics current; the order
services call it inside their own transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import F
from django.db.models.functions import Greatest, Least

from apps.customers.models import Customer


def record_order(*, customer_id: int, counted: int, spent: Decimal, placed_at: datetime | None) -> None:
    """Add `counted` orders (+1 placed, -1 cancelled) and `spent` money (negative for refunds
    and cancellations) to a customer's statistics, atomically in SQL (no read-modify-write)."""
    changes = {"orders_count": F("orders_count") + counted, "total_spent": F("total_spent") + spent}
    if placed_at is not None and counted > 0:
        changes["first_order_at"] = Least(F("first_order_at"), placed_at)
        changes["last_order_at"] = Greatest(F("last_order_at"), placed_at)
    Customer.objects.filter(pk=customer_id).update(**changes)
