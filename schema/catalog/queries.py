"""Catalog queries: the `products` and `categories` connections with their filter and sort
inputs, and the product lists from order data."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

import strawberry
import strawberry_django
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.analytics import products as product_figures
from apps.catalog import selectors
from apps.catalog.models import Category, Product, Variant
from schema.catalog.types import (
    CategorySummaryType,
    CategoryType,
    FromDate,
    ProductSalesType,
    ProductStatusEnum,
    ProductType,
    VariantType,
    currency_of,
    window_of,
)
from schema.errors import bad_request
from schema.ids import pk_or_none
from schema.scalars import money
from schema.types import as_type

# --- list inputs --------------------------------------------------------------------------------


@strawberry.input
class ProductFilter:
    status: list[ProductStatusEnum] | None = None
    category: strawberry.ID | None = None
    include_subcategories: bool = True
    price_min: Decimal | None = strawberry.field(
        default=None, description="Some variant costs at least this."
    )
    price_max: Decimal | None = strawberry.field(
        default=None, description="Some variant costs at most this."
    )
    in_stock: bool | None = strawberry.field(
        default=None, description="true: some variant has stock; false: none has."
    )
    search: str | None = strawberry.field(
        default=None, description="In the name, description or a variant's SKU."
    )
    tags: list[str] | None = strawberry.field(default=None, description="Has any of these tags.")


@strawberry.enum(name="ProductSortField")
class ProductSortFieldEnum(enum.Enum):
    NAME = "name"
    CREATED = "created"
    PRICE = "price"


@strawberry.input
class ProductSort:
    field: ProductSortFieldEnum = ProductSortFieldEnum.CREATED
    descending: bool = True


@strawberry.input
class CategoryFilter:
    parent: strawberry.ID | None = None
    top_level: bool = False
    search: str | None = None


@strawberry.enum(name="ProductSalesRanking")
class SalesRanking(enum.Enum):
    UNITS = "units"
    REVENUE = "revenue"


def _product_filter(given: ProductFilter | None, info: Info) -> selectors.ProductFilter:
    if given is None:
        return selectors.ProductFilter()
    for bound in (given.price_min, given.price_max):
        if bound is not None and (not bound.is_finite() or bound < 0):
            raise bad_request("Price bounds are amounts of 0 or more.")
    if (
        given.price_min is not None
        and given.price_max is not None
        and given.price_min > given.price_max
    ):
        raise bad_request("priceMin must not be above priceMax.")
    return selectors.ProductFilter(
        statuses=[status.value for status in given.status or []],
        category_id=pk_or_none(given.category, "Category", info),
        include_subcategories=given.include_subcategories,
        price_min=given.price_min,
        price_max=given.price_max,
        in_stock=given.in_stock,
        search=given.search or "",
        tags=list(given.tags or []),
    )


# --- queries ------------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry_django.connection(DjangoListConnection[ProductType])
    def products(
        self, info: Info, filter: ProductFilter | None = None, sort: ProductSort | None = None
    ) -> Iterable[Product]:
        """Newest first unless `sort` says otherwise; by price: a product's cheapest variant."""
        sort = sort or ProductSort()
        return selectors.products(
            where=_product_filter(filter, info), sort=sort.field.value, descending=sort.descending
        )

    @strawberry_django.connection(DjangoListConnection[CategoryType])
    def categories(self, info: Info, filter: CategoryFilter | None = None) -> Iterable[Category]:
        given = filter or CategoryFilter()
        return selectors.categories(
            parent_id=pk_or_none(given.parent, "Category", info),
            top_level=given.top_level,
            search=given.search or "",
        )

    @strawberry_django.connection(
        DjangoListConnection[VariantType],
        description="Variants at or below their low-stock threshold (archived products left out), emptiest first.",
    )
    def low_stock_products(self, info: Info) -> Iterable[Variant]:
        return selectors.low_stock_variants()

    @strawberry.field(
        description="Best sellers over a range of days (default: the last 30), gross of refunds."
    )
    def top_selling_products(
        self,
        info: Info,
        by: SalesRanking = SalesRanking.UNITS,
        from_: FromDate = None,
        to: date | None = None,
        first: int = 10,
    ) -> list[ProductSalesType]:
        if not 1 <= first <= 100:
            raise bad_request("`first` must be 1 to 100.")
        span = window_of(info, from_, to)
        currency = currency_of(info)
        return [
            ProductSalesType(
                product=as_type(ProductType, row.product),
                units_sold=row.units,
                revenue=money(row.revenue, currency),
                orders_count=row.orders,
            )
            for row in product_figures.top_selling(span=span, by=by.value, limit=first)
        ]

    @strawberry.field(
        description="Per category: products, stock and its value, and sales over a range of days."
    )
    def categories_summary(
        self, info: Info, from_: FromDate = None, to: date | None = None
    ) -> list[CategorySummaryType]:
        span = window_of(info, from_, to)
        currency = currency_of(info)
        return [
            CategorySummaryType(
                category=as_type(CategoryType, row.category),
                products_count=row.products,
                stock=row.stock,
                stock_value=money(row.stock_value, currency),
                units_sold=row.units,
                revenue=money(row.revenue, currency),
            )
            for row in product_figures.categories_summary(span=span)
        ]
