"""The daily rollups stay exact: after random orders, cancellations and refunds (placed through
the order services, across DST changes, in zones with odd offsets), every metric the engine
serves from them equals what the raw rows say, recomputed here in Python (local days by
zoneinfo, not by PostgreSQL), for every granularity and for ranges starting and ending on DST
days, month ends and single days."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.analytics import cache, engine, rollups
from apps.analytics.metrics import METRICS, ratio
from apps.analytics.models import ProductDay, Rollup, SalesDay
from apps.analytics.query import AnalyticsQuery, DateRange, Dimension, Granularity
from apps.common.errors import UserError
from apps.common.money import ZERO, quantize
from apps.orders import services
from apps.orders.models import Order, OrderLine, Refund, RefundLine
from apps.provisioning import services as tenant_services
from tests.apps.orders import shop

ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "UTC",
]
YEAR = 2025
SALES_METRICS = [name for name, metric in METRICS.items() if "sales" in metric.sources]
PRODUCT_METRICS = [
    "product_revenue",
    "product_units",
    "product_orders",
    "product_refunds",
    "product_refunded_units",
]


def transitions(zone: ZoneInfo) -> list[datetime]:
    """The instants (UTC) the zone's offset changes in YEAR."""
    found, at = [], datetime(YEAR, 1, 1, tzinfo=UTC)
    while at.year == YEAR:
        after = at + timedelta(minutes=30)
        if at.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            found.append(after)
        at = after
    return found


def anchors(zone: ZoneInfo) -> list[datetime]:
    """Instants near which things happen: DST changes, local midnights at month ends."""
    month_ends = [datetime(YEAR, month, 1, tzinfo=zone).astimezone(UTC) for month in (3, 4, 10, 11)]
    return transitions(zone) + month_ends


op = st.one_of(
    st.tuples(
        st.just("order"),
        st.integers(0, 3),
        st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=3),
        st.integers(0, 5),
        st.integers(-2880, 2880),
        st.booleans(),
        st.sampled_from(["0", "1.50"]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("refund"), st.integers(0, 30), st.booleans(), st.integers(0, 5000)),
)


def _local(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _expected(zone: ZoneInfo) -> tuple[dict[date, dict], dict[tuple[date, int], dict]]:
    """Per local day (and per day and product): the parts, from the raw rows, in Python."""
    sales: dict[date, dict] = defaultdict(lambda: defaultdict(lambda: 0))
    products: dict[tuple[date, int], dict] = defaultdict(lambda: defaultdict(lambda: 0))
    counted = {o.pk: o for o in Order.objects.exclude(status="cancelled")}
    first_of: dict[int, int] = {}
    for order in sorted(counted.values(), key=lambda o: (o.placed_at, o.pk)):
        if order.customer_id is not None:
            first_of.setdefault(order.customer_id, order.pk)
    for order in counted.values():
        day = sales[_local(order.placed_at, zone)]
        day["sales.orders"] += 1
        day["sales.gross"] += order.total
        day["sales.discounts"] += order.discount_total
        day["sales.tax"] += order.tax_total
        day["sales.shipping"] += order.shipping_total
        if order.customer_id is not None:
            new = first_of[order.customer_id] == order.pk
            day["sales.new_customer_orders" if new else "sales.returning_customer_orders"] += 1
    for line in OrderLine.objects.filter(order_id__in=counted):
        order = counted[line.order_id]
        sales[_local(order.placed_at, zone)]["sales.units"] += line.quantity
        row = products[(_local(order.placed_at, zone), line.product_id)]
        row["product.units"] += line.quantity
        row["product.revenue"] += line.total
        row.setdefault("orders", set()).add(order.pk)
    for refund in Refund.objects.filter(order_id__in=counted):
        day = sales[_local(refund.created, zone)]
        day["sales.refunds"] += refund.amount
        day["sales.refund_count"] += 1
    for line in RefundLine.objects.filter(refund__order_id__in=counted).select_related(
        "refund", "order_line"
    ):
        day = _local(line.refund.created, zone)
        sales[day]["sales.refunded_units"] += line.quantity
        row = products[(day, line.order_line.product_id)]
        row["product.refunded_units"] += line.quantity
        row["product.refunds"] += line.amount
    for row in products.values():
        row["product.orders"] = len(row.pop("orders", ()))
    return sales, products


def _bucket(day: date, first: date, granularity: Granularity) -> date:
    if granularity is Granularity.DAY:
        return day
    start = (
        day - timedelta(days=day.weekday())
        if granularity is Granularity.WEEK
        else day.replace(day=1)
    )
    return max(start, first)


def _metric(name: str, parts: dict) -> object:
    """The metric from parts, by its definition written out again here."""
    get = lambda part: parts.get(part, 0)  # noqa: E731
    money = lambda value: quantize(Decimal(value))  # noqa: E731
    derived = {
        "net_sales": lambda: money(get("sales.gross") - get("sales.refunds")),
        "average_order_value": lambda: (
            money(get("sales.gross") / get("sales.orders")) if get("sales.orders") else None
        ),
        "returning_customer_rate": lambda: ratio(
            get("sales.returning_customer_orders"),
            get("sales.returning_customer_orders") + get("sales.new_customer_orders"),
        ),
    }
    if name in derived:
        return derived[name]()
    (part,) = METRICS[name].parts
    return (
        money(get(part))
        if part.endswith(("gross", "discounts", "tax", "shipping", "refunds", "revenue"))
        else int(get(part))
    )


def _apply(fixture, ops, zone: ZoneInfo) -> None:
    variants = [shop.variant(price, stock=10_000) for price in ("10.00", "3.33", "99.99")]
    places = anchors(zone)
    orders: list[Order] = []
    actor = shop.actor(fixture)
    for step in ops:
        if step[0] == "order":
            _, customer, lines, anchor, minutes, paid, discount = step
            placed = places[anchor % len(places)] + timedelta(minutes=minutes)
            order = services.create_order(
                actor=actor,
                tenant=fixture.tenant,
                email=f"c{customer}@example.com",
                placed_at=placed,
                lines=[services.LineRequest(variants[v].pk, n) for v, n in lines],
                discount=Decimal(discount),
                shipping=Decimal("4.99"),
                tax_rate=Decimal("7.25"),
            )
            if paid:
                services.update_status(actor=actor, order_id=order.pk, status="paid")
            orders.append(order)
        elif orders and step[0] == "cancel":
            with contextlib.suppress(UserError):
                services.cancel_order(actor=actor, order_id=orders[step[1] % len(orders)].pk)
        elif orders and step[0] == "refund":
            _, index, partial, minutes = step
            order = Order.objects.get(pk=orders[index % len(orders)].pk)
            line = order.lines.order_by("id").first()
            try:
                if partial and line.quantity > line.refunded_quantity:
                    refund = services.create_refund(
                        actor=actor,
                        order_id=order.pk,
                        lines=[services.RefundLineRequest(line.pk, 1)],
                    )
                else:
                    refund = services.create_refund(
                        actor=actor, order_id=order.pk, amount=order.total - order.refunded_total
                    )
            except UserError:
                continue
            # Made later than the order, at a time of our choosing: as an import of old refunds
            # would, move it and recompute the day it left and the day it lands on.
            when = order.placed_at + timedelta(minutes=minutes * 17)
            Refund.objects.filter(pk=refund.pk).update(created=when)
            rollups.recompute([_local(refund.created, zone), _local(when, zone)])


def _check(zone: ZoneInfo, ranges: list[tuple[date, date]]) -> None:
    sales, products = _expected(zone)
    tenant = SimpleNamespace(time_zone=str(zone), currency="USD")
    # The rollup tables themselves, row by row.
    stored = {row.day: row for row in SalesDay.objects.all()}
    assert set(stored) == set(sales)
    for day, parts in sales.items():
        for part, value in parts.items():
            assert getattr(stored[day], part.split(".")[1]) == value, (day, part)
    assert {
        (r.day, r.product_id): (r.units, r.revenue, r.orders, r.refunded_units, r.refunds)
        for r in ProductDay.objects.all()
    } == {
        key: (
            p["product.units"],
            p["product.revenue"] or ZERO,
            p["product.orders"],
            p["product.refunded_units"],
            p["product.refunds"] or ZERO,
        )
        for key, p in products.items()
    }
    for first, last in ranges:
        for granularity in Granularity:
            buckets: dict[date, dict] = defaultdict(lambda: defaultdict(lambda: 0))
            for day, parts in sales.items():
                if first <= day <= last:
                    for part, value in parts.items():
                        buckets[_bucket(day, first, granularity)][part] += value
            for (day, _), parts in products.items():
                if first <= day <= last:
                    for part, value in parts.items():
                        buckets[_bucket(day, first, granularity)][part] += value
            for names in (SALES_METRICS[:10], SALES_METRICS[10:] + PRODUCT_METRICS):
                query = AnalyticsQuery(
                    metrics=tuple(names),
                    range=DateRange(first, last),
                    dimension=Dimension.TIME,
                    granularity=granularity,
                )
                result = engine.run(tenant, query)
                for row in result.rows:
                    for name in names:
                        assert row.values[name] == _metric(
                            name, buckets.get(date.fromisoformat(row.key), {})
                        ), (first, last, granularity, row.key, name)
                whole: dict = defaultdict(lambda: 0)
                for parts in buckets.values():
                    for part, value in parts.items():
                        whole[part] += value
                for name in names:
                    assert result.totals[name] == _metric(name, whole), (first, last, name)


def _ranges(zone: ZoneInfo, draw_days) -> list[tuple[date, date]]:
    dst = [_local(moment, zone) for moment in transitions(zone)]
    special = [*dst, date(YEAR, 3, 31), date(YEAR, 10, 31), date(YEAR, 4, 1)]
    ranges = [(day, day) for day in special[:3]]  # single days, DST days among them
    ranges += [(min(a, b), max(a, b)) for a, b in draw_days(special)]
    ranges.append((date(YEAR, 1, 1), date(YEAR, 12, 31)))
    return ranges


@pytest.fixture
def fresh_analytics(alpha):
    """Cached answers live in Redis, outside the test's transaction (which never commits, so
    no bump): start from a new version."""
    cache.bump(alpha.tenant.schema_name)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(zone=st.sampled_from(ZONES), ops=st.lists(op, min_size=1, max_size=14), data=st.data())
def test_rollups_equal_the_raw_rows(alpha, zone, ops, data):
    zone_info = ZoneInfo(zone)

    def draw_days(special):
        pick = st.sampled_from(special)
        return data.draw(st.lists(st.tuples(pick, pick), min_size=1, max_size=3))

    with tenant_context(alpha.tenant), transaction.atomic():
        cache.bump(alpha.tenant.schema_name)  # each example's data under a version of its own
        rollups.rebuild(time_zone=zone)
        _apply(alpha, ops, zone_info)
        _check(zone_info, _ranges(zone_info, draw_days))
        rollups.rebuild()  # a rebuild from scratch says the same as the writes kept
        _check(zone_info, [(date(YEAR, 1, 1), date(YEAR, 12, 31))])
        transaction.set_rollback(True)


def test_a_new_time_zone_rebuilds_the_rollups(alpha, fresh_analytics):
    with tenant_context(alpha.tenant):
        variant = shop.variant("20.00")
        # 23:30 on 1 March in London is 2 March in Sydney.
        services.create_order(
            actor=None,
            tenant=alpha.tenant,
            email="tz@example.com",
            placed_at=datetime(2025, 3, 1, 23, 30, tzinfo=UTC),
            lines=[services.LineRequest(variant.pk, 1)],
        )
        rollups.rebuild(time_zone="Europe/London")
        assert list(SalesDay.objects.values_list("day", "orders")) == [(date(2025, 3, 1), 1)]
    tenant_services.update_tenant(
        actor=None, tenant=alpha.tenant, changes={"time_zone": "Australia/Sydney"}
    )
    with tenant_context(alpha.tenant):
        assert list(SalesDay.objects.values_list("day", "orders")) == [(date(2025, 3, 2), 1)]
        assert list(ProductDay.objects.values_list("day", "units")) == [(date(2025, 3, 2), 1)]
        assert Rollup.objects.get(name=rollups.SALES).time_zone == "Australia/Sydney"
        assert connection.schema_name == alpha.tenant.schema_name
