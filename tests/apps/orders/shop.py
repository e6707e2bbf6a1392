"""A small shop for order tests: active products with stocked variants, a staff principal, and
orders placed through the order services (as the API does)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from apps.accounts.authentication import Principal
from apps.accounts.models import User
from apps.catalog.models import Product, Variant
from apps.orders import services
from apps.orders.models import Order
from tests.conftest import token_for

_serial = itertools.count(1)


def variant(
    price: str = "10.00", stock: int = 10, *, name: str = "", product: Product | None = None
) -> Variant:
    """A variant of an active product (a new one unless given), with `stock` units."""
    serial = next(_serial)
    if product is None:
        product = Product.objects.create(
            name=name or f"Product {serial}", slug=f"product-{serial}", status=Product.Status.ACTIVE
        )
    return Variant.objects.create(
        product=product,
        sku=f"SKU-{serial}",
        name=f"Size {serial}",
        price=Decimal(price),
        stock=stock,
    )


def actor(fixture, role: str = "staff") -> Principal:
    user = User.objects.get(email=fixture.email(role))
    return Principal(tenant=fixture.tenant, user=user, role=role, via="jwt")


def place(
    fixture, lines: list[tuple[Variant, int]], *, email: str = "buyer@example.com", **money
) -> Order:
    """An order placed by the service as a staff member; `money`: discount, shipping, tax_rate."""
    return services.create_order(
        actor=actor(fixture),
        tenant=fixture.tenant,
        lines=[services.LineRequest(v.pk, quantity) for v, quantity in lines],
        email=email,
        **{name: Decimal(value) for name, value in money.items()},
    )


def staff(fixture) -> str:
    """A staff member's access token."""
    return token_for(fixture.email("staff"), fixture.tenant)
