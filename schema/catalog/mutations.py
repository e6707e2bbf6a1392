"""Catalog mutations: CRUD for categories, products and variants, and image uploads (GraphQL
multipart requests), each returning a payload with `userErrors`."""

from __future__ import annotations

import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import strawberry
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON
from strawberry.types import Info

from apps.catalog import image_services, services
from schema.catalog.types import (
    CategoryType,
    ProductImageType,
    ProductStatusEnum,
    ProductType,
    VariantType,
)
from schema.context import principal
from schema.errors import ProductError, payload_or_errors
from schema.ids import pk_of, pk_or_none

T = TypeVar("T")

# --- mutation inputs and payloads ---------------------------------------------------------------


@strawberry.input
class CategoryCreateInput:
    name: str
    slug: str | None = strawberry.field(
        default=None, description="Made from the name when left out."
    )
    parent: strawberry.ID | None = None
    position: int = 0


@strawberry.input
class CategoryUpdateInput:
    name: str | None = strawberry.UNSET
    slug: str | None = strawberry.UNSET
    parent: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="null: top level."
    )
    position: int | None = strawberry.UNSET


@strawberry.input
class VariantInput:
    sku: str
    price: Decimal
    name: str = ""
    options: JSON | None = None
    compare_at_price: Decimal | None = None
    cost_price: Decimal | None = None
    stock: int = 0
    low_stock_threshold: int = 5
    position: int | None = None


@strawberry.input
class VariantUpdateInput:
    sku: str | None = strawberry.UNSET
    price: Decimal | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    options: JSON | None = strawberry.UNSET
    compare_at_price: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="null: none."
    )
    cost_price: Decimal | None = strawberry.field(
        default=strawberry.UNSET, description="null: none."
    )
    stock: int | None = strawberry.UNSET
    low_stock_threshold: int | None = strawberry.UNSET
    position: int | None = strawberry.UNSET


@strawberry.input
class ProductCreateInput:
    name: str
    slug: str | None = strawberry.field(
        default=None, description="Made from the name when left out."
    )
    description: str = ""
    status: ProductStatusEnum = ProductStatusEnum.DRAFT
    category: strawberry.ID | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    attributes: JSON | None = None
    variants: list[VariantInput] = strawberry.field(default_factory=list)


@strawberry.input
class ProductUpdateInput:
    name: str | None = strawberry.UNSET
    slug: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    status: ProductStatusEnum | None = strawberry.UNSET
    category: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="null: none."
    )
    tags: list[str] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET


def _given(data: Any, *, nullable: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields a client sent: UNSET is "leave as is", and so is null except where null means
    "none" (`nullable`)."""
    return {
        name: value.value if isinstance(value, enum.Enum) else value
        for name, value in vars(data).items()
        if value is not strawberry.UNSET and (value is not None or name in nullable)
    }


def _with_id(values: dict[str, Any], name: str, type_name: str, info: Info) -> dict[str, Any]:
    """Replace a global id field by the `<name>_id` the services take (None stays None)."""
    if name in values:
        gid = values.pop(name)
        values[f"{name}_id"] = pk_or_none(gid, type_name, info)
    return values


@strawberry.type
class CategoryPayload:
    category: CategoryType | None = None
    user_errors: list[ProductError] = strawberry.field(default_factory=list)


@strawberry.type
class ProductPayload:
    product: ProductType | None = None
    user_errors: list[ProductError] = strawberry.field(default_factory=list)


@strawberry.type
class VariantPayload:
    variant: VariantType | None = None
    user_errors: list[ProductError] = strawberry.field(default_factory=list)


@strawberry.type
class ProductImagePayload:
    image: ProductImageType | None = None
    user_errors: list[ProductError] = strawberry.field(default_factory=list)


@strawberry.type
class ProductImagesPayload:
    images: list[ProductImageType] = strawberry.field(default_factory=list)
    user_errors: list[ProductError] = strawberry.field(default_factory=list)


@strawberry.type
class CatalogDeletePayload:
    deleted_id: strawberry.ID | None = None
    user_errors: list[ProductError] = strawberry.field(default_factory=list)


def _deleted(delete: Callable[[], None], gid: strawberry.ID) -> CatalogDeletePayload:
    def make() -> CatalogDeletePayload:
        delete()
        return CatalogDeletePayload(deleted_id=gid)

    return payload_or_errors(
        make, lambda errors: CatalogDeletePayload(user_errors=errors), ProductError
    )


def _payload(payload: Callable[..., T], name: str, make: Callable[[], Any]) -> T:
    return payload_or_errors(
        lambda: payload(**{name: make()}), lambda errors: payload(user_errors=errors), ProductError
    )


# --- mutations ----------------------------------------------------------------------------------


@strawberry.type
class Mutation:
    @strawberry.mutation
    def category_create(self, info: Info, input: CategoryCreateInput) -> CategoryPayload:
        return _payload(
            CategoryPayload,
            "category",
            lambda: services.create_category(
                actor=principal(info),
                name=input.name,
                slug=input.slug,
                parent_id=pk_or_none(input.parent, "Category", info),
                position=input.position,
            ),
        )

    @strawberry.mutation
    def category_update(
        self, info: Info, id: strawberry.ID, input: CategoryUpdateInput
    ) -> CategoryPayload:
        changes = _with_id(
            _given(input, nullable=frozenset({"parent"})), "parent", "Category", info
        )
        return _payload(
            CategoryPayload,
            "category",
            lambda: services.update_category(
                actor=principal(info),
                category_id=pk_of(id, "Category", info),
                changes=changes,
            ),
        )

    @strawberry.mutation
    def category_delete(self, info: Info, id: strawberry.ID) -> CatalogDeletePayload:
        return _deleted(
            lambda: services.delete_category(
                actor=principal(info), category_id=pk_of(id, "Category", info)
            ),
            id,
        )

    @strawberry.mutation
    def product_create(self, info: Info, input: ProductCreateInput) -> ProductPayload:
        return _payload(
            ProductPayload,
            "product",
            lambda: services.create_product(
                actor=principal(info),
                name=input.name,
                slug=input.slug,
                description=input.description,
                status=input.status.value,
                category_id=pk_or_none(input.category, "Category", info),
                tags=input.tags,
                attributes=input.attributes,
                variants=[_given(variant) for variant in input.variants],
            ),
        )

    @strawberry.mutation
    def product_update(
        self, info: Info, id: strawberry.ID, input: ProductUpdateInput
    ) -> ProductPayload:
        changes = _with_id(
            _given(input, nullable=frozenset({"category"})), "category", "Category", info
        )
        return _payload(
            ProductPayload,
            "product",
            lambda: services.update_product(
                actor=principal(info),
                product_id=pk_of(id, "Product", info),
                changes=changes,
            ),
        )

    @strawberry.mutation
    def product_delete(self, info: Info, id: strawberry.ID) -> CatalogDeletePayload:
        return _deleted(
            lambda: services.delete_product(
                actor=principal(info), product_id=pk_of(id, "Product", info)
            ),
            id,
        )

    @strawberry.mutation
    def variant_create(
        self, info: Info, product: strawberry.ID, input: VariantInput
    ) -> VariantPayload:
        return _payload(
            VariantPayload,
            "variant",
            lambda: services.create_variant(
                actor=principal(info),
                product_id=pk_of(product, "Product", info),
                **_given(input),
            ),
        )

    @strawberry.mutation
    def variant_update(
        self, info: Info, id: strawberry.ID, input: VariantUpdateInput
    ) -> VariantPayload:
        changes = _given(input, nullable=frozenset({"compare_at_price", "cost_price"}))
        return _payload(
            VariantPayload,
            "variant",
            lambda: services.update_variant(
                actor=principal(info),
                variant_id=pk_of(id, "Variant", info),
                changes=changes,
            ),
        )

    @strawberry.mutation
    def variant_delete(self, info: Info, id: strawberry.ID) -> CatalogDeletePayload:
        return _deleted(
            lambda: services.delete_variant(
                actor=principal(info), variant_id=pk_of(id, "Variant", info)
            ),
            id,
        )

    @strawberry.mutation(
        description="Upload one image (GraphQL multipart request); renditions follow."
    )
    def product_image_upload(
        self, info: Info, product: strawberry.ID, file: Upload, alt_text: str = ""
    ) -> ProductImagePayload:
        return _payload(
            ProductImagePayload,
            "image",
            lambda: image_services.add_product_image(
                actor=principal(info),
                product_id=pk_of(product, "Product", info),
                upload=file,
                alt_text=alt_text,
            ),
        )

    @strawberry.mutation(
        description="Upload several images at once: one bad file and none is stored."
    )
    def product_images_upload(
        self, info: Info, product: strawberry.ID, files: list[Upload]
    ) -> ProductImagesPayload:
        return _payload(
            ProductImagesPayload,
            "images",
            lambda: image_services.add_product_images(
                actor=principal(info),
                product_id=pk_of(product, "Product", info),
                uploads=files,
            ),
        )

    @strawberry.mutation
    def product_image_update(
        self, info: Info, id: strawberry.ID, alt_text: str
    ) -> ProductImagePayload:
        return _payload(
            ProductImagePayload,
            "image",
            lambda: image_services.update_product_image(
                actor=principal(info),
                image_id=pk_of(id, "ProductImage", info),
                alt_text=alt_text,
            ),
        )

    @strawberry.mutation
    def product_image_delete(self, info: Info, id: strawberry.ID) -> CatalogDeletePayload:
        return _deleted(
            lambda: image_services.delete_product_image(
                actor=principal(info), image_id=pk_of(id, "ProductImage", info)
            ),
            id,
        )

    @strawberry.mutation(
        description="`images` lists every image of the product once, in the new order."
    )
    def product_images_reorder(
        self, info: Info, product: strawberry.ID, images: list[strawberry.ID]
    ) -> ProductImagesPayload:
        return _payload(
            ProductImagesPayload,
            "images",
            lambda: image_services.reorder_product_images(
                actor=principal(info),
                product_id=pk_of(product, "Product", info),
                image_ids=[pk_of(gid, "ProductImage", info) for gid in images],
            ),
        )
