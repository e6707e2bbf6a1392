"""A small shop for RFM, cohort and lifetime-value tests, whose figures are worked out by hand in
those tests. The tenant is set to Berlin (UTC+1 in winter, UTC+2 from 29 March 2026); the tests
look at it as of 31 March 2026. Ten customers with counted orders (c1..c10, ids ascending), one
with only a cancelled order (c11), one without orders (c12)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django_tenants.utils import tenant_context

from apps.analytics import cache
from tenants.models import Tenant
from tests.apps.customers import factories as make

AS_OF = date(2026, 3, 31)
ZONE = "Europe/Berlin"

# (total, placed at noon UTC on this day unless a datetime, refunded, status) per customer
ORDERS: dict[str, list[tuple]] = {
    "c1": [
        ("100.00", "2026-03-30"),
        ("100.00", "2026-03-01"),
        ("100.00", "2026-02-01"),
        ("100.00", "2026-01-05"),
    ],
    # 23:30 on 31 March in Berlin counts; 00:30 on 1 April there is after the day
    "c2": [
        ("50.00", datetime(2026, 3, 31, 21, 30, tzinfo=UTC)),
        ("70.00", datetime(2026, 3, 31, 22, 30, tzinfo=UTC)),
    ],
    # 00:30 on 1 March in Berlin: a March cohort
    "c3": [("80.00", "2026-03-20"), ("80.00", datetime(2026, 2, 28, 23, 30, tzinfo=UTC))],
    "c4": [
        ("300.00", day)
        for day in ("2026-03-15", "2026-02-15", "2026-01-15", "2025-12-15", "2025-11-15")
    ],
    "c5": [("40.00", "2026-02-25")],
    "c6": [("200.00", "2026-02-10"), ("200.00", "2025-10-10"), ("200.00", "2025-06-10")],
    "c7": [
        ("500.00", "2025-12-01", "100.00"),
        ("500.00", "2025-09-01"),
        ("500.00", "2025-05-01"),
        ("500.00", "2025-03-01"),
    ],
    "c8": [("30.00", "2025-11-01"), ("999.00", "2026-03-25", "0.00", "cancelled")],
    "c9": [("60.00", "2025-08-01"), ("60.00", "2025-07-01")],
    "c10": [("25.00", "2025-01-15", "25.00")],  # refunded in full: counts, spent 0
    "c11": [("700.00", "2026-03-30", "0.00", "cancelled")],
    "c12": [],
}


def _at(when) -> datetime:
    return (
        when
        if isinstance(when, datetime)
        else datetime.fromisoformat(when).replace(hour=12, tzinfo=UTC)
    )


def fresh_cache(*fixtures) -> None:
    """Cached answers outlive each test's rolled-back rows: start every test on a new version."""
    for fixture in fixtures:
        cache.bump(fixture.tenant.schema_name)


def build(fixture) -> tuple[Tenant, dict[str, int]]:
    """The shop in `fixture`'s tenant: the tenant (a fresh copy, on Berlin time) and the
    customers' ids by name."""
    Tenant.objects.filter(pk=fixture.tenant.pk).update(time_zone=ZONE)  # rolled back with the test
    ids = {}
    with tenant_context(fixture.tenant):
        for name, orders in ORDERS.items():
            buyer = make.customer(f"{name}@rfm.test", first_name=name.upper())
            ids[name] = buyer.pk
            for total, when, refunded, status in (
                order + ("0.00", "paid")[len(order) - 2 :] for order in orders
            ):
                make.order(buyer, total, _at(when), refunded=refunded, status=status)
    return Tenant.objects.get(pk=fixture.tenant.pk), ids
