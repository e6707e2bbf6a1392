"""What each kind of export holds: its columns (name and type) and its rows, read from a
server-side cursor in chunks, so a million rows never sit in memory together. Rows are tuples of
typed values (Decimal money, aware datetimes, ints, text); the writers format them.

The caller runs `rows()` inside a transaction: a named (server-side) cursor on PostgreSQL lives
only as long as its transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import QuerySet

from apps.analytics import definitions, engine
from apps.analytics.metrics import METRICS
from apps.analytics.models import Event
from apps.analytics.query import Dimension, Kind, Result
from apps.catalog.models import Variant
from apps.customers.models import Customer
from apps.customers.privacy import masked_email, masked_phone
from apps.exports.filters import span
from apps.exports.models import Export, ExportKind
from apps.orders.models import Order, OrderLine

if TYPE_CHECKING:
    from tenants.models import Tenant

CHUNK = 5000  # rows per round trip of the server-side cursor


class Type:
    TEXT, INT, MONEY, DECIMAL, DATETIME, DATE, BOOL, JSON = (
        "text",
        "int",
        "money",
        "decimal",
        "datetime",
        "date",
        "bool",
        "json",
    )


@dataclass(frozen=True)
class Column:
    name: str
    type: str = Type.TEXT


@dataclass(frozen=True)
class Chart:
    """A chart of a report's rows: the first column labels, the others are series."""

    title: str
    line: bool  # a line over time, else bars


@dataclass(frozen=True)
class Source:
    columns: list[Column]
    count: Callable[[], int]
    rows: Callable[[], Iterable[tuple]]
    chart: Chart | None = None


def _chunks(queryset: QuerySet) -> Iterator[tuple]:
    return queryset.iterator(chunk_size=CHUNK)


# --- orders: one row per order, with its line count and units, oldest first --------------------

ORDER_COLUMNS = [
    Column("number", Type.INT),
    Column("placed_at", Type.DATETIME),
    Column("status"),
    Column("email"),
    Column("currency"),
    Column("subtotal", Type.MONEY),
    Column("discount", Type.MONEY),
    Column("tax", Type.MONEY),
    Column("shipping", Type.MONEY),
    Column("total", Type.MONEY),
    Column("refunded_total", Type.MONEY),
    Column("lines", Type.INT),
    Column("units", Type.INT),
]


def _order_filter(export: Export, zone: str) -> tuple[str, list[Any]]:
    where, params = [], []
    if (placed := span(export.filters.get("placed"), zone)) is not None:
        where.append("o.placed_at >= %s AND o.placed_at < %s")
        params += list(placed)
    if statuses := export.filters.get("statuses"):
        where.append("o.status = ANY(%s)")
        params.append(statuses)
    return (" WHERE " + " AND ".join(where)) if where else "", params


def _orders(export: Export, tenant: Tenant) -> Source:
    where, params = _order_filter(export, tenant.time_zone)
    order, line = Order._meta.db_table, OrderLine._meta.db_table
    # One statement, read through a named cursor. The lines are counted per order by a LATERAL
    # lookup on the line's order index: no aggregate over every line of the shop first.
    sql = (
        f"SELECT o.number, o.placed_at, o.status, o.email, o.currency, o.subtotal, o.discount_total, "
        f"o.tax_total, o.shipping_total, o.total, o.refunded_total, l.lines, l.units "
        f"FROM {order} o CROSS JOIN LATERAL (SELECT count(*) AS lines, COALESCE(sum(quantity), 0) AS units "
        f"FROM {line} WHERE order_id = o.id) l{where} ORDER BY o.placed_at, o.id"
    )
    redact = export.redact_contacts

    def rows() -> Iterator[tuple]:
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(CHUNK):
                if redact:
                    batch = [(*row[:3], masked_email(row[3]), *row[4:]) for row in batch]
                yield from batch

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {order} o{where}", params)
            return cursor.fetchone()[0]

    return Source(ORDER_COLUMNS, count, rows)


# --- customers, products, events -------------------------------------------------------------------

CUSTOMER_COLUMNS = [
    Column("id", Type.INT),
    Column("email"),
    Column("first_name"),
    Column("last_name"),
    Column("phone"),
    Column("orders_count", Type.INT),
    Column("total_spent", Type.MONEY),
    Column("first_order_at", Type.DATETIME),
    Column("last_order_at", Type.DATETIME),
    Column("accepts_marketing", Type.BOOL),
    Column("tags"),
    Column("created", Type.DATETIME),
]


def _customers(export: Export, tenant: Tenant) -> Source:
    queryset = Customer.objects.order_by("id")
    if tags := export.filters.get("tags"):
        queryset = queryset.filter(tags__overlap=tags)
    if (marketing := export.filters.get("acceptsMarketing")) is not None:
        queryset = queryset.filter(accepts_marketing=marketing)
    fields = (
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "orders_count",
        "total_spent",
        "first_order_at",
        "last_order_at",
        "accepts_marketing",
        "tags",
        "created",
    )
    redact = export.redact_contacts

    def rows() -> Iterator[tuple]:
        for row in _chunks(queryset.values_list(*fields)):
            email, phone = (
                (masked_email(row[1]), masked_phone(row[4])) if redact else (row[1], row[4])
            )
            yield (row[0], email, row[2], row[3], phone, *row[5:10], ";".join(row[10]), row[11])

    return Source(CUSTOMER_COLUMNS, queryset.count, rows)


PRODUCT_COLUMNS = [
    Column("product_id", Type.INT),
    Column("product"),
    Column("status"),
    Column("category"),
    Column("sku"),
    Column("variant"),
    Column("price", Type.MONEY),
    Column("compare_at_price", Type.MONEY),
    Column("stock", Type.INT),
    Column("created", Type.DATETIME),
]


def _products(export: Export, tenant: Tenant) -> Source:
    """One row per variant (what has a SKU, a price and stock), by product."""
    queryset = Variant.objects.order_by("product_id", "position", "id")
    if statuses := export.filters.get("statuses"):
        queryset = queryset.filter(product__status__in=statuses)
    fields = (
        "product_id",
        "product__name",
        "product__status",
        "product__category__name",
        "sku",
        "name",
        "price",
        "compare_at_price",
        "stock",
        "product__created",
    )

    def rows() -> Iterator[tuple]:
        for row in _chunks(queryset.values_list(*fields)):
            yield (*row[:3], row[3] or "", *row[4:])

    return Source(PRODUCT_COLUMNS, queryset.count, rows)


EVENT_COLUMNS = [
    Column("time", Type.DATETIME),
    Column("type"),
    Column("session_id"),
    Column("customer_id", Type.INT),
    Column("product_id", Type.INT),
    Column("order_id", Type.INT),
    Column("properties", Type.JSON),
]


def _events(export: Export, tenant: Tenant) -> Source:
    queryset = Event.objects.order_by("time", "id")
    if (window := span(export.filters.get("time"), tenant.time_zone)) is not None:
        queryset = queryset.filter(time__gte=window[0], time__lt=window[1])
    if types := export.filters.get("types"):
        queryset = queryset.filter(type__in=types)
    fields = ("time", "type", "session_id", "customer_id", "product_id", "order_id", "properties")
    return Source(EVENT_COLUMNS, queryset.count, lambda: _chunks(queryset.values_list(*fields)))


# --- a report: the engine's rows, with a chart ----------------------------------------------------

METRIC_TYPES = {Kind.MONEY: Type.MONEY, Kind.COUNT: Type.INT, Kind.RATIO: Type.DECIMAL}


def _report_rows(result: Result) -> list[tuple]:
    names = result.query.metrics
    if result.query.dimension is None:
        return [("Total", *(result.totals.get(name) for name in names))]
    by_day = result.query.dimension is Dimension.TIME
    return [
        (
            date.fromisoformat(row.key) if by_day else row.label,
            *(row.values.get(name) for name in names),
        )
        for row in result.rows
    ]


def _report(export: Export, tenant: Tenant) -> Source:
    stored = export.filters
    result = engine.run(
        tenant, definitions.query(stored["definition"], tenant=tenant, range=stored.get("range"))
    )
    dimension = result.query.dimension
    label = Column(
        dimension.value if dimension else "total",
        Type.DATE if dimension is Dimension.TIME else Type.TEXT,
    )
    columns = [
        label,
        *(Column(name, METRIC_TYPES[METRICS[name].kind]) for name in result.query.metrics),
    ]
    rows = _report_rows(result)
    return Source(
        columns,
        lambda: len(rows),
        lambda: rows,
        chart=Chart(title=stored.get("name") or "Report", line=dimension is Dimension.TIME),
    )


SOURCES: dict[str, Callable[[Export, Any], Source]] = {
    ExportKind.ORDERS: _orders,
    ExportKind.CUSTOMERS: _customers,
    ExportKind.PRODUCTS: _products,
    ExportKind.EVENTS: _events,
    ExportKind.REPORT: _report,
}


def source(export: Export, tenant: Tenant) -> Source:
    """What `export` holds, read in `tenant` (whose schema the connection is in)."""
    return SOURCES[export.kind](export, tenant)
