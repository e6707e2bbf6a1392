"""Product figures from orders (what sold, what was refunded), by local day in the tenant's time
zone: read from the analytics rollup ProductDay, the one definition of a product's sales."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, ExpressionWrapper, F, QuerySet, Sum
from django.db.models.functions import Coalesce

from apps.analytics.models import ProductDay
from apps.catalog.models import Category, Product, Variant
from apps.common.days import DEFAULT_RANGE_DAYS, day_bounds, local_today, range_or_default
from apps.common.money import ZERO
from apps.common.rules import check_range

if TYPE_CHECKING:
    from tenants.models import Tenant

MAX_RANGE_DAYS = 731


@dataclass(frozen=True)
class Window:
    """Whole days [first, last] in the tenant's time zone, and the UTC instants that bound them."""

    first: date
    last: date
    start: datetime
    end: datetime  # exclusive
    zone: ZoneInfo

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def window(first: date | None, last: date | None, *, tenant: Tenant) -> Window:
    """A range of days; without bounds, the last DEFAULT_RANGE_DAYS days up to today (in the
    tenant's zone). Unlike range_or_default, `from` alone means DEFAULT_RANGE_DAYS days from it
    (up to today at the latest), as the product figures have always read it."""
    if first is not None and last is None:
        last = min(local_today(tenant), first + timedelta(days=DEFAULT_RANGE_DAYS - 1))
    first, last = range_or_default(tenant, first, last)
    check_range(first, last, longest=MAX_RANGE_DAYS)
    start, end = day_bounds(tenant, first, last)
    return Window(first=first, last=last, start=start, end=end, zone=ZoneInfo(tenant.time_zone))


def _days(span: Window) -> QuerySet:
    """The products' rollup rows of the window's days (order lines of the orders placed those
    days, cancelled ones left out; refunded lines by the day of the refund)."""
    return ProductDay.objects.filter(day__gte=span.first, day__lte=span.last)


@dataclass(frozen=True)
class ProductSales:
    product: Product
    units: int
    revenue: Decimal
    orders: int


def top_selling(*, span: Window, by: str, limit: int) -> list[ProductSales]:
    """The products that sold most in the window, by "units" or "revenue" (gross, before refunds).
    Two queries: the ranking, then the products with their category, variants and images."""
    ranking = (
        _days(span)
        .values("product_id")
        # Each order falls on one day, so the per-day order counts add up.
        .annotate(units=Sum("units"), revenue=Sum("revenue"), orders=Sum("orders"))
        .filter(units__gt=0)
    )
    order = ("-units", "-revenue") if by == "units" else ("-revenue", "-units")
    rows = list(ranking.order_by(*order, "product_id")[:limit])
    found = (
        Product.objects.select_related("category")
        .prefetch_related("variants", "images")
        .in_bulk([row["product_id"] for row in rows])
    )
    return [
        ProductSales(
            product=found[row["product_id"]],
            units=row["units"],
            revenue=row["revenue"],
            orders=row["orders"],
        )
        for row in rows
        if row["product_id"] in found
    ]


@dataclass(frozen=True)
class CategorySummary:
    category: Category | None  # None: products without a category
    products: int
    stock: int
    stock_value: Decimal
    units: int
    revenue: Decimal


def categories_summary(*, span: Window) -> list[CategorySummary]:
    """Per category (its own products; parents do not include children): products, stock in
    units, stock value (stock x cost price, or x price where no cost is set) and the sales of the
    window. Five queries whatever the number of categories."""
    stock_value = ExpressionWrapper(
        F("stock") * Coalesce("cost_price", "price"),
        output_field=DecimalField(max_digits=20, decimal_places=2),
    )
    counts = dict(Product.objects.values_list("category_id").annotate(n=Count("id")).order_by())
    stock = {
        row["product__category_id"]: row
        for row in Variant.objects.values("product__category_id")
        .annotate(units=Sum("stock"), value=Sum(stock_value))
        .order_by()
    }
    sales = {
        row["product__category_id"]: row
        for row in _days(span)
        .values("product__category_id")
        .annotate(units=Sum("units"), revenue=Sum("revenue"))
        .order_by()
    }
    rows: list[tuple[int | None, Category | None]] = [
        (c.pk, c) for c in Category.objects.select_related("parent").prefetch_related("children")
    ]
    if None in counts or None in sales:
        rows.append((None, None))
    return [
        CategorySummary(
            category=category,
            products=counts.get(pk, 0),
            stock=(stock.get(pk) or {}).get("units") or 0,
            stock_value=(stock.get(pk) or {}).get("value") or ZERO,
            units=(sales.get(pk) or {}).get("units") or 0,
            revenue=(sales.get(pk) or {}).get("revenue") or ZERO,
        )
        for pk, category in rows
    ]


@dataclass(frozen=True)
class Day:
    day: date
    units: int = 0
    revenue: Decimal = ZERO
    refunded_units: int = 0
    refunds: Decimal = ZERO


@dataclass(frozen=True)
class ProductAnalytics:
    span: Window
    units: int
    revenue: Decimal
    orders: int
    refunded_units: int
    refunds: Decimal
    days: list[Day]

    @property
    def net_revenue(self) -> Decimal:
        """What the product kept: revenue less refunds."""
        return self.revenue - self.refunds


def product_analytics(*, product_id: int, span: Window) -> ProductAnalytics:
    """Units and revenue by the day the order was placed, refunds by the day they were made,
    each day of the window present (zeros included). One query."""
    rows = {row.day: row for row in _days(span).filter(product_id=product_id)}
    days = [
        Day(
            day=day,
            units=row.units,
            revenue=row.revenue,
            refunded_units=row.refunded_units,
            refunds=row.refunds,
        )
        if (row := rows.get(day))
        else Day(day=day)
        for day in span.days()
    ]
    return ProductAnalytics(
        span=span,
        units=sum(d.units for d in days),
        revenue=sum((d.revenue for d in days), ZERO),
        # Each order falls on one day, so the per-day order counts add up.
        orders=sum((row.orders for row in rows.values()), 0),
        refunded_units=sum(d.refunded_units for d in days),
        refunds=sum((d.refunds for d in days), ZERO),
        days=days,
    )
