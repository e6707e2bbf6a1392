"""The metrics engine: `run(tenant, query)` answers an AnalyticsQuery from the daily rollups
(SalesDay, ProductDay, EventDay), never from the orders. The one query builder behind the
overview, widgets, reports, exports and live metrics.

An answer is made in two steps. The figures (ids and numbers only) are computed from the sums
of rollup columns per bucket and cached under the tenant's data version (apps.analytics.cache),
so a write that changes them makes the next answer fresh. Labels (product and category names)
are filled in after, outside the cache, so a rename needs no cache bump and never shows stale."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection

from apps.analytics import cache
from apps.analytics.metrics import METRICS, PRODUCT_VIEWED, Metric, change, check
from apps.analytics.models import EventDay, ProductDay, SalesDay
from apps.analytics.query import (
    AnalyticsQuery,
    DateRange,
    Dimension,
    Granularity,
    Result,
    Row,
    Value,
)
from apps.catalog.models import Category, Product
from apps.catalog.selectors import category_descendant_ids

if TYPE_CHECKING:
    from tenants.models import Tenant

UNCATEGORIZED = "Uncategorized"


@dataclass(frozen=True)
class _Source:
    table: str
    where: str  # extra condition on the rollup rows (alias s)
    per_product: bool  # rows carry a product_id (filters and product/category dimensions apply)


def _sources() -> dict[str, _Source]:
    return {
        "sales": _Source(SalesDay._meta.db_table, "", False),
        "product": _Source(ProductDay._meta.db_table, "", True),
        "views": _Source(
            EventDay._meta.db_table,
            f"s.type = '{PRODUCT_VIEWED}' AND s.product_id IS NOT NULL",
            True,
        ),
    }


@dataclass(frozen=True)
class Figures:
    """What is cached: rows as (key, values), totals, the previous period's totals, the change."""

    rows: list[tuple[str, dict[str, Value]]]
    totals: dict[str, Value]
    previous: dict[str, Value] | None
    change: dict[str, Decimal | None]


def run(tenant: Tenant, query: AnalyticsQuery) -> Result:
    """The answer to `query` in `tenant` (whose schema the connection is in)."""
    query = check(query)
    figures = cache.cached("engine", f"{tenant.time_zone}|{query.key()}", lambda: _figures(query))
    labels = _labels(query, [key for key, _ in figures.rows])
    return Result(
        query=query,
        currency=tenant.currency,
        time_zone=tenant.time_zone,
        rows=[Row(key=key, label=labels[key], values=values) for key, values in figures.rows],
        totals=figures.totals,
        previous=figures.previous,
        change=figures.change,
    )


# --- figures ------------------------------------------------------------------------------------


def _figures(query: AnalyticsQuery) -> Figures:
    metrics = [METRICS[name] for name in query.metrics]
    parts = sorted({part for metric in metrics for part in metric.parts})
    by_key = _sums(query, query.range, parts, grouped=query.dimension is not None)
    totals_parts = _sums(query, query.range, parts, grouped=False).get("", {})
    totals = _values(metrics, totals_parts)

    if query.dimension is Dimension.TIME:
        keys = [day.isoformat() for day in buckets(query.range, query.granularity)]
        rows = [(key, _values(metrics, by_key.get(key, {}))) for key in keys]
    elif query.dimension is None:
        rows = []
    else:
        first = metrics[0]
        ranked = sorted(
            ((key, _values(metrics, sums)) for key, sums in by_key.items()),
            key=lambda row: (row[1][first.name] is None, -(row[1][first.name] or 0), row[0]),
        )
        rows = ranked[: query.limit]

    previous, changes = None, {}
    if query.compare:
        previous = _values(
            metrics, _sums(query, query.range.previous(), parts, grouped=False).get("", {})
        )
        changes = {name: change(totals[name], previous[name]) for name in query.metrics}
    return Figures(rows=rows, totals=totals, previous=previous, change=changes)


def _values(metrics: list[Metric], parts: dict[str, Any]) -> dict[str, Value]:
    return {metric.name: metric.value(parts) for metric in metrics}


def _group(query: AnalyticsQuery, grouped: bool) -> str:
    """The SQL expression of a row's key (text): the bucket's first day (clipped to the range),
    the product id, the category id ('' for none)."""
    if not grouped:
        return "''"
    if query.dimension is Dimension.TIME:
        if query.granularity is Granularity.DAY:
            return "s.day::text"
        unit = "week" if query.granularity is Granularity.WEEK else "month"
        return f"greatest(date_trunc('{unit}', s.day)::date, %(first)s)::text"
    if query.dimension is Dimension.PRODUCT:
        return "s.product_id::text"
    return "coalesce(p.category_id::text, '')"


def _sums(
    query: AnalyticsQuery, span: DateRange, parts: list[str], *, grouped: bool
) -> dict[str, dict[str, Any]]:
    """{key: {part: sum}} over `span`: one statement per rollup table the parts come from."""
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    by_source: dict[str, list[str]] = defaultdict(list)
    for part in parts:
        source_name, column = part.split(".")
        by_source[source_name].append(column)
    filters = query.filters
    categories = sorted(
        {pk for root in filters.category_ids for pk in category_descendant_ids(root)}
    )
    for name, columns in by_source.items():
        source = _sources()[name]
        params: dict[str, Any] = {"first": span.first, "last": span.last}
        conditions = ["s.day BETWEEN %(first)s AND %(last)s"] + (
            [source.where] if source.where else []
        )
        join = ""
        if source.per_product:
            if filters.product_ids:
                conditions.append("s.product_id = ANY(%(products)s)")
                params["products"] = list(filters.product_ids)
            if filters.category_ids:
                conditions.append("p.category_id = ANY(%(categories)s)")
                params["categories"] = categories
            if filters.category_ids or (grouped and query.dimension is Dimension.CATEGORY):
                join = f"LEFT JOIN {Product._meta.db_table} p ON p.id = s.product_id"
        key = _group(query, grouped)
        sums = ", ".join(f"coalesce(sum(s.{column}), 0)" for column in columns)
        sql = (
            f"SELECT {key} AS key, {sums} FROM {source.table} s {join} "
            f"WHERE {' AND '.join(conditions)} GROUP BY 1"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for key_value, *values in cursor.fetchall():
                for column, value in zip(columns, values, strict=True):
                    found[key_value][f"{name}.{column}"] = value
    return found


def buckets(span: DateRange, granularity: Granularity) -> list[date]:
    """The first day of every bucket of the range, clipped to it: days, weeks from Monday,
    months from the 1st."""
    starts, day = [], span.first
    while day <= span.last:
        starts.append(day)
        if granularity is Granularity.DAY:
            day += timedelta(days=1)
        elif granularity is Granularity.WEEK:
            day += timedelta(days=7 - day.weekday())
        else:
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return starts


# --- labels -------------------------------------------------------------------------------------


def _labels(query: AnalyticsQuery, keys: list[str]) -> dict[str, str]:
    """What a chart writes for each row (one query for products or categories)."""
    if query.dimension is Dimension.TIME:
        if query.granularity is Granularity.MONTH:
            return {key: f"{date.fromisoformat(key):%b %Y}" for key in keys}
        return {key: key for key in keys}
    if query.dimension is Dimension.PRODUCT:
        names = dict(
            Product.objects.filter(pk__in=[int(k) for k in keys]).values_list("pk", "name")
        )
        return {key: names.get(int(key), f"Product {key} (deleted)") for key in keys}
    if query.dimension is Dimension.CATEGORY:
        names = dict(
            Category.objects.filter(pk__in=[int(k) for k in keys if k]).values_list("pk", "name")
        )
        return {
            key: names.get(int(key), f"Category {key} (deleted)") if key else UNCATEGORIZED
            for key in keys
        }
    return {}
