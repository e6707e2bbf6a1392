"""Reads for the catalog: filtered and sorted product lists, the category tree, low stock. The
product figures that come from orders are apps.analytics.products."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from apps.catalog.models import Category, Product, Variant

# --- the category tree --------------------------------------------------------------------------


def _parents() -> dict[int, int | None]:
    return dict(Category.objects.values_list("id", "parent_id"))


def category_ancestor_ids(category_id: int, *, include_self: bool = False) -> list[int]:
    """From the category's parent up to its root (one query for the whole tree)."""
    parents = _parents()
    found = [category_id] if include_self else []
    current = parents.get(category_id)
    while current is not None and current not in found:
        found.append(current)
        current = parents.get(current)
    return found


def category_descendant_ids(category_id: int) -> set[int]:
    """The category and every category below it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, parent in _parents().items():
        children[parent].append(pk)
    found, todo = set(), [category_id]
    while todo:
        pk = todo.pop()
        if pk not in found:
            found.add(pk)
            todo.extend(children[pk])
    return found


def categories(
    *, parent_id: int | None = None, top_level: bool = False, search: str = ""
) -> QuerySet:
    queryset = Category.objects.all()
    if parent_id is not None:
        queryset = queryset.filter(parent_id=parent_id)
    if top_level:
        queryset = queryset.filter(parent__isnull=True)
    if search.strip():
        queryset = queryset.filter(
            Q(name__icontains=search.strip()) | Q(slug__icontains=search.strip())
        )
    return queryset


def categories_by_id(ids: list[int]) -> dict[int, Category]:
    """The categories of `ids` that exist, by id, each with its parent (one query)."""
    return Category.objects.select_related("parent").in_bulk(ids)


# --- products -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductFilter:
    statuses: list[str] = field(default_factory=list)
    category_id: int | None = None
    include_subcategories: bool = True
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool | None = None
    search: str = ""
    tags: list[str] = field(default_factory=list)


SORT_KEYS = {"name": "name", "created": "created", "price": "min_price"}


def _variants() -> QuerySet:
    return Variant.objects.filter(product=OuterRef("pk"))


def products(
    *, where: ProductFilter | None = None, sort: str = "created", descending: bool = True
) -> QuerySet:
    """Products matching `where`. Variant conditions are EXISTS subqueries, so a product shows
    once however many of its variants match; the sort ends on the id, so pages are stable."""
    where = where or ProductFilter()
    queryset = Product.objects.all()
    if where.statuses:
        queryset = queryset.filter(status__in=where.statuses)
    if where.category_id is not None:
        ids = (
            category_descendant_ids(where.category_id)
            if where.include_subcategories
            else {where.category_id}
        )
        queryset = queryset.filter(category_id__in=ids)
    if where.price_min is not None or where.price_max is not None:
        priced = _variants()
        if where.price_min is not None:
            priced = priced.filter(price__gte=where.price_min)
        if where.price_max is not None:
            priced = priced.filter(price__lte=where.price_max)
        queryset = queryset.filter(Exists(priced))
    if where.in_stock is not None:
        stocked = Exists(_variants().filter(stock__gt=0))
        queryset = queryset.filter(stocked if where.in_stock else ~stocked)
    if text := where.search.strip():
        queryset = queryset.filter(
            Q(name__icontains=text)
            | Q(description__icontains=text)
            | Exists(_variants().filter(sku__icontains=text))
        )
    if where.tags:
        queryset = queryset.filter(tags__overlap=where.tags)
    key = SORT_KEYS[sort]
    if key == "min_price":
        queryset = queryset.annotate(
            min_price=Subquery(_variants().order_by("price").values("price")[:1])
        )
    direction = F(key).desc(nulls_last=True) if descending else F(key).asc(nulls_last=True)
    return queryset.order_by(direction, "-id" if descending else "id")


def products_by_id(ids: list[int]) -> dict[int, Product]:
    """The products of `ids` that exist (deleted ones are left out), by id, with their category,
    variants and images: what a product shows, in three queries however many they are."""
    return (
        Product.objects.select_related("category")
        .prefetch_related("variants", "images")
        .in_bulk(ids)
    )


def low_stock_variants() -> QuerySet:
    """Variants at or below their low-stock threshold, of products not archived; emptiest first."""
    return (
        Variant.objects.filter(stock__lte=F("low_stock_threshold"))
        .exclude(product__status=Product.Status.ARCHIVED)
        .order_by("stock", "sku", "id")
    )
