"""A tenant dropped and made again under the same schema name starts with no cached analytics:
an answer cached for the old one is never read for the new one."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django_tenants.utils import tenant_context

from apps.analytics import engine
from apps.analytics.query import AnalyticsQuery, DateRange
from apps.catalog.models import Product, Variant
from apps.orders import services
from tests.committed import throwaway_tenant

DAY = date(2025, 6, 1)
QUERY = AnalyticsQuery(metrics=("orders",), range=DateRange(DAY, DAY))


@pytest.fixture
def answers(tenants, django_db_blocker) -> tuple[int, int]:
    """Orders of DAY in a committed tenant with one order (answer cached), then in a tenant made
    again under the same name (set up before `db` opens the test's transaction)."""
    with (
        throwaway_tenant(django_db_blocker, "cache-again", "Cache again") as first,
        django_db_blocker.unblock(),
        tenant_context(first),
    ):
        product = Product.objects.create(name="Pen", slug="pen", status=Product.Status.ACTIVE)
        variant = Variant.objects.create(product=product, sku="PEN", price="2.00", stock=10)
        services.create_order(
            actor=None,
            tenant=first,
            email="a@example.com",
            placed_at=datetime(2025, 6, 1, 12, tzinfo=UTC),
            lines=[services.LineRequest(variant.pk, 1)],
        )
        before = engine.run(first, QUERY).totals["orders"]
    with (
        throwaway_tenant(django_db_blocker, "cache-again", "Cache again") as second,
        django_db_blocker.unblock(),
        tenant_context(second),
    ):
        return before, engine.run(second, QUERY).totals["orders"]


def test_a_schema_made_again_reads_no_old_answer(answers, db):
    assert answers == (1, 0)
