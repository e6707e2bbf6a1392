"""The daily sales rollups (SalesDay, ProductDay), kept exact in the transaction of every write
that changes them.

Exact by construction rather than by bookkeeping: a write does not add deltas to the rows, it
names the local days it may have changed (`touch(order)`) and those days are recomputed from the
raw rows, with the same SQL that `rebuild()` runs over all days. So a day's rollup is always
what the one definition below says of the orders and refunds committed, whatever the mix of
creates, cancellations and refunds that led there.

What a write can change: the day its order was placed, the days of its refunds, and the
new/returning split of its customer, which only moves for the first two counted orders of the
customer among (counted orders + this one) — the first order before and after the change are
both in that pair.

The two writes a shop makes most, placing an order and refunding one, take a fast path that
adds the write's own figures to its day's rows (`order_placed`, `refund_made`): O(1) whatever
the day holds, and the same figures the recompute would give (the property test in
tests/apps/analytics/test_rollups.py holds both to the raw rows). An order placed before
another counted order of its customer (an import of history) changes that one's new/returning
label on another day, so it goes the recompute way, as do cancellations.

Concurrency: a write first takes its customer's lock, then its days' locks
(`pg_advisory_xact_lock`, days in sorted order, so two writers never deadlock), and only then
reads what it decides on. A second writer of a day or of a customer waits for the first to
commit; under READ COMMITTED its statements (new snapshots) see the first one's rows, so a
recompute includes them and an addition comes on top of them. `rebuild()` locks the rollup
tables instead.

The days are local days of the zone recorded in the Rollup row (the tenant's zone when first
built); changing the tenant's zone rebuilds in the new zone (apps.provisioning.services.update_tenant)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from apps.analytics import cache
from apps.analytics.models import ProductDay, Rollup, SalesDay
from apps.orders.models import Order, OrderLine, Refund, RefundLine
from apps.orders.status import CANCELLED
from tenants.db import connection

SALES = "sales"  # the Rollup row of SalesDay and ProductDay
EPOCH = date(2000, 1, 1)
# A local day lies within [its date at 00:00 UTC - 14 h, the next date + 14 h): a window that
# lets the indexes on the timestamps find a day's rows before the exact local-day test.
REACH = timedelta(hours=15)


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _scope(column: str, windows: list[tuple[datetime, datetime]] | None) -> str:
    """The condition on a timestamp column: the local days asked for (None: every day)."""
    if windows is None:
        return "TRUE"
    coarse = " OR ".join(
        f"({column} >= %(s{i})s AND {column} < %(e{i})s)" for i in range(len(windows))
    )
    return f"({coarse}) AND ({column} AT TIME ZONE %(tz)s)::date = ANY(%(days)s::date[])"


def _statements(windows: list[tuple[datetime, datetime]] | None) -> list[str]:
    """Delete the rows of the days, then insert what the raw rows say of them (days without any
    activity get no row). The one definition of the rollups.

    The figures are a MATERIALIZED CTE: Citus planned the plain `INSERT … SELECT` over these
    joined tables as zero tasks (nothing written, no error) or refused it ("the join requires
    repartitioning"); computed first, then inserted, it is right on Citus as on PostgreSQL."""
    order, line, refund, refund_line = _t(Order), _t(OrderLine), _t(Refund), _t(RefundLine)
    sales, products = _t(SalesDay), _t(ProductDay)
    days = "TRUE" if windows is None else "day = ANY(%(days)s::date[])"
    counted = "o.status <> %(cancelled)s"
    # The customer's first counted order (by placed_at, then id) is a new customer's order.
    earlier = (
        f"EXISTS (SELECT 1 FROM {order} e WHERE e.customer_id = o.customer_id AND e.status <> %(cancelled)s"
        f" AND (e.placed_at, e.id) < (o.placed_at, o.id))"
    )
    return [
        f"DELETE FROM {sales} WHERE {days}",
        f"DELETE FROM {products} WHERE {days}",
        f"""WITH figures AS MATERIALIZED (
            SELECT day, sum(orders), sum(gross), sum(discounts), sum(tax), sum(shipping), sum(units),
                   sum(refunds), sum(refund_count), sum(refunded_units), sum(new_orders), sum(returning_orders)
              FROM (SELECT day, orders, gross, discounts, tax, shipping, units, refunds, refund_count,
                           refunded_units, (has_customer AND NOT is_returning)::int AS new_orders,
                           is_returning::int AS returning_orders
                      FROM (SELECT (o.placed_at AT TIME ZONE %(tz)s)::date AS day, 1 AS orders, o.total AS gross,
                                   o.discount_total AS discounts, o.tax_total AS tax, o.shipping_total AS shipping,
                                   (SELECT coalesce(sum(l.quantity), 0) FROM {line} l WHERE l.order_id = o.id) AS units,
                                   0 AS refunds, 0 AS refund_count, 0 AS refunded_units,
                                   o.customer_id IS NOT NULL AS has_customer,
                                   (o.customer_id IS NOT NULL AND {earlier}) AS is_returning
                              FROM {order} o WHERE {counted} AND {_scope("o.placed_at", windows)}
                            OFFSET 0) AS placed  -- OFFSET 0: the EXISTS runs once an order, not once a column
                    UNION ALL
                    SELECT (r.created AT TIME ZONE %(tz)s)::date, 0, 0, 0, 0, 0, 0, r.amount, 1,
                           (SELECT coalesce(sum(rl.quantity), 0) FROM {refund_line} rl WHERE rl.refund_id = r.id),
                           0, 0
                      FROM {refund} r JOIN {order} o ON o.id = r.order_id
                     WHERE {counted} AND {_scope("r.created", windows)}) AS x
             GROUP BY day)
            INSERT INTO {sales} (day, orders, gross, discounts, tax, shipping, units, refunds, refund_count,
                                 refunded_units, new_customer_orders, returning_customer_orders)
            SELECT * FROM figures""",
        f"""WITH figures AS MATERIALIZED (
            SELECT day, product_id, sum(units), sum(revenue), count(DISTINCT order_id), sum(refunded_units),
                   sum(refunds)
              FROM (SELECT (o.placed_at AT TIME ZONE %(tz)s)::date AS day, l.product_id, l.quantity AS units,
                           l.total AS revenue, o.id AS order_id, 0 AS refunded_units, 0 AS refunds
                      FROM {line} l JOIN {order} o ON o.id = l.order_id
                     WHERE {counted} AND l.product_id IS NOT NULL AND {_scope("o.placed_at", windows)}
                    UNION ALL
                    SELECT (r.created AT TIME ZONE %(tz)s)::date, l.product_id, 0, 0, NULL, rl.quantity, rl.amount
                      FROM {refund_line} rl JOIN {refund} r ON r.id = rl.refund_id
                      JOIN {line} l ON l.id = rl.order_line_id JOIN {order} o ON o.id = r.order_id
                     WHERE {counted} AND l.product_id IS NOT NULL AND {_scope("r.created", windows)}) AS x
             GROUP BY day, product_id)
            INSERT INTO {products} (day, product_id, units, revenue, orders, refunded_units, refunds)
            SELECT * FROM figures""",
    ]


def _zone() -> str:
    """The zone the rollups are in (the tenant's, recorded when they were first made)."""
    zone = connection.active_tenant().time_zone
    return Rollup.objects.get_or_create(name=SALES, defaults={"time_zone": zone})[0].time_zone


def _windows(days: list[date]) -> list[tuple[datetime, datetime]]:
    """Merged UTC windows that hold the local days (see REACH)."""
    merged: list[tuple[datetime, datetime]] = []
    for day in days:
        start = datetime.combine(day, time.min, UTC) - REACH
        end = datetime.combine(day + timedelta(days=1), time.min, UTC) + REACH
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def recompute(days: Iterable[date], *, zone: str | None = None) -> None:
    """Recompute the rollups of these local days from the raw rows, in the caller's transaction."""
    days = sorted(set(days))
    if not days:
        return
    zone = zone or _zone()
    windows = _windows(days)
    params: dict[str, Any] = {"tz": zone, "days": days, "cancelled": CANCELLED}
    for i, (start, end) in enumerate(windows):
        params[f"s{i}"], params[f"e{i}"] = start, end
    with connection.cursor() as cursor:
        _lock_days(cursor, days)
        for sql in _statements(windows):
            cursor.execute(sql, params)
    cache.bump_on_commit()


def touched_days(order_id: int, *, zone: str) -> list[date]:
    """The local days a write on this order may have changed: its placed day, its refunds' days,
    and the days of the first two counted orders of its customer among (counted orders + it)."""
    order = _t(Order)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT (t AT TIME ZONE %(tz)s)::date FROM (
                    SELECT placed_at AS t FROM {order} WHERE id = %(id)s
                    UNION ALL SELECT created FROM {_t(Refund)} WHERE order_id = %(id)s
                    UNION ALL (SELECT f.placed_at FROM {order} f JOIN {order} o ON o.id = %(id)s
                                WHERE f.customer_id = o.customer_id AND (f.status <> %(cancelled)s OR f.id = o.id)
                                ORDER BY f.placed_at, f.id LIMIT 2)) AS x""",
            {"tz": zone, "id": order_id, "cancelled": CANCELLED},
        )
        return [row[0] for row in cursor.fetchall()]


def _lock_days(cursor, days: list[date]) -> None:
    # Sorted, so that writers of overlapping days queue instead of deadlocking.
    cursor.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.sales_day'), d)"
        " FROM unnest(%s::int[]) AS d ORDER BY d",
        [sorted({(day - EPOCH).days for day in days})],
    )


def _lock_customer(cursor, customer_id: int | None) -> None:
    """Writes on one customer's orders queue: which of its orders is its first depends on all."""
    if customer_id is not None:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.sales_customer.' || %s))",
            [str(customer_id)],
        )


def touch(order: Order) -> None:
    """Keep the rollups exact after any write on `order` (a cancellation; anything the fast paths
    hand over): call it last in the write's transaction."""
    zone = _zone()
    with connection.cursor() as cursor:
        _lock_customer(cursor, order.customer_id)
    recompute(touched_days(order.pk, zone=zone), zone=zone)


_SALES_ADD = """
    INSERT INTO {sales} AS s (day, orders, gross, discounts, tax, shipping, units, refunds, refund_count,
                              refunded_units, new_customer_orders, returning_customer_orders)
    VALUES (%(day)s, %(orders)s, %(gross)s, %(discounts)s, %(tax)s, %(shipping)s, %(units)s, %(refunds)s,
            %(refund_count)s, %(refunded_units)s, %(new)s, %(returning)s)
    ON CONFLICT (day) DO UPDATE SET
        orders = s.orders + excluded.orders, gross = s.gross + excluded.gross,
        discounts = s.discounts + excluded.discounts, tax = s.tax + excluded.tax,
        shipping = s.shipping + excluded.shipping, units = s.units + excluded.units,
        refunds = s.refunds + excluded.refunds, refund_count = s.refund_count + excluded.refund_count,
        refunded_units = s.refunded_units + excluded.refunded_units,
        new_customer_orders = s.new_customer_orders + excluded.new_customer_orders,
        returning_customer_orders = s.returning_customer_orders + excluded.returning_customer_orders"""
_PRODUCTS_ADD = """
    WITH figures AS MATERIALIZED ({rows})
    INSERT INTO {products} AS p (day, product_id, units, revenue, orders, refunded_units, refunds)
    SELECT * FROM figures
    ON CONFLICT (day, product_id) DO UPDATE SET
        units = p.units + excluded.units, revenue = p.revenue + excluded.revenue,
        orders = p.orders + excluded.orders, refunded_units = p.refunded_units + excluded.refunded_units,
        refunds = p.refunds + excluded.refunds"""


def order_placed(order: Order) -> None:
    """After placing `order` (last in its transaction): add it to its day's rows, or recompute
    when it is not its customer's newest counted order."""
    zone = _zone()
    table = _t(Order)
    with connection.cursor() as cursor:
        _lock_customer(cursor, order.customer_id)
        cursor.execute(
            f"""SELECT (o.placed_at AT TIME ZONE %(tz)s)::date, o.status <> %(cancelled)s,
                       EXISTS (SELECT 1 FROM {table} e WHERE e.customer_id = o.customer_id
                                  AND e.status <> %(cancelled)s AND (e.placed_at, e.id) < (o.placed_at, o.id)),
                       EXISTS (SELECT 1 FROM {table} e WHERE e.customer_id = o.customer_id
                                  AND e.status <> %(cancelled)s AND (e.placed_at, e.id) > (o.placed_at, o.id))
                  FROM {table} o WHERE o.id = %(id)s""",
            {"tz": zone, "cancelled": CANCELLED, "id": order.pk},
        )
        day, counted, earlier, later = cursor.fetchone()
        if not counted or later:
            return touch(order)
        _lock_days(cursor, [day])
        cursor.execute(
            f"SELECT coalesce(sum(quantity), 0) FROM {_t(OrderLine)} WHERE order_id = %s",
            [order.pk],
        )
        units = cursor.fetchone()[0]
        has_customer = order.customer_id is not None
        cursor.execute(
            _SALES_ADD.format(sales=_t(SalesDay)),
            {
                "day": day,
                "orders": 1,
                "gross": order.total,
                "discounts": order.discount_total,
                "tax": order.tax_total,
                "shipping": order.shipping_total,
                "units": units,
                "refunds": 0,
                "refund_count": 0,
                "refunded_units": 0,
                "new": int(has_customer and not earlier),
                "returning": int(has_customer and earlier),
            },
        )
        cursor.execute(
            _PRODUCTS_ADD.format(
                products=_t(ProductDay),
                rows=f"""
            SELECT %(day)s, product_id, sum(quantity), sum(total), 1, 0, 0 FROM {_t(OrderLine)}
             WHERE order_id = %(id)s AND product_id IS NOT NULL GROUP BY product_id""",
            ),
            {"day": day, "id": order.pk},
        )
    cache.bump_on_commit()


def refund_made(refund: Refund) -> None:
    """After recording `refund` on an order that counts (last in its transaction): add it to its
    day's rows."""
    zone = _zone()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT (r.created AT TIME ZONE %(tz)s)::date, o.status <> %(cancelled)s,
                       (SELECT coalesce(sum(quantity), 0) FROM {_t(RefundLine)} WHERE refund_id = r.id)
                  FROM {_t(Refund)} r JOIN {_t(Order)} o ON o.id = r.order_id WHERE r.id = %(id)s""",
            {"tz": zone, "cancelled": CANCELLED, "id": refund.pk},
        )
        day, counted, units = cursor.fetchone()
        if not counted:
            return touch(refund.order)
        _lock_days(cursor, [day])
        cursor.execute(
            _SALES_ADD.format(sales=_t(SalesDay)),
            {
                "day": day,
                "orders": 0,
                "gross": 0,
                "discounts": 0,
                "tax": 0,
                "shipping": 0,
                "units": 0,
                "refunds": refund.amount,
                "refund_count": 1,
                "refunded_units": units,
                "new": 0,
                "returning": 0,
            },
        )
        cursor.execute(
            _PRODUCTS_ADD.format(
                products=_t(ProductDay),
                rows=f"""
            SELECT %(day)s, l.product_id, 0, 0, 0, sum(rl.quantity), sum(rl.amount)
              FROM {_t(RefundLine)} rl JOIN {_t(OrderLine)} l ON l.id = rl.order_line_id
             WHERE rl.refund_id = %(id)s AND l.product_id IS NOT NULL GROUP BY l.product_id""",
            ),
            {"day": day, "id": refund.pk},
        )
    cache.bump_on_commit()


def rebuild(*, time_zone: str | None = None) -> None:
    """Recompute every day, in `time_zone` (default: the zone the rollups are in), in the
    caller's transaction; also the event rollups when apps.analytics.events keeps them."""
    zone = time_zone or _zone()
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {_t(SalesDay)}, {_t(ProductDay)} IN EXCLUSIVE MODE")
        for sql in _statements(None):
            cursor.execute(sql, {"tz": zone, "cancelled": CANCELLED})
        cursor.execute(f"ANALYZE {_t(SalesDay)}, {_t(ProductDay)}")
    Rollup.objects.update_or_create(
        name=SALES, defaults={"time_zone": zone, "rebuilt": timezone.now()}
    )
    _rebuild_event_days()
    cache.bump_on_commit()


def _rebuild_event_days() -> None:
    """EventDay follows the tenant's zone too, when apps.analytics.events keeps it."""
    try:
        from apps.analytics.events import rebuild_event_days
    except ImportError:
        return
    rebuild_event_days()
