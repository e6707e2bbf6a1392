"""Catalog edits that move figures between products and categories make the next analytics
answer fresh: a product moved to another category, a category deleted, a product deleted."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django_tenants.utils import tenant_context

from apps.analytics import engine
from apps.analytics.query import AnalyticsQuery, DateRange, Dimension
from apps.catalog import services as catalog
from apps.catalog.models import Category
from apps.orders import services as orders
from tests.apps.orders import shop

DAY = date(2025, 6, 3)
BY_CATEGORY = AnalyticsQuery(
    metrics=("product_revenue",), range=DateRange(DAY, DAY), dimension=Dimension.CATEGORY
)
BY_PRODUCT = AnalyticsQuery(
    metrics=("product_revenue",), range=DateRange(DAY, DAY), dimension=Dimension.PRODUCT
)


def _by_key(result) -> dict[str, str]:
    return {row.key: str(row.values["product_revenue"]) for row in result.rows}


@pytest.fixture
def sold(alpha, django_capture_on_commit_callbacks):
    """A 30.00 sale of a product in category "Tea"; on-commit work (the cache bump) runs."""
    with tenant_context(alpha.tenant), django_capture_on_commit_callbacks(execute=True):
        tea = Category.objects.create(name="Tea", slug="tea")
        variant = shop.variant("15.00", stock=10)
        variant.product.category = tea
        variant.product.save()
        orders.create_order(
            actor=None,
            tenant=alpha.tenant,
            email="t@example.com",
            placed_at=datetime(2025, 6, 3, 12, tzinfo=UTC),
            lines=[orders.LineRequest(variant.pk, 2)],
        )
    return tea, variant.product


def test_moving_a_product_to_another_category_moves_its_sales(
    alpha, sold, django_capture_on_commit_callbacks
):
    tea, product = sold
    with tenant_context(alpha.tenant):
        assert _by_key(engine.run(alpha.tenant, BY_CATEGORY)) == {
            str(tea.pk): "30.00"
        }  # now cached
        coffee = Category.objects.create(name="Coffee", slug="coffee")
        with django_capture_on_commit_callbacks(execute=True):
            catalog.update_product(
                actor=shop.actor(alpha), product_id=product.pk, changes={"category_id": coffee.pk}
            )
        assert _by_key(engine.run(alpha.tenant, BY_CATEGORY)) == {str(coffee.pk): "30.00"}
        with django_capture_on_commit_callbacks(execute=True):
            catalog.delete_category(actor=shop.actor(alpha), category_id=coffee.pk)
        assert _by_key(engine.run(alpha.tenant, BY_CATEGORY)) == {"": "30.00"}


def test_deleting_a_product_removes_it_from_the_product_figures(
    alpha, sold, django_capture_on_commit_callbacks
):
    _, product = sold
    with tenant_context(alpha.tenant):
        assert _by_key(engine.run(alpha.tenant, BY_PRODUCT)) == {str(product.pk): "30.00"}
        with django_capture_on_commit_callbacks(execute=True):
            catalog.delete_product(actor=shop.actor(alpha), product_id=product.pk)
        assert _by_key(engine.run(alpha.tenant, BY_PRODUCT)) == {}
