"""`analytics(query)`: any whitelisted metrics by time, product or category over a range of days
in the tenant's time zone, with the previous period and chart-ready series, all through the one
metrics engine (apps.analytics.engine); and `analyticsCacheStats`."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

import strawberry
from strawberry.types import Info

from apps.analytics import cache, engine
from apps.analytics.metrics import METRICS
from apps.analytics.query import (
    AnalyticsQuery,
    DateRange,
    Dimension,
    Filters,
    Granularity,
    Kind,
    Result,
)
from apps.catalog import selectors as catalog
from apps.catalog.models import Category, Product
from schema.catalog.types import CategoryType, ProductType
from schema.context import tenant
from schema.errors import read_or_bad_request
from schema.ids import pk_of
from schema.types import as_type

if TYPE_CHECKING:  # its members are made from the metrics' registry: mypy knows it as an enum
    AnalyticsMetric = enum.Enum
else:
    AnalyticsMetric = strawberry.enum(
        enum.Enum("AnalyticsMetric", {name.upper(): name for name in METRICS}),
        name="AnalyticsMetric",
        description="The metrics the engine answers. "
        + " ".join(f"{name.upper()}: {metric.description}" for name, metric in METRICS.items()),
    )
# strawberry.enum() marks the engine's own enums and hands them back: the GraphQL names are aliases.
strawberry.enum(
    Dimension,
    name="AnalyticsDimension",
    description="TIME: buckets of the granularity; PRODUCT, CATEGORY: top items.",
)
strawberry.enum(
    Granularity,
    name="AnalyticsGranularity",
    description="Weeks start on Monday; a bucket is labelled by its first day.",
)
strawberry.enum(
    Kind,
    name="MetricKind",
    description="MONEY: the tenant's currency, two places; COUNT; RATIO: 0 to 1, four places.",
)
AnalyticsDimension: TypeAlias = Dimension
AnalyticsGranularity: TypeAlias = Granularity
MetricKind: TypeAlias = Kind


@strawberry.input
class AnalyticsFiltersInput:
    product_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    category_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="A category includes its subcategories."
    )


@strawberry.input
class AnalyticsQueryInput:
    metrics: list[AnalyticsMetric] = strawberry.field(
        description="One to ten; PRODUCT and CATEGORY rows are ranked by the first."
    )
    from_: date = strawberry.field(name="from", description="First day (tenant's time zone).")
    to: date = strawberry.field(description="Last day, included.")
    dimension: AnalyticsDimension | None = strawberry.field(
        default=None, description="None: totals only."
    )
    granularity: AnalyticsGranularity = Granularity.DAY
    filters: AnalyticsFiltersInput | None = None
    compare: bool = strawberry.field(
        default=False, description="Also the previous period of the same length."
    )
    limit: int | None = strawberry.field(
        default=None, description="PRODUCT and CATEGORY: top 1 to 100 (default 10)."
    )


@strawberry.type
class MetricValue:
    metric: AnalyticsMetric
    kind: MetricKind
    value: Decimal | None = strawberry.field(
        description="Null where there is nothing to divide by."
    )


@strawberry.type
class AnalyticsRow:
    key: str = strawberry.field(
        description="The bucket's first day (ISO), the product or category database id, "
        "'' for products without a category."
    )
    label: str
    values: list[MetricValue]
    product: ProductType | None = strawberry.field(
        description="PRODUCT rows: the product (if not deleted)."
    )
    category: CategoryType | None = strawberry.field(description="CATEGORY rows: the category.")


@strawberry.type
class AnalyticsDataset:
    metric: AnalyticsMetric
    label: str
    data: list[Decimal | None]


@strawberry.type(description="Chart-ready: one label per row, one dataset per metric.")
class AnalyticsSeries:
    labels: list[str]
    datasets: list[AnalyticsDataset]


@strawberry.type
class AnalyticsResult:
    rows: list[AnalyticsRow]
    totals: list[MetricValue]
    previous: list[MetricValue] | None = strawberry.field(
        description="Totals of the previous period (compare)."
    )
    change: list[MetricValue] | None = strawberry.field(
        description="(now - before) / before, as RATIO values; null where before is zero."
    )
    series: AnalyticsSeries
    currency: str
    time_zone: str


@strawberry.type
class AnalyticsCacheStats:
    hits: int
    misses: int
    version: int = strawberry.field(
        description="The tenant's data version; every change of a figure raises it."
    )


def _values(values: dict, *, kind: Kind | None = None) -> list[MetricValue]:
    return [
        MetricValue(
            metric=AnalyticsMetric(name),
            kind=kind or METRICS[name].kind,
            value=None if value is None else Decimal(value),
        )
        for name, value in values.items()
    ]


def _query(given: AnalyticsQueryInput, info: Info) -> AnalyticsQuery:
    filters = given.filters or AnalyticsFiltersInput()
    return AnalyticsQuery(
        metrics=tuple(metric.value for metric in given.metrics),
        range=DateRange(given.from_, given.to),
        dimension=Dimension(given.dimension.value) if given.dimension else None,
        granularity=Granularity(given.granularity.value),
        filters=Filters(
            product_ids=tuple(pk_of(g, "Product", info) for g in filters.product_ids),
            category_ids=tuple(pk_of(g, "Category", info) for g in filters.category_ids),
        ),
        compare=given.compare,
        limit=given.limit,
    )


def result_of(result: Result) -> AnalyticsResult:
    """The engine's answer as the API shows it (also for widgets and reports), with the rows' products
    or categories in one query."""
    ids = [int(row.key) for row in result.rows if row.key.isdigit()]  # time rows have dates
    products: dict[int, Product] = {}
    categories: dict[int, Category] = {}
    if result.query.dimension is Dimension.PRODUCT:
        products = catalog.products_by_id(ids)
    elif result.query.dimension is Dimension.CATEGORY:
        categories = catalog.categories_by_id(ids)
    series = result.series
    return AnalyticsResult(
        rows=[
            AnalyticsRow(
                key=row.key,
                label=row.label,
                values=_values(row.values),
                product=as_type(
                    ProductType, products.get(int(row.key)) if products and row.key else None
                ),
                category=as_type(
                    CategoryType, categories.get(int(row.key)) if categories and row.key else None
                ),
            )
            for row in result.rows
        ],
        totals=_values(result.totals),
        previous=_values(result.previous) if result.previous is not None else None,
        change=_values(result.change, kind=Kind.RATIO) if result.query.compare else None,
        series=AnalyticsSeries(
            labels=series.labels,
            datasets=[
                AnalyticsDataset(
                    metric=AnalyticsMetric(d.metric),
                    label=d.label,
                    data=[None if v is None else Decimal(v) for v in d.data],
                )
                for d in series.datasets
            ],
        ),
        currency=result.currency,
        time_zone=result.time_zone,
    )


@strawberry.type
class Query:
    @strawberry.field(
        description="Metrics by time, product or category over a range of days (tenant's time zone)."
    )
    def analytics(self, info: Info, query: AnalyticsQueryInput) -> AnalyticsResult:
        current = tenant(info)
        result = read_or_bad_request(lambda: engine.run(current, _query(query, info)))
        return result_of(result)

    @strawberry.field(
        description="How often analytics answers came from the cache, in this tenant."
    )
    def analytics_cache_stats(self, info: Info) -> AnalyticsCacheStats:
        tenant(info)
        return AnalyticsCacheStats(**cache.stats(), version=cache.version())


__all__ = ["AnalyticsResult", "Query", "result_of"]
