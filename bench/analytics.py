"""The metrics engine on a tenant with 1,000,000 orders: the 365-day daily series of gross and
net sales (targets: `cold_ms` < 300 with an empty cache, `warm_ms` < 20 cached), against
`direct_ms`, the same answer by a direct aggregate over the orders and refunds (asserted equal,
to the cent), and `rebuild_s`, recomputing every rollup from scratch.

    make bench NAME=analytics       (ORDERS=1000000 PRODUCTS=500 CUSTOMERS=20000 by default)

The tenant, bench-analytics, is kept between runs (seeding a million orders takes minutes) and
reused when it holds ORDERS orders; REBUILD=0 skips the rebuild. Last line: one JSON object."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.analytics import cache, engine, rollups  # noqa: E402
from apps.analytics.query import AnalyticsQuery, DateRange, Dimension, Granularity  # noqa: E402
from apps.catalog.models import Product, Variant  # noqa: E402
from apps.orders import services  # noqa: E402
from apps.orders.models import Order  # noqa: E402
from apps.provisioning.seeding import SeedSize, seed_demo  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SLUG = "bench-analytics"
SIZE = SeedSize(
    products=int(os.environ.get("PRODUCTS", "500")),
    customers=int(os.environ.get("CUSTOMERS", "20000")),
    orders=int(os.environ.get("ORDERS", "1000000")),
)
RUNS = 5
WRITES = 20


def _tenant() -> tuple[Tenant, float | None]:
    """The bench tenant with SIZE.orders orders (seeded now unless it has them already)."""
    connection.set_schema_to_public()
    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is not None:
        with tenant_context(tenant):
            if Order.objects.count() == SIZE.orders:
                return tenant, None
    else:
        tenant = provision_tenant(
            name="Bench analytics",
            slug=SLUG,
            owner_email=f"o@{SLUG}.test",
            owner_password="bench-Pass-123",
            time_zone="America/New_York",
        )
    started = time.perf_counter()
    seed_demo(tenant=tenant, size=SIZE, seed=42, reset=True)
    return tenant, time.perf_counter() - started


def _direct(span: DateRange, zone: str) -> dict[str, tuple]:
    """{day: (gross, refunds)} straight from the orders and refunds."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT day, sum(gross), sum(refunds) FROM (
                   SELECT (placed_at AT TIME ZONE %(tz)s)::date AS day, total AS gross, 0 AS refunds
                     FROM orders_order WHERE status <> 'cancelled' AND placed_at >= %(start)s AND placed_at < %(end)s
                   UNION ALL
                   SELECT (r.created AT TIME ZONE %(tz)s)::date, 0, r.amount
                     FROM orders_refund r JOIN orders_order o ON o.id = r.order_id
                    WHERE o.status <> 'cancelled' AND r.created >= %(start)s AND r.created < %(end)s) x
                WHERE day BETWEEN %(first)s AND %(last)s GROUP BY day""",
            {
                "tz": zone,
                "first": span.first,
                "last": span.last,
                "start": span.first - timedelta(days=1),
                "end": span.last + timedelta(days=2),
            },
        )
        return {
            day.isoformat(): (gross, gross - refunds) for day, gross, refunds in cursor.fetchall()
        }


def _ms(work) -> tuple[float, object]:
    started = time.perf_counter()
    answer = work()
    return (time.perf_counter() - started) * 1000, answer


def _writes(tenant: Tenant) -> tuple[float, float]:
    """(placing an order, with its rollup addition; recomputing that order's day) in ms, median
    of WRITES tries on the busy tenant, each rolled back."""
    variant = Variant.objects.filter(
        product__status=Product.Status.ACTIVE, stock__gt=WRITES
    ).first()
    placed, recomputed = [], []
    for n in range(WRITES):
        with transaction.atomic():
            elapsed, order = _ms(
                lambda n=n: services.create_order(
                    actor=None,
                    tenant=tenant,
                    email=f"bench-write-{n}@example.com",
                    lines=[services.LineRequest(variant.pk, 1)],
                )
            )
            placed.append(elapsed)
            recomputed.append(_ms(lambda order=order: rollups.touch(order))[0])
            transaction.set_rollback(True)
    return statistics.median(placed), statistics.median(recomputed)


def main() -> None:
    call_command("setup_platform", verbosity=0)
    tenant, seed_s = _tenant()
    with tenant_context(tenant):
        last = Order.objects.order_by("-placed_at").values_list("placed_at", flat=True).first()
        last_day = last.astimezone(ZoneInfo(tenant.time_zone)).date()
        span = DateRange(last_day - timedelta(days=364), last_day)
        query = AnalyticsQuery(
            metrics=("gross_sales", "net_sales"),
            range=span,
            dimension=Dimension.TIME,
            granularity=Granularity.DAY,
        )
        cold, warm = [], []
        for _ in range(RUNS):
            cache.bump()  # an empty cache: nothing is cached under a new version
            elapsed, result = _ms(lambda: engine.run(tenant, query))
            cold.append(elapsed)
            warm.append(_ms(lambda: engine.run(tenant, query))[0])
        direct_ms, direct = _ms(lambda: _direct(span, tenant.time_zone))
        served = {
            row.key: (row.values["gross_sales"], row.values["net_sales"])
            for row in result.rows
            if row.values["gross_sales"] or row.values["net_sales"]
        }
        assert served == direct, "the engine and the orders disagree"
        order_write_ms, day_recompute_ms = _writes(tenant)
        rebuild_s = None
        if os.environ.get("REBUILD", "1") != "0":
            started = time.perf_counter()
            with transaction.atomic():
                rollups.rebuild()
            rebuild_s = round(time.perf_counter() - started, 2)
    figures = {
        "bench": "analytics",
        "orders": SIZE.orders,
        "days": span.days,
        "cold_ms": round(statistics.median(cold), 1),
        "warm_ms": round(statistics.median(warm), 2),
        "direct_ms": round(direct_ms, 1),
        "rebuild_s": rebuild_s,
        # an order write keeps the rollups exact by adding to its day (O(1)); recomputing the
        # day instead (what a cancellation does) is the comparison
        "order_write_ms": round(order_write_ms, 1),
        "day_recompute_ms": round(day_recompute_ms, 1),
        "seed_s": round(seed_s, 1) if seed_s is not None else None,
    }
    print(
        f"365-day daily series on {SIZE.orders} orders: cold {figures['cold_ms']} ms, warm {figures['warm_ms']} ms, "
        f"direct {figures['direct_ms']} ms ({figures['direct_ms'] / max(figures['cold_ms'], 0.001):.0f}x cold)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
