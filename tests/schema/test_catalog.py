"""Catalog CRUD over GraphQL: categories, products, variants; validation (nothing written on bad
input), roles, the `products` filters and sorts, and constant query counts for a product page."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.catalog.models import Category, Product, ProductImage, Variant
from tests.apps.catalog import factories
from tests.conftest import gid, token_for

ERRORS = "userErrors { field code message }"
CATEGORY_CREATE = f"""mutation($input: CategoryCreateInput!) {{
  categoryCreate(input: $input) {{ category {{ id name slug parent {{ name }} }} {ERRORS} }} }}"""
CATEGORY_UPDATE = f"""mutation($id: ID!, $input: CategoryUpdateInput!) {{
  categoryUpdate(id: $id, input: $input) {{ category {{ name slug parent {{ slug }} }} {ERRORS} }} }}"""
CATEGORY_DELETE = f"mutation($id: ID!) {{ categoryDelete(id: $id) {{ deletedId {ERRORS} }} }}"
PRODUCT_CREATE = f"""mutation($input: ProductCreateInput!) {{
  productCreate(input: $input) {{
    product {{ id name slug status tags attributes category {{ slug }}
      variants {{ id sku price {{ amount currency }} compareAtPrice {{ amount }} costPrice {{ amount }} stock
                 lowStockThreshold options isLowStock }} }}
    {ERRORS} }} }}"""
PRODUCT_UPDATE = f"""mutation($id: ID!, $input: ProductUpdateInput!) {{
  productUpdate(id: $id, input: $input) {{ product {{ name slug status tags category {{ slug }} }} {ERRORS} }} }}"""
PRODUCT_DELETE = f"mutation($id: ID!) {{ productDelete(id: $id) {{ deletedId {ERRORS} }} }}"
VARIANT_CREATE = f"""mutation($product: ID!, $input: VariantInput!) {{
  variantCreate(product: $product, input: $input) {{ variant {{ sku price {{ amount }} product
  {{ name }} }} {ERRORS} }} }}"""
VARIANT_UPDATE = f"""mutation($id: ID!, $input: VariantUpdateInput!) {{
  variantUpdate(id: $id, input: $input) {{ variant {{ sku stock price {{ amount }}
  compareAtPrice {{ amount }} }} {ERRORS} }} }}"""
VARIANT_DELETE = f"mutation($id: ID!) {{ variantDelete(id: $id) {{ deletedId {ERRORS} }} }}"
PRODUCTS = """query($filter: ProductFilter, $sort: ProductSort) {
  products(first: 50, filter: $filter, sort: $sort) { totalCount edges { node { name } } } }"""


@pytest.fixture
def staff(alpha):
    return token_for(alpha.email("staff"), alpha.tenant)


def _errors(response, name):
    assert response.errors == [], response.body
    return [(e["field"], e["code"]) for e in response.data[name]["userErrors"]]


def _counts(fixture):
    with tenant_context(fixture.tenant):
        return (
            Category.objects.count(),
            Product.objects.count(),
            Variant.objects.count(),
            AuditEntry.objects.count(),
        )


# --- categories ---------------------------------------------------------------------------------


def test_category_tree_create_update_delete(gql, alpha, staff):
    made = gql.post(
        CATEGORY_CREATE, {"input": {"name": "Men's Shoes"}}, host=alpha.host, token=staff
    )
    shoes = made.data["categoryCreate"]["category"]
    assert shoes["slug"] == "mens-shoes" and shoes["parent"] is None
    child = gql.post(
        CATEGORY_CREATE,
        {"input": {"name": "Boots", "slug": "boots", "parent": shoes["id"]}},
        host=alpha.host,
        token=staff,
    ).data["categoryCreate"]
    assert child["userErrors"] == [] and child["category"]["parent"] == {"name": "Men's Shoes"}
    again = gql.post(
        CATEGORY_CREATE, {"input": {"name": "Men's shoes"}}, host=alpha.host, token=staff
    )
    assert (
        again.data["categoryCreate"]["category"]["slug"] == "mens-shoes-2"
    )  # made slugs never clash

    moved = gql.post(
        CATEGORY_UPDATE,
        {"id": child["category"]["id"], "input": {"parent": None, "name": "All boots"}},
        host=alpha.host,
        token=staff,
    )
    assert moved.data["categoryUpdate"] == {
        "category": {"name": "All boots", "slug": "boots", "parent": None},
        "userErrors": [],
    }
    deleted = gql.post(
        CATEGORY_DELETE, {"id": child["category"]["id"]}, host=alpha.host, token=staff
    )
    assert deleted.data["categoryDelete"] == {
        "deletedId": child["category"]["id"],
        "userErrors": [],
    }
    with tenant_context(alpha.tenant):
        assert list(
            AuditEntry.objects.filter(object_type="Category")
            .values_list("action", flat=True)
            .order_by("id")
        ) == [
            "category.create",
            "category.create",
            "category.create",
            "category.update",
            "category.delete",
        ]


def test_a_category_cannot_sit_under_itself_or_its_descendants(gql, alpha, staff):
    top = factories.category(alpha, "Top")
    middle = factories.category(alpha, "Middle", parent=top)
    bottom = factories.category(alpha, "Bottom", parent=middle)
    for parent in (top, bottom):
        response = gql.post(
            CATEGORY_UPDATE,
            {
                "id": gid(alpha, "Category", top.pk),
                "input": {"parent": gid(alpha, "Category", parent.pk)},
            },
            host=alpha.host,
            token=staff,
        )
        assert _errors(response, "categoryUpdate") == [("parent", "CYCLE")]
    with tenant_context(alpha.tenant):
        assert Category.objects.get(pk=top.pk).parent_id is None


def test_category_bad_input_writes_nothing(gql, alpha, staff):
    factories.category(alpha, "Taken")
    before = _counts(alpha)
    cases = [
        ({"name": "  "}, ("name", "REQUIRED")),
        ({"name": "X", "slug": "Not A Slug"}, ("slug", "INVALID")),
        ({"name": "X", "slug": "taken"}, ("slug", "DUPLICATE")),
        ({"name": "X", "parent": gid(alpha, "Category", 999999)}, ("parent", "NOT_FOUND")),
        ({"name": "X", "parent": gid(alpha, "Product", 1)}, ("parent", "NOT_FOUND")),
        ({"name": "X", "position": -1}, ("position", "NEGATIVE")),
    ]
    for given, expected in cases:
        response = gql.post(CATEGORY_CREATE, {"input": given}, host=alpha.host, token=staff)
        assert _errors(response, "categoryCreate") == [expected], given
    assert _counts(alpha) == before


def test_a_category_with_subcategories_is_kept_and_its_products_survive_its_deletion(
    gql, alpha, staff
):
    parent = factories.category(alpha, "Parent")
    child = factories.category(alpha, "Child", parent=parent)
    item = factories.product(alpha, "Sock", category=child)
    refused = gql.post(
        CATEGORY_DELETE, {"id": gid(alpha, "Category", parent.pk)}, host=alpha.host, token=staff
    )
    assert _errors(refused, "categoryDelete") == [("id", "IN_USE")]
    gql.post(
        CATEGORY_DELETE, {"id": gid(alpha, "Category", child.pk)}, host=alpha.host, token=staff
    )
    with tenant_context(alpha.tenant):
        assert Product.objects.get(pk=item.pk).category_id is None


# --- products and variants ----------------------------------------------------------------------


def test_product_with_variants_in_one_mutation(gql, alpha, staff):
    shoes = factories.category(alpha, "Shoes")
    response = gql.post(
        PRODUCT_CREATE,
        {
            "input": {
                "name": "Trail Runner",
                "status": "ACTIVE",
                "category": gid(alpha, "Category", shoes.pk),
                "tags": ["running", " trail ", "running"],
                "attributes": {"material": "mesh"},
                "variants": [
                    {
                        "sku": "TR-42",
                        "price": "89.90",
                        "compareAtPrice": "99.00",
                        "costPrice": "40",
                        "stock": 3,
                        "options": {"size": "42"},
                    },
                    {
                        "sku": "TR-43",
                        "price": "89.90",
                        "stock": 10,
                        "lowStockThreshold": 2,
                        "position": 7,
                    },
                ],
            }
        },
        host=alpha.host,
        token=staff,
    )
    payload = response.data["productCreate"]
    assert payload["userErrors"] == []
    product = payload["product"]
    assert product["slug"] == "trail-runner" and product["status"] == "ACTIVE"
    assert product["tags"] == ["running", "trail"] and product["attributes"] == {"material": "mesh"}
    assert product["category"] == {"slug": "shoes"}
    first, second = product["variants"]
    assert first["price"] == {"amount": "89.90", "currency": alpha.tenant.currency}
    assert first["compareAtPrice"] == {"amount": "99.00"} and first["costPrice"] == {
        "amount": "40.00"
    }
    assert first["options"] == {"size": "42"} and first["isLowStock"] is True
    assert second["compareAtPrice"] is None and second["isLowStock"] is False
    with tenant_context(alpha.tenant):
        assert Variant.objects.get(sku="TR-42").price == Decimal("89.90")
        assert Variant.objects.get(sku="TR-43").position == 7
        assert AuditEntry.objects.filter(action="variant.create").count() == 2


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"name": ""}, ("name", "REQUIRED")),
        ({"name": "X", "slug": "UPPER"}, ("slug", "INVALID")),
        ({"name": "X", "slug": "taken-slug"}, ("slug", "DUPLICATE")),
        ({"name": "X", "attributes": [1, 2]}, ("attributes", "INVALID")),
        ({"name": "X", "tags": [""]}, ("tags", "INVALID")),
        ({"name": "X", "category": "UNKNOWN"}, ("category", "NOT_FOUND")),
        (
            {"name": "X", "variants": [{"sku": "TAKEN-1", "price": "1"}]},
            ("variants.0.sku", "DUPLICATE"),
        ),
        (
            {
                "name": "X",
                "variants": [{"sku": "NEW-1", "price": "1"}, {"sku": "new-1", "price": "1"}],
            },
            ("variants.1.sku", "DUPLICATE"),
        ),
        (
            {"name": "X", "variants": [{"sku": "NEW-1", "price": "-1"}]},
            ("variants.0.price", "NEGATIVE"),
        ),
        (
            {"name": "X", "variants": [{"sku": "NEW-1", "price": "1.001"}]},
            ("variants.0.price", "TOO_PRECISE"),
        ),
        (
            {"name": "X", "variants": [{"sku": "NEW-1", "price": "NaN"}]},
            ("variants.0.price", "INVALID"),
        ),
        (
            {"name": "X", "variants": [{"sku": "NEW-1", "price": "10", "compareAtPrice": "9.99"}]},
            ("variants.0.compareAtPrice", "INVALID"),
        ),
        (
            {"name": "X", "variants": [{"sku": "NEW-1", "price": "10", "costPrice": "-0.01"}]},
            ("variants.0.costPrice", "NEGATIVE"),
        ),
        (
            {"name": "X", "variants": [{"sku": "NEW-1", "price": "10", "stock": -1}]},
            ("variants.0.stock", "NEGATIVE"),
        ),
        (
            {"name": "X", "variants": [{"sku": "has space", "price": "10"}]},
            ("variants.0.sku", "INVALID"),
        ),
        (
            {"name": "X", "variants": [{"sku": "NEW-1", "price": "1", "options": {"size": 4}}]},
            ("variants.0.options", "INVALID"),
        ),
    ],
)
def test_product_bad_input_writes_nothing(gql, alpha, staff, given, expected):
    factories.product(alpha, "Taken slug", variants=[{"sku": "TAKEN-1", "price": 5}])
    if given.get("category") == "UNKNOWN":
        given = {**given, "category": gid(alpha, "Category", 999999)}
    before = _counts(alpha)
    response = gql.post(PRODUCT_CREATE, {"input": given}, host=alpha.host, token=staff)
    assert _errors(response, "productCreate") == [expected]
    assert response.data["productCreate"]["product"] is None
    assert (
        _counts(alpha) == before
    )  # not the product, nor a variant before the bad one, nor an audit entry


def test_product_update_and_delete(gql, alpha, staff):
    shoes = factories.category(alpha, "Shoes")
    item = factories.product(
        alpha, "Old name", variants=[{"sku": "OLD-1", "price": 5}], category=shoes
    )
    product_id = gid(alpha, "Product", item.pk)
    updated = gql.post(
        PRODUCT_UPDATE,
        {
            "id": product_id,
            "input": {
                "name": "New name",
                "slug": "new-name",
                "status": "ARCHIVED",
                "tags": ["sale"],
                "category": None,
                "description": None,
            },
        },
        host=alpha.host,
        token=staff,
    )
    assert updated.data["productUpdate"] == {
        "product": {
            "name": "New name",
            "slug": "new-name",
            "status": "ARCHIVED",
            "tags": ["sale"],
            "category": None,
        },
        "userErrors": [],
    }
    with tenant_context(alpha.tenant):
        entry = AuditEntry.objects.get(action="product.update")
        assert entry.changes["name"] == ["Old name", "New name"] and entry.changes["category"] == [
            shoes.pk,
            None,
        ]
    deleted = gql.post(PRODUCT_DELETE, {"id": product_id}, host=alpha.host, token=staff)
    assert deleted.data["productDelete"] == {"deletedId": product_id, "userErrors": []}
    with tenant_context(alpha.tenant):
        assert (
            not Product.objects.filter(pk=item.pk).exists()
            and not Variant.objects.filter(sku="OLD-1").exists()
        )
    gone = gql.post(PRODUCT_DELETE, {"id": product_id}, host=alpha.host, token=staff)
    assert _errors(gone, "productDelete") == [("id", "NOT_FOUND")]


def test_variant_create_update_delete_and_their_checks(gql, alpha, staff):
    item = factories.product(
        alpha, "Tee", variants=[{"sku": "TEE-S", "price": 10}, {"sku": "TEE-M", "price": 10}]
    )
    created = gql.post(
        VARIANT_CREATE,
        {"product": gid(alpha, "Product", item.pk), "input": {"sku": "TEE-L", "price": "12.50"}},
        host=alpha.host,
        token=staff,
    )
    assert created.data["variantCreate"] == {
        "variant": {"sku": "TEE-L", "price": {"amount": "12.50"}, "product": {"name": "Tee"}},
        "userErrors": [],
    }
    with tenant_context(alpha.tenant):
        small = Variant.objects.get(sku="TEE-S")
        assert Variant.objects.get(sku="TEE-L").position == 2
    variant_id = gid(alpha, "Variant", small.pk)
    updated = gql.post(
        VARIANT_UPDATE,
        {"id": variant_id, "input": {"stock": 7, "compareAtPrice": "15"}},
        host=alpha.host,
        token=staff,
    )
    assert updated.data["variantUpdate"]["variant"] == {
        "sku": "TEE-S",
        "stock": 7,
        "price": {"amount": "10.00"},
        "compareAtPrice": {"amount": "15.00"},
    }
    for given, expected in [
        ({"sku": "tee-m"}, ("sku", "DUPLICATE")),
        ({"price": "16"}, ("compareAtPrice", "INVALID")),  # above the compare-at price set before
        ({"stock": -3}, ("stock", "NEGATIVE")),
        ({"lowStockThreshold": -1}, ("lowStockThreshold", "NEGATIVE")),
        ({"price": None, "costPrice": "-1"}, ("costPrice", "NEGATIVE")),
    ]:
        response = gql.post(
            VARIANT_UPDATE, {"id": variant_id, "input": given}, host=alpha.host, token=staff
        )
        assert _errors(response, "variantUpdate") == [expected], given
    with tenant_context(alpha.tenant):
        small.refresh_from_db()
        assert (small.sku, small.stock, small.price, small.cost_price) == (
            "TEE-S",
            7,
            Decimal("10.00"),
            None,
        )
    cleared = gql.post(
        VARIANT_UPDATE,
        {"id": variant_id, "input": {"compareAtPrice": None}},
        host=alpha.host,
        token=staff,
    )
    assert cleared.data["variantUpdate"]["variant"]["compareAtPrice"] is None
    missing = gql.post(
        VARIANT_CREATE,
        {"product": gid(alpha, "Product", 999999), "input": {"sku": "Z", "price": "1"}},
        host=alpha.host,
        token=staff,
    )
    assert _errors(missing, "variantCreate") == [("product", "NOT_FOUND")]
    deleted = gql.post(VARIANT_DELETE, {"id": variant_id}, host=alpha.host, token=staff)
    assert deleted.data["variantDelete"]["userErrors"] == []
    with tenant_context(alpha.tenant):
        assert list(Variant.objects.filter(product=item).values_list("sku", flat=True)) == [
            "TEE-M",
            "TEE-L",
        ]


def test_skus_and_slugs_are_unique_per_tenant_only(gql, alpha, beta):
    factories.product(alpha, "Same", variants=[{"sku": "SAME-1", "price": 1}])
    response = gql.post(
        PRODUCT_CREATE,
        {"input": {"name": "Same", "slug": "same", "variants": [{"sku": "SAME-1", "price": "1"}]}},
        host=beta.host,
        token=token_for(beta.email("staff"), beta.tenant),
    )
    assert response.data["productCreate"]["userErrors"] == []


# --- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_readers_read_the_catalog_but_cannot_change_it(gql, alpha, role):
    item = factories.product(alpha, "Readable", variants=[{"sku": "R-1", "price": 3}])
    token = token_for(alpha.email(role), alpha.tenant)
    read = gql.post(
        "{ products(first: 5) { edges { node { name variants { sku } } } } categories(first: 5) { totalCount } }",
        host=alpha.host,
        token=token,
    )
    assert read.errors == [] and read.data["products"]["edges"][0]["node"] == {
        "name": "Readable",
        "variants": [{"sku": "R-1"}],
    }
    node = gql.post(
        "query($id: ID!) { node(id: $id) { ... on Product { name } } }",
        {"id": gid(alpha, "Product", item.pk)},
        host=alpha.host,
        token=token,
    )
    assert node.data == {"node": {"name": "Readable"}}
    before = _counts(alpha)
    for query, variables in [
        (PRODUCT_CREATE, {"input": {"name": "Nope"}}),
        (PRODUCT_UPDATE, {"id": gid(alpha, "Product", item.pk), "input": {"name": "Nope"}}),
        (PRODUCT_DELETE, {"id": gid(alpha, "Product", item.pk)}),
        (CATEGORY_CREATE, {"input": {"name": "Nope"}}),
        (VARIANT_UPDATE, {"id": gid(alpha, "Variant", 1), "input": {"stock": 1}}),
    ]:
        response = gql.post(query, variables, host=alpha.host, token=token)
        assert response.codes == ["FORBIDDEN"] and response.data is None
    assert _counts(alpha) == before


def test_a_tenant_never_sees_or_changes_another_tenants_catalog(gql, alpha, beta):
    item = factories.product(alpha, "Alpha only", variants=[{"sku": "A-1", "price": 3}])
    beta_staff = token_for(beta.email("staff"), beta.tenant)
    listed = gql.post("{ products(first: 10) { totalCount } }", host=beta.host, token=beta_staff)
    assert listed.data["products"]["totalCount"] == 0
    node = gql.post(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": gid(alpha, "Product", item.pk)},
        host=beta.host,
        token=beta_staff,
    )
    assert node.data == {"node": None}
    changed = gql.post(
        PRODUCT_UPDATE,
        {"id": gid(alpha, "Product", item.pk), "input": {"name": "Hacked"}},
        host=beta.host,
        token=beta_staff,
    )
    assert _errors(changed, "productUpdate") == [("id", "NOT_FOUND")]
    with tenant_context(alpha.tenant):
        assert Product.objects.get(pk=item.pk).name == "Alpha only"


# --- the products list --------------------------------------------------------------------------


@pytest.fixture
def shelf(alpha):
    clothes = factories.category(alpha, "Clothes")
    shirts = factories.category(alpha, "Shirts", parent=clothes)
    toys = factories.category(alpha, "Toys")
    factories.product(
        alpha,
        "Blue shirt",
        category=shirts,
        description="cotton",
        variants=[
            {"sku": "SH-B", "price": 20, "stock": 0},
            {"sku": "SH-B2", "price": 25, "stock": 4},
        ],
    )
    factories.product(
        alpha, "Red scarf", category=clothes, variants=[{"sku": "SC-R", "price": 15, "stock": 0}]
    )
    factories.product(
        alpha,
        "Yo-yo",
        category=toys,
        status="draft",
        variants=[{"sku": "TOY-YOYO", "price": 3.5, "stock": 50}],
    )
    factories.product(
        alpha,
        "Archived kite",
        category=toys,
        status="archived",
        description="a cotton kite",
        variants=[{"sku": "TOY-KITE", "price": 30, "stock": 2}],
    )
    factories.product(alpha, "Gift card")  # no variants, no category
    return {"clothes": clothes, "shirts": shirts, "toys": toys}


def _names(gql, alpha, token, filter=None, sort=None):
    response = gql.post(PRODUCTS, {"filter": filter, "sort": sort}, host=alpha.host, token=token)
    assert response.errors == [], response.body
    names = [edge["node"]["name"] for edge in response.data["products"]["edges"]]
    assert response.data["products"]["totalCount"] == len(names)
    return names


def test_products_filters(gql, alpha, staff, shelf):
    def names(**filter):
        return sorted(_names(gql, alpha, staff, filter=filter))

    assert names(status=["ACTIVE"]) == ["Blue shirt", "Gift card", "Red scarf"]
    assert names(status=["DRAFT", "ARCHIVED"]) == ["Archived kite", "Yo-yo"]
    clothes = gid(alpha, "Category", shelf["clothes"].pk)
    assert names(category=clothes) == ["Blue shirt", "Red scarf"]  # with its subcategories
    assert names(category=clothes, includeSubcategories=False) == ["Red scarf"]
    assert names(priceMin="20", priceMax="25") == ["Blue shirt"]
    assert names(priceMax="15") == ["Red scarf", "Yo-yo"]
    assert names(inStock=True) == ["Archived kite", "Blue shirt", "Yo-yo"]
    assert names(inStock=False) == ["Gift card", "Red scarf"]
    assert names(search="COTTON") == ["Archived kite", "Blue shirt"]  # description
    assert names(search="toy-yo") == ["Yo-yo"]  # SKU
    assert names(search="scarf", status=["ACTIVE"], inStock=False) == ["Red scarf"]
    for bad in ({"priceMin": "-1"}, {"priceMin": "5", "priceMax": "4"}):
        response = gql.post(PRODUCTS, {"filter": bad}, host=alpha.host, token=staff)
        assert response.codes == ["BAD_REQUEST"]


def test_products_sorts(gql, alpha, staff, shelf):
    assert _names(gql, alpha, staff)[0] == "Gift card"  # newest first by default
    assert (
        _names(gql, alpha, staff, sort={"field": "CREATED", "descending": False})[0] == "Blue shirt"
    )
    assert _names(gql, alpha, staff, sort={"field": "NAME", "descending": False}) == [
        "Archived kite",
        "Blue shirt",
        "Gift card",
        "Red scarf",
        "Yo-yo",
    ]
    # by the cheapest variant; a product without variants last either way
    assert _names(gql, alpha, staff, sort={"field": "PRICE", "descending": False}) == [
        "Yo-yo",
        "Red scarf",
        "Blue shirt",
        "Archived kite",
        "Gift card",
    ]
    assert _names(gql, alpha, staff, sort={"field": "PRICE", "descending": True}) == [
        "Archived kite",
        "Blue shirt",
        "Red scarf",
        "Yo-yo",
        "Gift card",
    ]


def test_products_pages_follow_cursors(gql, alpha, staff, shelf):
    query = """query($after: String) { products(first: 2, after: $after, sort: {field: NAME, descending: false}) {
      pageInfo { hasNextPage endCursor } edges { node { name } } } }"""
    seen, after = [], None
    while True:
        page = gql.post(query, {"after": after}, host=alpha.host, token=staff).data["products"]
        seen += [edge["node"]["name"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["Archived kite", "Blue shirt", "Gift card", "Red scarf", "Yo-yo"]


def test_categories_connection_filters(gql, alpha, staff, shelf):
    query = """query($filter: CategoryFilter) { categories(first: 20, filter: $filter) {
      totalCount edges { node { name parent { name } children { name } } } } }"""

    def names(**filter):
        data = gql.post(query, {"filter": filter}, host=alpha.host, token=staff).data["categories"]
        return sorted(edge["node"]["name"] for edge in data["edges"])

    assert names() == ["Clothes", "Shirts", "Toys"]
    assert names(topLevel=True) == ["Clothes", "Toys"]
    assert names(parent=gid(alpha, "Category", shelf["clothes"].pk)) == ["Shirts"]
    assert names(search="toy") == ["Toys"]


# --- query counts -------------------------------------------------------------------------------

PAGE = """query($first: Int!) { products(first: $first) { edges { node {
  name category { name } variants { sku price { amount } stock } images { url(size: 160) altText } } } } }"""


def _bulk_catalog(fixture, count: int) -> None:
    with tenant_context(fixture.tenant):
        categories = Category.objects.bulk_create(
            [Category(name=f"Category {n}", slug=f"category-{n}") for n in range(5)]
        )
        products = Product.objects.bulk_create(
            [
                Product(name=f"Product {n}", slug=f"product-{n}", category=categories[n % 5])
                for n in range(count)
            ]
        )
        Variant.objects.bulk_create(
            [
                Variant(product=p, sku=f"SKU-{p.pk}-{k}", price=Decimal("9.99") + k, stock=k)
                for p in products
                for k in range(2)
            ]
        )
        ProductImage.objects.bulk_create(
            [
                ProductImage(
                    product=p,
                    image=f"products/{p.pk}/{k}.png",
                    alt_text=f"{p.name} {k}",
                    position=k,
                    width=800,
                    height=800,
                    renditions={"160": f"products/{p.pk}/{k}-160.webp"},
                )
                for p in products
                for k in range(2)
            ]
        )


def _queries(gql, fixture, token, first: int) -> tuple[list[str], dict]:
    with CaptureQueriesContext(connection) as captured:
        response = gql.post(PAGE, {"first": first}, host=fixture.host, token=token)
    assert response.errors == [], response.body
    return [query["sql"] for query in captured.captured_queries], response.data


@pytest.mark.parametrize("compiler", [False, True], ids=["resolver path", "compiled"])
def test_a_product_page_costs_the_same_queries_for_10_or_100_products(
    gql, alpha, staff, settings, compiler
):
    settings.GRAPHQL_COMPILER = compiler
    _bulk_catalog(alpha, 100)
    few, data = _queries(gql, alpha, staff, 10)
    many, data_many = _queries(gql, alpha, staff, 100)
    assert len(data["products"]["edges"]) == 10 and len(data_many["products"]["edges"]) == 100
    node = data_many["products"]["edges"][0]["node"]
    assert node["category"]["name"].startswith("Category ") and len(node["variants"]) == 2
    assert node["images"][0]["url"].endswith("-160.webp") and node["images"][0]["url"].startswith(
        "http://"
    )
    assert len(many) == len(few)
    catalog = [sql for sql in many if '"catalog_' in sql]
    if compiler:  # schema/compiler: the page as JSON from one statement
        assert len(catalog) == 1 and catalog[0].startswith("SELECT (json_build_object(")
        return
    # products with their category joined, then variants, then images; the rest is authentication
    tables = [sql.split(" FROM ")[1].split()[0] for sql in catalog]
    assert tables == ['"catalog_product"', '"catalog_variant"', '"catalog_productimage"']
