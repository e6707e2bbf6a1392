"""Customer analytics, read from the orders (apps.orders' tables, never written here): one
customer's lifetime value, order frequency and favourite categories, all customers' figures over
a range of days, and the customers who spent most in a range.

Definitions used throughout (and by apps.analytics.lifetime, rfm and cohorts):
- an order *counts* unless it is cancelled (pending orders count: they are placed);
- what a customer *spent* on an order is its total less what was refunded of it;
- a date range is whole days in the tenant's time zone, both ends included
  (apps.customers.selectors.day_range).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from django.db import connection
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from apps.common.money import ZERO, quantize
from apps.customers.models import Customer
from apps.customers.selectors import day_range
from apps.orders.models import Order, OrderLine
from apps.orders.status import COUNTED

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from tenants.models import Tenant

DAYS_PER_MONTH = Decimal("30.436875")  # 365.2425 / 12


class PeriodFigures(TypedDict):
    """What top_customers annotates each customer with."""

    period_spent: Decimal
    period_orders: int


def top_customers(
    *, start: datetime, end: datetime
) -> QuerySet[WithAnnotations[Customer, PeriodFigures]]:
    """Customers by what they spent on the orders they placed in [start, end), biggest first;
    each is annotated with `period_spent` and `period_orders`. Only customers with such orders."""
    # One filter() call, so the annotations below aggregate over exactly these joined orders.
    queryset = Customer.objects.filter(
        orders__placed_at__gte=start, orders__placed_at__lt=end, orders__status__in=COUNTED
    ).annotate(
        period_spent=Sum(F("orders__total") - F("orders__refunded_total")),
        period_orders=Count("orders"),
    )
    return queryset.order_by(F("period_spent").desc(), "id")


def top_customers_in_range(
    *, tenant: Tenant, first: date | None, last: date | None
) -> QuerySet[WithAnnotations[Customer, PeriodFigures]]:
    """`top_customers` over the days `first` to `last` (day_range: checked, default the last 30)."""
    _, _, start, end = day_range(tenant, first, last)
    return top_customers(start=start, end=end)


# --- one customer's analytics -------------------------------------------------------------------

ANALYTICS_ORDERS = "analytics_orders"  # where the prefetch puts a customer's counted orders
ANALYTICS_LINES = "analytics_lines"  # and each order's lines


def analytics_orders() -> QuerySet[Order]:
    """Counted orders with the lines of categorised products: what customer analytics reads.
    The GraphQL Customer type prefetches this for a whole page (a fixed number of queries)."""
    lines = (
        OrderLine.objects.filter(product__category__isnull=False)
        .select_related("product__category")
        .only(
            "order_id",
            "quantity",
            "refunded_quantity",
            "total",
            "product__id",
            "product__category__id",
            "product__category__name",
            "product__category__slug",
        )
    )
    return (
        Order.objects.filter(status__in=COUNTED)
        .only("id", "customer_id", "total", "refunded_total", "placed_at")
        .prefetch_related(Prefetch("lines", queryset=lines, to_attr=ANALYTICS_LINES))
    )


def analytics_prefetch(*, empty: bool = False) -> Prefetch:
    """`empty`: prefetch nothing (no query), for callers who will not be shown analytics."""
    orders = analytics_orders()
    return Prefetch("orders", queryset=orders.none() if empty else orders, to_attr=ANALYTICS_ORDERS)


class CategoryRank(enum.Enum):
    REVENUE = "revenue"
    UNITS = "units"


@dataclass
class CategoryShare:
    category_id: int
    name: str
    slug: str
    units: int = 0
    revenue: Decimal = ZERO


@dataclass
class CustomerAnalytics:
    orders_count: int
    lifetime_value: Decimal
    average_order_value: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    # (last - first) / (orders - 1), in days; None below two orders
    mean_days_between_orders: Decimal | None
    # orders / months since the first order (at least one month); None without orders
    orders_per_month: Decimal | None
    categories: list[CategoryShare] = field(default_factory=list)

    def favourite_categories(self, *, by: CategoryRank, first: int) -> list[CategoryShare]:
        def key(share: CategoryShare):
            ranked = (
                (share.revenue, share.units)
                if by is CategoryRank.REVENUE
                else (share.units, share.revenue)
            )
            return (*ranked, share.name)

        return sorted(self.categories, key=key, reverse=True)[:first]


def _category_shares(orders: list[Order]) -> list[CategoryShare]:
    """Units kept (bought less refunded) and the revenue of those units, per category."""
    shares: dict[int, CategoryShare] = {}
    for order in orders:
        for line in getattr(order, ANALYTICS_LINES):
            kept = line.quantity - line.refunded_quantity
            if kept <= 0:
                continue
            category = line.product.category
            share = shares.setdefault(
                category.pk, CategoryShare(category.pk, category.name, category.slug)
            )
            share.units += kept
            share.revenue += quantize(line.total * kept / line.quantity)
    return list(shares.values())


def customer_analytics(customer: Customer) -> CustomerAnalytics:
    """Lifetime value, order frequency and favourite categories, from the customer's counted
    orders (prefetched by `analytics_prefetch`, else read here)."""
    orders = getattr(customer, ANALYTICS_ORDERS, None)
    if orders is None:
        orders = list(analytics_orders().filter(customer=customer))
    count = len(orders)
    lifetime = sum((order.total - order.refunded_total for order in orders), ZERO)
    if count == 0:
        return CustomerAnalytics(0, lifetime, None, None, None, None, None)
    first = min(order.placed_at for order in orders)
    last = max(order.placed_at for order in orders)
    day = Decimal(86400)
    mean_gap = None
    if count > 1:
        mean_gap = (Decimal((last - first).total_seconds()) / day / (count - 1)).quantize(
            Decimal("0.01")
        )
    months = max(
        Decimal((timezone.now() - first).total_seconds()) / day / DAYS_PER_MONTH, Decimal(1)
    )
    return CustomerAnalytics(
        orders_count=count,
        lifetime_value=lifetime,
        average_order_value=quantize(lifetime / count),
        first_order_at=first,
        last_order_at=last,
        mean_days_between_orders=mean_gap,
        orders_per_month=(count / months).quantize(Decimal("0.01")),
        categories=_category_shares(orders),
    )


# --- all customers' analytics over a range ------------------------------------------------------


@dataclass
class AnalyticsSummary:
    first: date  # the range's days, defaults filled in
    last: date
    customers: int  # customers who existed at the end of the range
    new_customers: int  # customers created in the range
    customers_with_orders: int  # customers who placed a counted order in the range
    new_buyers: int  # ... whose first counted order ever is in the range
    returning_buyers: int  # ... who had ordered before the range
    revenue: Decimal  # what customers spent on the orders they placed in the range
    buyers_to_date: int  # customers with a counted order before the end of the range
    average_lifetime_value: Decimal | None  # their mean spend on all orders before the end


_BUYERS_SQL = """
WITH buyers AS (
    SELECT customer_id,
           MIN(placed_at) AS first_at,
           BOOL_OR(placed_at >= %(start)s) AS in_range,
           COALESCE(SUM(total - refunded_total) FILTER (WHERE placed_at >= %(start)s), 0) AS spent_in_range,
           SUM(total - refunded_total) AS lifetime
    FROM {orders}
    WHERE customer_id IS NOT NULL AND status = ANY(%(counted)s) AND placed_at < %(end)s
    GROUP BY customer_id
)
SELECT COUNT(*) FILTER (WHERE in_range),
       COUNT(*) FILTER (WHERE in_range AND first_at >= %(start)s),
       COALESCE(SUM(spent_in_range), 0),
       COUNT(*),
       COALESCE(SUM(lifetime), 0)
FROM buyers
"""


def analytics_summary(*, tenant: Tenant, first: date | None, last: date | None) -> AnalyticsSummary:
    """Customer figures for the days `first` to `last` (day_range: checked, default the last 30):
    two queries, whatever the number of customers."""
    first, last, start, end = day_range(tenant, first, last)
    counts = Customer.objects.aggregate(
        customers=Count("id", filter=Q(created__lt=end)),
        new=Count("id", filter=Q(created__gte=start, created__lt=end)),
    )
    # Aggregates of per-customer aggregates, which the ORM cannot nest: one SQL statement.
    with connection.cursor() as cursor:
        cursor.execute(
            _BUYERS_SQL.format(orders=connection.ops.quote_name(Order._meta.db_table)),
            {"start": start, "end": end, "counted": list(COUNTED)},
        )
        with_orders, new_buyers, revenue, buyers, lifetime = cursor.fetchone()
    return AnalyticsSummary(
        first=first,
        last=last,
        customers=counts["customers"],
        new_customers=counts["new"],
        customers_with_orders=with_orders,
        new_buyers=new_buyers,
        returning_buyers=with_orders - new_buyers,
        revenue=quantize(revenue),
        buyers_to_date=buyers,
        average_lifetime_value=quantize(lifetime / buyers) if buyers else None,
    )
