"""No oversell under concurrency: 20 buyers at once for the last 5 units, each on its own
database connection, against committed data in a tenant of its own (dropped afterwards, so
nothing is left behind and the session tenants are untouched)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.catalog.models import Product, Variant
from apps.common.errors import UserError
from apps.customers.models import Customer
from apps.orders import services
from apps.orders.models import Order, OrderCounter
from tests.committed import throwaway_tenant

BUYERS = 20
UNITS = 5
SLUG = "orders-race"


@pytest.fixture
def race(tenants, django_db_blocker):
    """A committed tenant with one variant that has UNITS left. Set up before `db` opens the
    test's transaction (the test asks for `db` after this), so that other connections see it."""
    with throwaway_tenant(django_db_blocker, SLUG, "Orders race") as tenant:
        with tenant_context(tenant):
            product = Product.objects.create(
                name="Last ones", slug="last-ones", status=Product.Status.ACTIVE
            )
            variant = Variant.objects.create(
                product=product, sku="LAST", price="25.00", stock=UNITS
            )
        yield tenant, variant


def test_twenty_buyers_for_the_last_five_units(race, db, django_db_blocker):
    tenant, variant = race
    start = threading.Barrier(BUYERS)

    def buy(index: int) -> str:
        try:
            with tenant_context(tenant):
                start.wait()
                services.create_order(
                    actor=None,
                    tenant=tenant,
                    email=f"buyer{index}@example.com",
                    lines=[services.LineRequest(variant.pk, 1)],
                )
            return "ok"
        except UserError as error:
            return error.code
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=BUYERS) as pool:
        outcomes = list(pool.map(buy, range(BUYERS)))
    with tenant_context(tenant):
        stock = Variant.objects.get(pk=variant.pk).stock
        numbers = sorted(Order.objects.values_list("number", flat=True))
        last_number = OrderCounter.objects.get(pk=1).last
        buyers = Customer.objects.filter(orders_count=1).count()

    assert outcomes.count("ok") == UNITS
    assert sorted(set(outcomes)) == ["INSUFFICIENT_STOCK", "ok"]
    assert stock == 0
    assert (
        numbers == list(range(1, UNITS + 1)) and last_number == UNITS
    )  # gapless, none given twice
    assert buyers == UNITS
