"""Rollups stay exact under concurrent writers of one day: orders placed, cancelled and refunded
at once, each thread on its own connection, in a committed tenant of its own (dropped after)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django_tenants.utils import tenant_context

from apps.analytics.models import SalesDay
from apps.catalog.models import Product, Variant
from apps.orders import services
from apps.orders.models import Order, Refund
from tests.committed import throwaway_tenant

SLUG = "rollups-race"
WHEN = datetime(2025, 6, 1, 12, tzinfo=UTC)
WRITERS = 8


@pytest.fixture
def race(tenants, django_db_blocker):
    """A committed tenant with paid orders placed on one day (set up before `db`)."""
    with throwaway_tenant(django_db_blocker, SLUG, "Rollups race") as tenant:
        with tenant_context(tenant):
            product = Product.objects.create(name="Tee", slug="tee", status=Product.Status.ACTIVE)
            variant = Variant.objects.create(product=product, sku="TEE", price="12.50", stock=1000)
            paid = []
            for n in range(WRITERS):
                order = services.create_order(
                    actor=None,
                    tenant=tenant,
                    email=f"old{n}@example.com",
                    placed_at=WHEN,
                    lines=[services.LineRequest(variant.pk, 2)],
                )
                paid.append(services.update_status(actor=None, order_id=order.pk, status="paid"))
        yield tenant, variant, paid


def test_concurrent_writers_of_one_day_leave_it_exact(race, db):
    tenant, variant, paid = race
    start = threading.Barrier(WRITERS * 2)

    def write(index: int) -> None:
        try:
            with tenant_context(tenant):
                start.wait()
                if index < WRITERS:
                    services.create_order(
                        actor=None,
                        tenant=tenant,
                        email=f"new{index}@example.com",
                        placed_at=WHEN,
                        lines=[services.LineRequest(variant.pk, 1)],
                    )
                elif index % 2:
                    services.cancel_order(actor=None, order_id=paid[index - WRITERS].pk)
                else:
                    services.create_refund(
                        actor=None, order_id=paid[index - WRITERS].pk, amount=Decimal("5.00")
                    )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WRITERS * 2) as pool:
        list(pool.map(write, range(WRITERS * 2)))
    with tenant_context(tenant):
        counted = Order.objects.exclude(status="cancelled")
        day = SalesDay.objects.get(day=WHEN.date())
        refunds = Refund.objects.filter(order__in=counted)  # made today: on today's row
        rolled = SalesDay.objects.aggregate(
            refunds=Sum("refunds"), refund_count=Sum("refund_count")
        )
        assert (day.orders, day.gross, rolled["refunds"], rolled["refund_count"]) == (
            counted.count(),
            counted.aggregate(s=Sum("total"))["s"],
            refunds.aggregate(s=Sum("amount"))["s"],
            refunds.count(),
        )
        assert day.orders == WRITERS + WRITERS // 2 and rolled["refund_count"] == WRITERS // 2
        assert day.new_customer_orders == day.orders  # every customer has one order
