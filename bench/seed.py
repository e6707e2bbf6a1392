"""Seeding speed: `seed_demo` of 500 products, 5,000 customers and 100,000 orders into a fresh
tenant (target: under 60 s), and where the time goes.

    make bench NAME=seed            (ORDERS=100000 PRODUCTS=500 CUSTOMERS=5000 by default)

The tenant it makes, bench-seed, is dropped at the end. Last line: one JSON object. The phases:
prepare (locks, checks), generate (Python and numpy: the rows drawn as arrays), load (PostgreSQL
COPY, primary keys and unique indexes kept up), write (Python: the COPY text, written in batches
while COPY reads it, so its time is taken out of load), keys (secondary indexes built and
foreign keys checked after the load), derive (customer statistics, counters and the analytics
rollups in SQL, ANALYZE), commit. `python_s` is generate + write, `database_s` the rest.
`copy_baseline_s` is, in the same run, a bare COPY of as many rows into a temporary table without
indexes or keys: what moving the bytes alone costs here.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.provisioning.seeding import SeedSize, seed_demo  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SLUG = "bench-seed"
OWNER = f"o@{SLUG}.test"
SIZE = SeedSize(
    products=int(os.environ.get("PRODUCTS", "500")),
    customers=int(os.environ.get("CUSTOMERS", "5000")),
    orders=int(os.environ.get("ORDERS", "100000")),
)


def _drop() -> None:
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(slug=SLUG):
        tenant.delete(force_drop=True)
    User.objects.filter(email=OWNER).delete()


def _copy_baseline(rows: int) -> float:
    """Seconds to COPY `rows` rows of about an order line's width into a bare temporary table."""
    text = "".join(f"{n}\t{n}\tSKU-{n:08d}\tClassic Tee\t19.99\t2\t39.98\n" for n in range(rows))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_copy (a bigint, b bigint, c text, d text, e numeric, "
            "f int, g numeric) ON COMMIT DROP"
        )
        started = time.perf_counter()
        cursor.copy_expert("COPY bench_copy FROM STDIN", io.StringIO(text))
        return time.perf_counter() - started


def main() -> None:
    call_command("setup_platform", verbosity=0)  # every schema current, the template included
    _drop()
    try:
        tenant = provision_tenant(
            name="Bench seed",
            slug=SLUG,
            owner_email=OWNER,
            owner_password="bench-Pass-123",
            time_zone="America/New_York",
        )
        started = time.perf_counter()
        result = seed_demo(tenant=tenant, size=SIZE, seed=42)
        elapsed = time.perf_counter() - started
    finally:
        _drop()
    rows = sum(result.rows.values())
    python = result.seconds["generate"] + result.seconds["write"]
    baseline = _copy_baseline(rows)
    print(
        f"seeded {SIZE.orders} orders ({rows} rows) in {elapsed:.1f} s: "
        + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in result.seconds.items())
    )
    print("rows: " + ", ".join(f"{table} {count}" for table, count in result.rows.items()))
    print(f"a bare COPY of {rows} rows into a table without indexes or keys: {baseline:.1f} s")
    print(
        json.dumps(
            {
                "bench": "seed",
                f"seed_{SIZE.orders // 1000}k_orders_s": round(elapsed, 2),
                **{f"{phase}_s": seconds for phase, seconds in result.seconds.items()},
                "python_s": round(python, 2),
                "database_s": round(sum(result.seconds.values()) - python, 2),
                "copy_baseline_s": round(baseline, 2),
                "seed_to_copy_ratio": round(elapsed / baseline, 1),
                "rows_written_count": rows,
                "orders_count": result.rows["orders_order"],
                "rows_per_s": round(rows / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
