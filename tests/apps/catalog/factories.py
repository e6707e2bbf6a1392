"""Catalog test data: rows made straight in a tenant's schema, images made with Pillow, and
GraphQL multipart requests (the GraphQL multipart request spec) through the ASGI app."""

from __future__ import annotations

import json
from decimal import Decimal
from io import BytesIO
from typing import Any

from asgiref.sync import async_to_sync
from django_tenants.utils import tenant_context
from PIL import Image

from apps.catalog.models import Category, Product, Variant
from tests.conftest import Response


def category(fixture, name: str, *, parent: Category | None = None) -> Category:
    with tenant_context(fixture.tenant):
        return Category.objects.create(
            name=name, slug=name.lower().replace(" ", "-"), parent=parent
        )


def product(
    fixture,
    name: str,
    *,
    variants: list[dict[str, Any]] = (),
    category: Category | None = None,
    status: str = Product.Status.ACTIVE,
    description: str = "",
) -> Product:
    """A product and its variants: dicts of Variant fields, `sku` and `price` at least."""
    with tenant_context(fixture.tenant):
        made = Product.objects.create(
            name=name,
            slug=name.lower().replace(" ", "-"),
            category=category,
            status=status,
            description=description,
        )
        for position, fields in enumerate(variants):
            fields = {**fields, "price": Decimal(str(fields["price"]))}
            Variant.objects.create(product=made, position=position, **fields)
        return made


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (64, 48), color: str = "red", **save: Any
) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt, **save)
    return out.getvalue()


def upload(
    gql,
    fixture,
    token: str,
    query: str,
    variables: dict[str, Any],
    files: dict[str, tuple[str, bytes]],
) -> Response:
    """POST `query` with `files` ({variable path: (file name, content)}) as multipart/form-data:
    `operations` with null placeholders, `map` from form field to variable path, then the files."""
    mapping = {str(index): [f"variables.{path}"] for index, path in enumerate(files)}
    form: dict[str, Any] = {
        "operations": json.dumps({"query": query, "variables": variables}),
        "map": json.dumps(mapping),
    }
    for index, (name, content) in enumerate(files.values()):
        form[str(index)] = BytesIO(content)
        form[str(index)].name = name
    response = async_to_sync(gql.client.post)(
        "/graphql/", form, headers={"Host": fixture.host, "Authorization": f"Bearer {token}"}
    )
    return Response(
        response.status_code, json.loads(response.content or b"{}"), dict(response.headers)
    )
