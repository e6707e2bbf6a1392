"""Reads of orders: the filtered and sorted list, the lists merchants watch (recent, pending,
high value) and order figures over a range of days."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from apps.common.days import day_bounds
from apps.common.money import quantize
from apps.common.rules import check_range
from apps.orders.models import Order, OrderStatus

if TYPE_CHECKING:
    from tenants.models import Tenant

DEFAULT_HIGH_VALUE_THRESHOLD = Decimal("500.00")


class OrderSort(Enum):
    PLACED = "placed_at"
    TOTAL = "total"


def _sorted(orders: QuerySet[Order], sort: OrderSort, *, descending: bool) -> QuerySet[Order]:
    sign = "-" if descending else ""
    return orders.order_by(f"{sign}{sort.value}", f"{sign}id")


_NUMBER = re.compile(r"#?([0-9]{1,18})")


def orders(
    *,
    statuses: list[str] | None = None,
    customer_id: int | None = None,
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
    total_min: Decimal | None = None,
    total_max: Decimal | None = None,
    search: str | None = None,
    search_emails: bool = True,
    sort: OrderSort = OrderSort.PLACED,
    descending: bool = True,
) -> QuerySet[Order]:
    """Orders matching every filter given: `placed_from` inclusive, `placed_to` exclusive,
    totals inclusive; `search` is an order number ("1042" or "#1042") or, with
    `search_emails`, part of an email."""
    found = Order.objects.all()
    if statuses:
        found = found.filter(status__in=statuses)
    if customer_id is not None:
        found = found.filter(customer_id=customer_id)
    if placed_from is not None:
        found = found.filter(placed_at__gte=placed_from)
    if placed_to is not None:
        found = found.filter(placed_at__lt=placed_to)
    if total_min is not None:
        found = found.filter(total__gte=total_min)
    if total_max is not None:
        found = found.filter(total__lte=total_max)
    if search and search.strip():
        text = search.strip()
        matches = [Q(email__icontains=text)] if search_emails else []
        if number := _NUMBER.fullmatch(text):
            matches.append(Q(number=int(number.group(1))))
        found = found.filter(reduce(or_, matches)) if matches else found.none()
    return _sorted(found, sort, descending=descending)


def orders_with_ids(ids: list[int]) -> QuerySet[Order]:
    """The orders of `ids` that exist, in no particular order, for the caller to shape (a live
    event's order is read as the subscriber's selection asks)."""
    return Order.objects.filter(pk__in=ids)


def recent_orders() -> QuerySet[Order]:
    """Newest first."""
    return _sorted(Order.objects.all(), OrderSort.PLACED, descending=True)


def pending_orders() -> QuerySet[Order]:
    """Orders waiting for payment, the longest waiting first."""
    return _sorted(
        Order.objects.filter(status=OrderStatus.PENDING), OrderSort.PLACED, descending=False
    )


def high_value_threshold(tenant: Tenant) -> Decimal:
    """The tenant's `high_value_order_threshold` setting, or 500.00 when unset or unusable."""
    raw = (getattr(tenant, "settings", None) or {}).get("high_value_order_threshold")
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return DEFAULT_HIGH_VALUE_THRESHOLD
    return quantize(value) if value.is_finite() and value >= 0 else DEFAULT_HIGH_VALUE_THRESHOLD


def high_value_orders(*, tenant: Tenant) -> QuerySet[Order]:
    """Orders whose total reaches the tenant's threshold, cancelled ones left out, newest first."""
    found = Order.objects.filter(total__gte=high_value_threshold(tenant)).exclude(
        status=OrderStatus.CANCELLED
    )
    return _sorted(found, OrderSort.PLACED, descending=True)


@dataclass(frozen=True)
class OrderFigures:
    start: date
    end: date
    orders_count: int  # placed in the range, cancelled ones included
    by_status: dict[str, int]  # every status, zero included
    average_order_value: Decimal | None  # mean total of the orders not cancelled
    fulfilled_count: int
    average_time_to_fulfil: timedelta | None  # placed → fulfilled, over the orders fulfilled


def order_figures(*, tenant: Tenant, start: date, end: date) -> OrderFigures:
    """Figures for the orders placed from `start` to `end` (days in the tenant's time zone), in
    one aggregate query."""
    check_range(start, end)
    since, until = day_bounds(tenant, start, end)
    to_fulfil = ExpressionWrapper(F("fulfilled_at") - F("placed_at"), output_field=DurationField())
    fulfilled = Q(fulfilled_at__isnull=False)
    figures = Order.objects.filter(placed_at__gte=since, placed_at__lt=until).aggregate(
        orders_count=Count("pk"),
        average_order_value=Avg("total", filter=~Q(status=OrderStatus.CANCELLED)),
        fulfilled_count=Count("pk", filter=fulfilled),
        average_time_to_fulfil=Avg(to_fulfil, filter=fulfilled),
        **{f"status_{value}": Count("pk", filter=Q(status=value)) for value in OrderStatus.values},
    )
    average = figures["average_order_value"]
    return OrderFigures(
        start=start,
        end=end,
        orders_count=figures["orders_count"],
        by_status={value: figures[f"status_{value}"] for value in OrderStatus.values},
        average_order_value=None if average is None else quantize(average),
        fulfilled_count=figures["fulfilled_count"],
        average_time_to_fulfil=figures["average_time_to_fulfil"],
    )
