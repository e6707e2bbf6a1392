"""Catalog types: categories, products, variants and images as Relay nodes, money in the
tenant's currency, and the sales figures of products."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated

import strawberry
import strawberry_django
from strawberry.scalars import JSON
from strawberry.types import Info

from apps.analytics import products as product_figures
from apps.catalog.images import nearest
from apps.catalog.models import Category, Product, ProductImage, Variant
from schema import permissions
from schema.context import principal, tenant
from schema.errors import read_or_bad_request
from schema.ids import TenantNode
from schema.scalars import Money, money


def currency_of(info: Info) -> str:
    return tenant(info).currency


@strawberry.enum(name="ProductStatus")
class ProductStatusEnum(enum.Enum):
    DRAFT = Product.Status.DRAFT.value
    ACTIVE = Product.Status.ACTIVE.value
    ARCHIVED = Product.Status.ARCHIVED.value


@strawberry_django.type(Category, name="Category")
class CategoryType(TenantNode):
    name: str
    slug: str
    position: int
    parent: CategoryType | None
    children: list[CategoryType]
    created: datetime


@strawberry_django.type(ProductImage, name="ProductImage")
class ProductImageType(TenantNode):
    alt_text: str
    position: int
    width: int
    height: int
    created: datetime

    @strawberry_django.field(only=["image", "renditions"])
    def url(self, root: ProductImage, info: Info, size: int | None = None) -> str:
        """The smallest WebP rendition at least `size` px on its longest side; the cleaned
        original when there is none (yet) or no size is asked for."""
        name = nearest(root.renditions, size) or root.image.name
        url = root.image.storage.url(name)
        request = info.context.request
        return request.build_absolute_uri(url) if hasattr(request, "build_absolute_uri") else url

    @strawberry_django.field(only=["renditions"])
    def rendition_sizes(self, root: ProductImage) -> list[int]:
        return sorted(int(size) for size in root.renditions)


@strawberry_django.type(Variant, name="Variant")
class VariantType(TenantNode):
    sku: str
    name: str
    options: JSON
    stock: int
    low_stock_threshold: int
    position: int
    product: ProductType
    created: datetime

    @strawberry_django.field(only=["price"])
    def price(self, root: Variant, info: Info) -> Money:
        return money(root.price, currency_of(info))

    @strawberry_django.field(only=["compare_at_price"])
    def compare_at_price(self, root: Variant, info: Info) -> Money | None:
        return money(root.compare_at_price, currency_of(info))

    @strawberry_django.field(only=["cost_price"])
    def cost_price(self, root: Variant, info: Info) -> Money | None:
        return money(root.cost_price, currency_of(info))

    @strawberry_django.field(only=["stock", "low_stock_threshold"])
    def is_low_stock(self, root: Variant) -> bool:
        return root.is_low_stock


@strawberry.type(name="ProductDay")
class ProductDayType:
    date: date
    units_sold: int
    revenue: Money
    refunded_units: int
    refunds: Money


@strawberry.type(name="ProductAnalytics")
class ProductAnalyticsType:
    from_: date = strawberry.field(name="from")
    to: date
    units_sold: int
    revenue: Money = strawberry.field(description="Gross: line totals of orders not cancelled.")
    orders_count: int
    refunded_units: int
    refunds: Money
    net_revenue: Money
    days: list[ProductDayType] = strawberry.field(
        description="Every day of the range, in the tenant's time zone."
    )


FromDate = Annotated[date | None, strawberry.argument(name="from")]


def _analytics(figures: product_figures.ProductAnalytics, currency: str) -> ProductAnalyticsType:
    return ProductAnalyticsType(
        from_=figures.span.first,
        to=figures.span.last,
        units_sold=figures.units,
        revenue=money(figures.revenue, currency),
        orders_count=figures.orders,
        refunded_units=figures.refunded_units,
        refunds=money(figures.refunds, currency),
        net_revenue=money(figures.net_revenue, currency),
        days=[
            ProductDayType(
                date=day.day,
                units_sold=day.units,
                revenue=money(day.revenue, currency),
                refunded_units=day.refunded_units,
                refunds=money(day.refunds, currency),
            )
            for day in figures.days
        ],
    )


def window_of(info: Info, first: date | None, last: date | None) -> product_figures.Window:
    return read_or_bad_request(lambda: product_figures.window(first, last, tenant=tenant(info)))


def _require_analytics(info: Info, name: str) -> None:
    """Sales figures below the root follow the rule of the root-level sales lists."""
    error = permissions.check(permissions.RULES["Query.topSellingProducts"], principal(info), name)
    if error is not None:
        raise error


@strawberry_django.type(Product, name="Product")
class ProductType(TenantNode):
    name: str
    slug: str
    description: str
    tags: list[str]
    attributes: JSON
    category: CategoryType | None
    variants: list[VariantType]
    images: list[ProductImageType]
    created: datetime
    updated: datetime

    @strawberry_django.field(only=["status"])
    def status(self, root: Product) -> ProductStatusEnum:
        return ProductStatusEnum(root.status)

    @strawberry_django.field(only=["id"])
    def analytics(
        self, root: Product, info: Info, from_: FromDate = None, to: date | None = None
    ) -> ProductAnalyticsType:
        """Sales of this product over a range of days (default: the last 30), for analysts and
        above. Two queries per product: ask it of one product, use topSellingProducts for lists."""
        _require_analytics(info, "Product.analytics")
        span = window_of(info, from_, to)
        return _analytics(
            product_figures.product_analytics(product_id=root.pk, span=span), currency_of(info)
        )


@strawberry.type(name="ProductSales")
class ProductSalesType:
    product: ProductType
    units_sold: int
    revenue: Money
    orders_count: int


@strawberry.type(name="CategorySummary")
class CategorySummaryType:
    category: CategoryType | None = strawberry.field(
        description="Null: products without a category."
    )
    products_count: int
    stock: int
    stock_value: Money = strawberry.field(
        description="Stock x cost price (the price where no cost is set)."
    )
    units_sold: int
    revenue: Money
