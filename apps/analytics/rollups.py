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

Concurrency: the days are locked (`pg_advisory_xact_lock`, in sorted order, so two writers never
deadlock) before they are recomputed; a second writer of a day waits for the first to commit,
and under READ COMMITTED its recompute (a new statement, a new snapshot) sees the first one's
rows. `rebuild()` locks the rollup tables instead.

The days are local days of the zone recorded in the Rollup row (the tenant's zone when first
built); changing the tenant's zone rebuilds in the new zone (tenants.services.update_tenant)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.analytics import cache
from apps.analytics.models import ProductDay, Rollup, SalesDay
from apps.orders.models import Order, OrderLine, Refund, RefundLine
from apps.orders.status import CANCELLED

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
    coarse = " OR ".join(f"({column} >= %(s{i})s AND {column} < %(e{i})s)" for i in range(len(windows)))
    return f"({coarse}) AND ({column} AT TIME ZONE %(tz)s)::date = ANY(%(days)s::date[])"


def _statements(windows: list[tuple[datetime, datetime]] | None) -> list[str]:
    """Delete the rows of the days, then insert what the raw rows say of them (days without any
    activity get no row). The one definition of the rollups."""
    order, line, refund, refund_line = _t(Order), _t(OrderLine), _t(Refund), _t(RefundLine)
    sales, products = _t(SalesDay), _t(ProductDay)
    days = "TRUE" if windows is None else "day = ANY(%(days)s::date[])"
    counted = "o.status <> %(cancelled)s"
    # The customer's first counted order (by placed_at, then id) is a new customer's order.
    earlier = (f"EXISTS (SELECT 1 FROM {order} e WHERE e.customer_id = o.customer_id AND e.status <> %(cancelled)s"
               f" AND (e.placed_at, e.id) < (o.placed_at, o.id))")
    return [
        f"DELETE FROM {sales} WHERE {days}",
        f"DELETE FROM {products} WHERE {days}",
        f"""INSERT INTO {sales} (day, orders, gross, discounts, tax, shipping, units, refunds, refund_count,
                                 refunded_units, new_customer_orders, returning_customer_orders)
            SELECT day, sum(orders), sum(gross), sum(discounts), sum(tax), sum(shipping), sum(units),
                   sum(refunds), sum(refund_count), sum(refunded_units), sum(new_orders), sum(returning_orders)
              FROM (SELECT (o.placed_at AT TIME ZONE %(tz)s)::date AS day, 1 AS orders, o.total AS gross,
                           o.discount_total AS discounts, o.tax_total AS tax, o.shipping_total AS shipping,
                           (SELECT coalesce(sum(l.quantity), 0) FROM {line} l WHERE l.order_id = o.id) AS units,
                           0 AS refunds, 0 AS refund_count, 0 AS refunded_units,
                           (o.customer_id IS NOT NULL AND NOT {earlier})::int AS new_orders,
                           (o.customer_id IS NOT NULL AND {earlier})::int AS returning_orders
                      FROM {order} o WHERE {counted} AND {_scope("o.placed_at", windows)}
                    UNION ALL
                    SELECT (r.created AT TIME ZONE %(tz)s)::date, 0, 0, 0, 0, 0, 0, r.amount, 1,
                           (SELECT coalesce(sum(rl.quantity), 0) FROM {refund_line} rl WHERE rl.refund_id = r.id),
                           0, 0
                      FROM {refund} r JOIN {order} o ON o.id = r.order_id
                     WHERE {counted} AND {_scope("r.created", windows)}) AS x
             GROUP BY day""",
        f"""INSERT INTO {products} (day, product_id, units, revenue, orders, refunded_units, refunds)
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
             GROUP BY day, product_id""",
    ]


def _zone() -> str:
    """The zone the rollups are in (the tenant's, recorded when they were first made)."""
    with connection.cursor():  # applies the tenant context, so connection.tenant is this tenant
        pass
    return Rollup.objects.get_or_create(name=SALES, defaults={"time_zone": connection.tenant.time_zone})[0].time_zone


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
        # Sorted, so that writers of overlapping days queue instead of deadlocking.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.sales_day'), d)"
            " FROM unnest(%s::int[]) AS d ORDER BY d",
            [[(day - EPOCH).days for day in days]],
        )
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


def touch(order: Order) -> None:
    """Keep the rollups exact after a write on `order` (its creation, a status change, a
    cancellation, a refund): call it last in the write's transaction."""
    zone = _zone()
    recompute(touched_days(order.pk, zone=zone), zone=zone)


def rebuild(*, time_zone: str | None = None) -> None:
    """Recompute every day, in `time_zone` (default: the zone the rollups are in), in the
    caller's transaction; also the event rollups when apps.analytics.events keeps them."""
    zone = time_zone or _zone()
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {_t(SalesDay)}, {_t(ProductDay)} IN EXCLUSIVE MODE")
        for sql in _statements(None):
            cursor.execute(sql, {"tz": zone, "cancelled": CANCELLED})
        cursor.execute(f"ANALYZE {_t(SalesDay)}, {_t(ProductDay)}")
    Rollup.objects.update_or_create(name=SALES, defaults={"time_zone": zone, "rebuilt": timezone.now()})
    _rebuild_event_days()
    cache.bump_on_commit()


def _rebuild_event_days() -> None:
    """EventDay follows the tenant's zone too, when apps.analytics.events keeps it."""
    try:
        from apps.analytics.events import rebuild_event_days
    except ImportError:
        return
    rebuild_event_days()
