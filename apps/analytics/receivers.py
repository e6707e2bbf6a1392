"""How analytics follows the writes of the apps below it (apps.common.hooks), connected by
AnalyticsConfig.ready(). Every receiver runs in the write's transaction: the rollups are exact at
every commit, and the figures' version goes up with the commit that changed them."""

from __future__ import annotations

from typing import Any

from apps.analytics import cache, rollups
from apps.catalog import hooks as catalog_hooks
from apps.catalog.models import Product
from apps.orders import hooks as order_hooks
from apps.orders.models import Order, Refund
from tenants import hooks as tenant_hooks


def connect() -> None:
    tenant_hooks.schema_created.connect(schema_created)
    order_hooks.order_placed.connect(order_placed)
    order_hooks.order_cancelled.connect(order_cancelled)
    order_hooks.refund_made.connect(refund_made)
    catalog_hooks.category_deleted.connect(category_deleted)
    catalog_hooks.product_updated.connect(product_updated)
    catalog_hooks.product_deleted.connect(product_deleted)


def schema_created(*, schema_name: str) -> None:
    cache.bump(
        schema_name
    )  # a schema made again under an old name must not serve its cached answers


def order_placed(*, order: Order) -> None:
    rollups.order_placed(order)


def order_cancelled(*, order: Order, before: str) -> None:
    rollups.touch(order)


def refund_made(*, refund: Refund) -> None:
    rollups.refund_made(refund)


def category_deleted(*, category_id: int) -> None:
    cache.bump_on_commit()  # its products' sales are uncategorised now


def product_updated(*, product: Product, changes: dict[str, Any]) -> None:
    if "category" in changes:  # its sales move to another category
        cache.bump_on_commit()


def product_deleted(*, product_id: int) -> None:
    cache.bump_on_commit()  # its daily rollups went with it (on delete cascade)
