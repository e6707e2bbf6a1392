"""Customers, catalog rows and orders written straight to a tenant's tables for tests. Orders
are inserted with the ORM (as the order services would leave them) and, unless cancelled, added
to the customer's kept statistics through `record_order`, as the order services do."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from apps.catalog.models import Category, Product
from apps.customers.models import Customer
from apps.customers.services import record_order
from apps.orders.models import Order, OrderLine, OrderStatus

_numbers = itertools.count(900_000)


def customer(email: str, **fields) -> Customer:
    created = fields.pop("created", None)
    made = Customer.objects.create(email=email, **fields)
    if created is not None:  # auto_now_add: set afterwards
        Customer.objects.filter(pk=made.pk).update(created=created)
        made.created = created
    return made


def category(name: str) -> Category:
    return Category.objects.create(name=name, slug=name.lower().replace(" ", "-"))


def product(name: str, category: Category | None) -> Product:
    return Product.objects.create(name=name, slug=name.lower().replace(" ", "-"), category=category)


def order(
    buyer: Customer | None,
    total: str,
    placed_at: datetime,
    *,
    status: str = OrderStatus.PAID,
    refunded: str = "0.00",
    lines: list[tuple[Product | None, int, str, int]] = (),
) -> Order:
    """An order; `lines` are (product, quantity, line total, refunded quantity)."""
    made = Order.objects.create(
        number=next(_numbers),
        customer=buyer,
        email=buyer.email if buyer else "",
        status=status,
        currency="USD",
        subtotal=Decimal(total),
        total=Decimal(total),
        refunded_total=Decimal(refunded),
        placed_at=placed_at,
    )
    for index, (item, quantity, line_total, refunded_quantity) in enumerate(lines):
        OrderLine.objects.create(
            order=made,
            product=item,
            product_name=item.name if item else "gone",
            sku=f"SKU-{made.number}-{index}",
            unit_price=Decimal(line_total) / quantity,
            quantity=quantity,
            refunded_quantity=refunded_quantity,
            total=Decimal(line_total),
        )
    if buyer is not None and status != OrderStatus.CANCELLED:
        record_order(
            customer_id=buyer.pk,
            counted=1,
            spent=Decimal(total) - Decimal(refunded),
            placed_at=placed_at,
        )
    return made
