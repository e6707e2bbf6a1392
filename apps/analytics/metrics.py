"""The whitelist of metrics the engine answers (apps.analytics.engine): each one's name, label,
kind, the dimensions it can be broken down by, and how it is made from summed rollup columns.

A metric is a function of *parts*, sums of rollup columns over a bucket (`sales.gross`,
`product.units`, `views.events`), so derived metrics (average order value, rates) are always
computed from the summed parts of their bucket, never averaged from averages. Parts come from:
- `sales`: SalesDay (orders placed that day and not cancelled, refunds made that day on them);
  whole-shop figures, so by time or in total only, and not filtered by product or category;
- `product`: ProductDay (a product's order lines that day, its refunded lines that day);
- `views`: EventDay rows of `product_viewed` events (per product).

`check(query)` is the one validation every caller (GraphQL, widgets, reports) goes through."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from apps.analytics.errors import AnalyticsErrorCode
from apps.analytics.query import AnalyticsQuery, Dimension, Kind, Value
from apps.common.errors import UserError
from apps.common.money import ZERO, quantize

MAX_METRICS = 10
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
RATIO_PLACES = Decimal("0.0001")

PRODUCT_VIEWED = "product_viewed"  # the event type counted by `product_views`

# Sources of parts, and the columns summed from each.
SALES_COLUMNS = (
    "orders",
    "gross",
    "discounts",
    "tax",
    "shipping",
    "units",
    "refunds",
    "refund_count",
    "refunded_units",
    "new_customer_orders",
    "returning_customer_orders",
)
PRODUCT_COLUMNS = ("units", "revenue", "orders", "refunded_units", "refunds")
VIEW_COLUMNS = ("events",)
MONEY_PARTS = frozenset(
    {
        "sales.gross",
        "sales.discounts",
        "sales.tax",
        "sales.shipping",
        "sales.refunds",
        "product.revenue",
        "product.refunds",
    }
)

TOTAL_AND_TIME = frozenset({None, Dimension.TIME})
EVERY_DIMENSION = frozenset({None, Dimension.TIME, Dimension.PRODUCT, Dimension.CATEGORY})

Parts = Mapping[str, Decimal | int]


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """numerator / denominator to four places; None with nothing to divide by."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(
        RATIO_PLACES, rounding=ROUND_HALF_UP
    )


def change(now: Value, before: Value) -> Decimal | None:
    """(now - before) / before, four places; None when there is no `before` to compare with."""
    if now is None or not before:
        return None
    return ratio(Decimal(now) - Decimal(before), before)


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # what a chart's legend says
    kind: Kind
    dimensions: frozenset  # of Dimension, and None (totals only)
    description: str
    parts: tuple[str, ...]  # "<source>.<column>" sums this metric is made of
    formula: Callable[[Parts], Value] = dataclasses.field(compare=False)

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(part.split(".")[0] for part in self.parts)

    def value(self, parts: Parts) -> Value:
        """This metric from the summed parts of one bucket (missing parts are zero)."""
        answer = self.formula(parts)
        if answer is None:
            return None
        if self.kind is Kind.MONEY:
            return quantize(Decimal(answer))
        if self.kind is Kind.COUNT:
            return int(answer)
        return answer


def _sum(part: str) -> Callable[[Parts], Decimal | int]:
    zero = ZERO if part in MONEY_PARTS else 0
    return lambda parts: parts.get(part) or zero


def _plain(name: str, label: str, kind: Kind, part: str, description: str) -> Metric:
    dimensions = TOTAL_AND_TIME if part.startswith("sales.") else EVERY_DIMENSION
    return Metric(name, label, kind, dimensions, description, (part,), _sum(part))


def _get(parts: Parts, part: str) -> Decimal | int:
    return parts.get(part) or 0


_METRICS = (
    _plain(
        "gross_sales",
        "Gross sales",
        Kind.MONEY,
        "sales.gross",
        "What customers were charged: order totals (after discounts, with tax and shipping) of the orders "
        "placed, cancelled ones left out.",
    ),
    _plain(
        "discounts",
        "Discounts",
        Kind.MONEY,
        "sales.discounts",
        "Order discounts of the orders placed.",
    ),
    _plain("tax", "Tax", Kind.MONEY, "sales.tax", "Tax of the orders placed."),
    _plain(
        "shipping",
        "Shipping",
        Kind.MONEY,
        "sales.shipping",
        "Shipping charged on the orders placed.",
    ),
    _plain(
        "refunds",
        "Refunds",
        Kind.MONEY,
        "sales.refunds",
        "Money refunded, on the day of the refund, on orders that count.",
    ),
    Metric(
        "net_sales",
        "Net sales",
        Kind.MONEY,
        TOTAL_AND_TIME,
        "Gross sales less the refunds made in the same period.",
        ("sales.gross", "sales.refunds"),
        lambda p: (p.get("sales.gross") or ZERO) - (p.get("sales.refunds") or ZERO),
    ),
    _plain(
        "orders", "Orders", Kind.COUNT, "sales.orders", "Orders placed, cancelled ones left out."
    ),
    _plain(
        "units", "Units sold", Kind.COUNT, "sales.units", "Units on the lines of the orders placed."
    ),
    _plain(
        "refunded_units",
        "Units refunded",
        Kind.COUNT,
        "sales.refunded_units",
        "Units refunded, on the day of the refund.",
    ),
    _plain(
        "refund_count",
        "Refunds made",
        Kind.COUNT,
        "sales.refund_count",
        "Refunds made, on the day of the refund.",
    ),
    Metric(
        "average_order_value",
        "Average order value",
        Kind.MONEY,
        TOTAL_AND_TIME,
        "Gross sales over orders, of the same bucket; null without orders.",
        ("sales.gross", "sales.orders"),
        lambda p: (
            Decimal(p.get("sales.gross") or ZERO) / p["sales.orders"]
            if _get(p, "sales.orders")
            else None
        ),
    ),
    _plain(
        "new_customers",
        "New customers",
        Kind.COUNT,
        "sales.new_customer_orders",
        "Customers who placed their first order (that counts): their first orders.",
    ),
    _plain(
        "returning_customer_orders",
        "Returning customer orders",
        Kind.COUNT,
        "sales.returning_customer_orders",
        "Orders by customers who had ordered before.",
    ),
    Metric(
        "returning_customer_rate",
        "Returning customer rate",
        Kind.RATIO,
        TOTAL_AND_TIME,
        "Orders by returning customers over all orders by customers (new and returning).",
        ("sales.returning_customer_orders", "sales.new_customer_orders"),
        lambda p: ratio(
            _get(p, "sales.returning_customer_orders"),
            _get(p, "sales.returning_customer_orders") + _get(p, "sales.new_customer_orders"),
        ),
    ),
    _plain(
        "product_revenue",
        "Product revenue",
        Kind.MONEY,
        "product.revenue",
        "Line totals of the products sold (before order discounts, tax and shipping).",
    ),
    _plain(
        "product_units",
        "Product units sold",
        Kind.COUNT,
        "product.units",
        "Units of the products sold.",
    ),
    _plain(
        "product_orders",
        "Product orders",
        Kind.COUNT,
        "product.orders",
        "Orders with the product; by category and in totals, added up over products.",
    ),
    _plain(
        "product_refunds",
        "Product refunds",
        Kind.MONEY,
        "product.refunds",
        "Refunded line amounts of the products, on the day of the refund.",
    ),
    _plain(
        "product_refunded_units",
        "Product units refunded",
        Kind.COUNT,
        "product.refunded_units",
        "Refunded units of the products, on the day of the refund.",
    ),
    _plain(
        "product_views",
        "Product views",
        Kind.COUNT,
        "views.events",
        "`product_viewed` events of the products.",
    ),
    Metric(
        "view_to_purchase",
        "View to purchase",
        Kind.RATIO,
        EVERY_DIMENSION,
        "Product orders over product views; null without views.",
        ("product.orders", "views.events"),
        lambda p: ratio(_get(p, "product.orders"), _get(p, "views.events")),
    ),
)

METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}


def check(query: AnalyticsQuery) -> AnalyticsQuery:
    """The query, if the engine can answer it (limit defaulted for products and categories);
    a UserError naming the field otherwise."""
    if not query.metrics:
        raise UserError(
            "Ask for at least one metric.", field="metrics", code=AnalyticsErrorCode.UNKNOWN_METRIC
        )
    if len(query.metrics) > MAX_METRICS:
        raise UserError(
            f"Ask for at most {MAX_METRICS} metrics.",
            field="metrics",
            code=AnalyticsErrorCode.TOO_MANY_METRICS,
        )
    if len(set(query.metrics)) != len(query.metrics):
        raise UserError(
            "Ask for each metric once.", field="metrics", code=AnalyticsErrorCode.DUPLICATE_METRIC
        )
    unknown = [name for name in query.metrics if name not in METRICS]
    if unknown:
        raise UserError(
            f"Unknown metric: {', '.join(unknown)}.",
            field="metrics",
            code=AnalyticsErrorCode.UNKNOWN_METRIC,
        )
    query.range.check(query.granularity)
    for name in query.metrics:
        metric = METRICS[name]
        if query.dimension not in metric.dimensions:
            by = f"by {query.dimension.value}" if query.dimension else "in total"
            raise UserError(
                f"{metric.label} cannot be shown {by}.",
                field="dimension",
                code=AnalyticsErrorCode.BAD_DIMENSION,
            )
        if (query.filters.product_ids or query.filters.category_ids) and "sales" in metric.sources:
            raise UserError(
                f"{metric.label} is a whole-shop figure: it cannot be filtered by product or category; "
                "use the product metrics.",
                field="filters",
                code=AnalyticsErrorCode.BAD_FILTER,
            )
    limit = query.limit
    if query.dimension in (Dimension.PRODUCT, Dimension.CATEGORY):
        limit = DEFAULT_LIMIT if limit is None else limit
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise UserError(
            f"`limit` is 1 to {MAX_LIMIT}.", field="limit", code=AnalyticsErrorCode.BAD_LIMIT
        )
    return query if limit == query.limit else dataclasses.replace(query, limit=limit)
