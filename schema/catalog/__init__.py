"""The catalog: categories, products, variants and images (Relay nodes, connections with filter
and sort, CRUD and upload mutations), and the product figures from orders."""

from schema.catalog.mutations import Mutation
from schema.catalog.queries import Query
from schema.catalog.types import CategoryType, ProductImageType, ProductType, VariantType

__all__ = ["CategoryType", "Mutation", "ProductImageType", "ProductType", "Query", "VariantType"]
