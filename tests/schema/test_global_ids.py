"""Ids name their tenant (DESIGN §3) and malformed ids and cursors answer a code, never INTERNAL
(§12). Every argument and input field of type ID is found by walking the schema: an id minted in
another tenant for a row this tenant has under the same number, an altered one and malformed ones
must each be answered exactly as an id of nothing is, through the real request path."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_composite_type,
    parse,
    validate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.models import ApiKey, Membership
from apps.alerts.models import AlertRule, Notification
from apps.analytics.models import Report, Widget
from apps.audit.models import AuditEntry
from apps.catalog.models import Category, Product, ProductImage, Variant
from apps.customers.models import Customer, CustomerNote
from apps.exports.models import Export
from apps.orders.models import Order, OrderLine, Refund
from apps.payments.models import Payment
from schema import schema
from schema.permissions import RULES
from tests.apps.orders import shop
from tests.conftest import PLATFORM_HOST, gid, token_for

GRAPHQL = schema._schema
MISSING = 999_999_999  # a pk no row has

# Every ID slot of the schema and the type its id names ("Root.field(argument.path)"). A new
# one fails test_the_table_names_every_id_slot until it is added here, and so is tested.
SLOTS = {
    "Query.node(id)": "Product",
    "Query.tenant(id)": "Tenant",
    "Query.products(filter.category)": "Category",
    "Query.categories(filter.parent)": "Category",
    "Query.orders(filter.customer)": "Customer",
    "Query.payments(filter.order)": "Order",
    "Query.paymentMethods(customer)": "Customer",
    "Query.analytics(query.filters.productIds)": "Product",
    "Query.analytics(query.filters.categoryIds)": "Category",
    "Query.report(id)": "Report",
    "Query.reportRun(id)": "Report",
    "Mutation.memberUpdateRole(id)": "Member",
    "Mutation.memberRemove(id)": "Member",
    "Mutation.apiKeyRevoke(id)": "ApiKey",
    "Mutation.platformTenantUpdate(id)": "Tenant",
    "Mutation.tenantSuspend(id)": "Tenant",
    "Mutation.tenantResume(id)": "Tenant",
    "Mutation.categoryCreate(input.parent)": "Category",
    "Mutation.categoryUpdate(id)": "Category",
    "Mutation.categoryUpdate(input.parent)": "Category",
    "Mutation.categoryDelete(id)": "Category",
    "Mutation.productCreate(input.category)": "Category",
    "Mutation.productUpdate(id)": "Product",
    "Mutation.productUpdate(input.category)": "Category",
    "Mutation.productDelete(id)": "Product",
    "Mutation.variantCreate(product)": "Product",
    "Mutation.variantUpdate(id)": "Variant",
    "Mutation.variantDelete(id)": "Variant",
    "Mutation.productImageUpload(product)": "Product",
    "Mutation.productImagesUpload(product)": "Product",
    "Mutation.productImageUpdate(id)": "ProductImage",
    "Mutation.productImageDelete(id)": "ProductImage",
    "Mutation.productImagesReorder(product)": "Product",
    "Mutation.productImagesReorder(images)": "ProductImage",
    "Mutation.customerUpdate(id)": "Customer",
    "Mutation.customerDelete(id)": "Customer",
    "Mutation.customerNoteAdd(customerId)": "Customer",
    "Mutation.orderCreate(input.lines.variant)": "Variant",
    "Mutation.orderCreate(input.customer)": "Customer",
    "Mutation.orderUpdateStatus(id)": "Order",
    "Mutation.orderCancel(id)": "Order",
    "Mutation.refundCreate(input.order)": "Order",
    "Mutation.refundCreate(input.lines.line)": "OrderLine",
    "Mutation.paymentIntentCreate(order)": "Order",
    "Mutation.paymentConfirm(payment)": "Payment",
    "Mutation.paymentMarkPaid(order)": "Order",
    "Mutation.paymentMethodAttach(customer)": "Customer",
    "Mutation.paymentMethodDetach(customer)": "Customer",
    "Mutation.paymentMethodSetDefault(customer)": "Customer",
    "Mutation.eventsTrack(events.customer)": "Customer",
    "Mutation.eventsTrack(events.product)": "Product",
    "Mutation.eventsTrack(events.order)": "Order",
    "Mutation.widgetUpdate(id)": "Widget",
    "Mutation.widgetDelete(id)": "Widget",
    "Mutation.widgetsReorder(widgets)": "Widget",
    "Mutation.reportUpdate(id)": "Report",
    "Mutation.reportDelete(id)": "Report",
    "Mutation.alertRuleUpdate(id)": "AlertRule",
    "Mutation.alertRuleDelete(id)": "AlertRule",
    "Mutation.notificationMarkRead(ids)": "Notification",
    # over WebSocket only: tests/apps/exports/test_progress_subscription.py
    "Subscription.exportProgress(id)": "Export",
}
ROOTS = {
    "Query": GRAPHQL.query_type,
    "Mutation": GRAPHQL.mutation_type,
    "Subscription": GRAPHQL.subscription_type,
}


def _id_paths(gtype, path: list[str]):
    named = get_named_type(gtype)
    if isinstance(named, GraphQLScalarType) and named.name == "ID":
        yield path
    elif isinstance(named, GraphQLInputObjectType):
        for name, field in named.fields.items():
            yield from _id_paths(field.type, [*path, name])


def _walk() -> list[str]:
    return [
        f"{root}.{name}({'.'.join(path)})"
        for root, gtype in ROOTS.items()
        for name, field in gtype.fields.items()
        for argument, arg in field.args.items()
        for path in _id_paths(arg.type, [argument])
    ]


def test_the_table_names_every_id_slot():
    assert sorted(_walk()) == sorted(SLOTS)


# --- one operation per slot ---------------------------------------------------------------------

LITERALS = {
    "String": '"x"',
    "ID": '"x"',
    "Int": "1",
    "Float": "1.0",
    "Boolean": "true",
    "JSON": "{}",
    "DateTime": '"2026-01-01T00:00:00+00:00"',
    "Decimal": '"1"',
    "Date": '"2026-01-01"',
    "Upload": '"x"',
}


def _value(gtype, path: list[str] | None) -> str:
    """A literal of `gtype`: its required parts only, and `$id` where `path` leads (None: nowhere)."""
    if isinstance(gtype, GraphQLNonNull):
        return _value(gtype.of_type, path)
    if isinstance(gtype, GraphQLList):
        return f"[{_value(gtype.of_type, path)}]"
    if path == []:
        return "$id"
    if isinstance(gtype, GraphQLEnumType):
        return next(iter(gtype.values))
    if isinstance(gtype, GraphQLInputObjectType):
        parts = [
            f"{name}: {_value(field.type, path[1:] if path and path[0] == name else None)}"
            for name, field in gtype.fields.items()
            if isinstance(field.type, GraphQLNonNull) or (path and path[0] == name)
        ]
        return "{" + ", ".join(parts) + "}"
    return LITERALS[gtype.name]


def _selection(gtype) -> str:
    """What tells answers apart: a payload's userErrors and what it holds, a list's size."""
    named = get_named_type(gtype)
    if not is_composite_type(named):
        return ""
    if not isinstance(named, GraphQLObjectType):  # an interface (`node`): which type, if any
        return "{ __typename }"
    if "totalCount" in named.fields:
        return "{ totalCount }"
    parts = ["__typename"]
    if "userErrors" in named.fields:
        for name, field in named.fields.items():
            inner = get_named_type(field.type)
            if name == "userErrors":
                parts.append("userErrors { field code }")
            elif any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values()):
                continue
            elif isinstance(inner, GraphQLObjectType):
                parts.append(f"{name} {{ __typename }}")
            else:
                parts.append(name)
    return "{ " + " ".join(parts) + " }"


def operation(slot: str) -> str:
    field_path, _, inner = slot.partition("(")
    root, name = field_path.split(".")
    argument, *path = inner.rstrip(")").split(".")
    field = ROOTS[root].fields[name]
    args = [
        f"{arg}: {_value(a.type, path if arg == argument else None)}"
        for arg, a in field.args.items()
        if isinstance(a.type, GraphQLNonNull) or arg == argument
    ]
    return (
        f"{root.lower()}($id: ID!) {{ answer: {name}({', '.join(args)}) {_selection(field.type)} }}"
    )


@pytest.fixture
def rows(alpha) -> dict[str, int]:
    """One row of each type in alpha: the pks that ids from elsewhere must never reach."""
    with tenant_context(alpha.tenant):
        category = Category.objects.create(name="Hats", slug="hats-ids")
        variant = shop.variant("10.00", stock=10)
        Product.objects.filter(pk=variant.product_id).update(category=category)
        order = shop.place(alpha, [(variant, 2)], email="ids@example.com")
        rule = AlertRule.objects.create(
            name="Rule",
            metric="gross_sales",
            comparison="above",
            window_days=1,
            threshold=Decimal("1"),
        )
        made = {
            "Category": category.pk,
            "Product": variant.product_id,
            "Variant": variant.pk,
            "ProductImage": ProductImage.objects.create(
                product_id=variant.product_id, image="x.png"
            ).pk,
            "Customer": Customer.objects.get(email="ids@example.com").pk,
            "Order": order.pk,
            "OrderLine": order.lines.get().pk,
            "Payment": Payment.objects.create(
                order=order, provider="manual", amount=order.total, currency="USD", attempt=1
            ).pk,
            "Report": Report.objects.create(name="Report", definition={}).pk,
            "Widget": Widget.objects.create(title="Widget", kind="kpi", definition={}).pk,
            "AlertRule": rule.pk,
            "Notification": Notification.objects.create(rule=rule, title="t", body="b").pk,
            "Export": Export.objects.create(kind="products", format="csv").pk,
            "Refund": Refund.objects.create(order=order, amount=Decimal("1.00")).pk,
            "CustomerNote": CustomerNote.objects.create(
                customer_id=order.customer_id, body="note"
            ).pk,
            "AuditEntry": AuditEntry.objects.filter(action="order.create").get().pk,
        }
    made["Member"] = Membership.objects.get(
        tenant=alpha.tenant, user__email=alpha.email("viewer")
    ).pk
    made["ApiKey"] = ApiKey.objects.create(
        tenant=alpha.tenant, name="k", prefix="ids-key", secret_hash="x", role="viewer"
    ).pk
    made["Tenant"] = alpha.tenant.pk
    made["User"] = Membership.objects.get(pk=made["Member"]).user_id
    return made


def tampered(text: str, at: int) -> str:
    """`text` with the character at `at` replaced by another of the id alphabet."""
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def old_style(type_name: str, pk: int) -> str:
    """What ids were before they named a tenant: base64 of "Type:pk" (the reported attack)."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


MALFORMED = [
    "",
    "abc",
    "!!!",
    base64.b64encode(b"Order:abc").decode(),
    base64.b64encode(b"foo").decode(),
    "A" * 5000,
    "\x00",
    "T3JkZXI6MQ==\x00",
    "1",
    "-1",
    "😀" * 10,
]


def outcome(response) -> tuple:
    """An answer as a client acts on it: the error codes and the data (userErrors without text)."""
    assert "INTERNAL" not in response.codes, response.body
    return sorted(response.codes), response.data


@pytest.mark.parametrize("slot", [slot for slot in SLOTS if not slot.startswith("Subscription.")])
def test_an_id_from_elsewhere_is_an_id_of_nothing(gql, alpha, beta, rows, slot):
    type_name = SLOTS[slot]
    on_platform = RULES[slot.partition("(")[0]].where == "platform"
    home, elsewhere = (None, alpha) if on_platform else (alpha, beta)
    host = PLATFORM_HOST if on_platform else alpha.host
    token = token_for(
        "staff@platform.test" if on_platform else alpha.email("owner"),
        None if on_platform else alpha.tenant,
    )
    query, pk = operation(slot), rows[type_name]
    assert validate(GRAPHQL, parse(query)) == [], query  # else every answer is the same refusal

    def answer(value: str) -> tuple:
        return outcome(gql.post(query, {"id": value}, host=host, token=token))

    nothing = answer(gid(home, type_name, MISSING))
    real = gid(home, type_name, pk)
    given = {
        "minted elsewhere": gid(elsewhere, type_name, pk),
        "old style": old_style(type_name, pk),
        "altered": tampered(real, len(real) // 2),
        "altered at the end": tampered(real, len(real) - 1),
        "another type": gid(home, "Tenant" if type_name != "Tenant" else "Product", pk),
        **{f"malformed {text[:8]!r}": text for text in MALFORMED},
    }
    expected = {
        what: (["BAD_REQUEST"], None) if "\x00" in value else nothing
        for what, value in given.items()
    }
    # A NUL is refused at the edge before any id is read, wherever it is (PostgreSQL cannot store
    # one): BAD_REQUEST, the one rule for NULs, not this one.
    if slot == "Query.node(id)" and pk == alpha.tenant.pk:
        # `node` takes any type: a Tenant id whose pk happens to be alpha's own (the sequences
        # met, as in one make test-stress order) names alpha's tenant, a real object of that type,
        # and never the Product of that pk.
        expected["another type"] = ([], {"node": {"id": given["another type"]}})
    for what, value in given.items():
        assert answer(value) == expected[what], (what, value[:40])


# --- what the reported attacks did, row by row ---------------------------------------------------

ORDER_CREATE = """mutation($v: ID!) { orderCreate(input: {lines: [{variant: $v, quantity: 1}], email: "x@example.com"})
  { order { id } userErrors { field code } } }"""
REFUND = (
    """mutation($o: ID!) { refundCreate(input: {order: $o, amount: "1.00"}) { refund { id """
    """} userErrors { field code } } }"""
)
NODE = "query($id: ID!) { node(id: $id) { id ... on Product { name } } }"


def _orders_and_stock(fixture, variant_pk: int) -> tuple[int, int]:
    with tenant_context(fixture.tenant):
        return Order.objects.count(), Variant.objects.get(pk=variant_pk).stock


def test_another_tenants_variant_id_places_no_order(gql, alpha, beta, rows):
    token = shop.staff(alpha)
    before = _orders_and_stock(alpha, rows["Variant"])
    for variant_id in (
        gid(beta, "Variant", rows["Variant"]),
        old_style("Variant", rows["Variant"]),
    ):
        response = gql.post(ORDER_CREATE, {"v": variant_id}, host=alpha.host, token=token)
        assert response.data["orderCreate"] == {
            "order": None,
            "userErrors": [{"field": "lines.0.variant", "code": "NOT_FOUND"}],
        }
    assert _orders_and_stock(alpha, rows["Variant"]) == before
    placed = gql.post(
        ORDER_CREATE, {"v": gid(alpha, "Variant", rows["Variant"])}, host=alpha.host, token=token
    )
    assert placed.data["orderCreate"]["userErrors"] == []  # the same variant by its own id: sold
    assert _orders_and_stock(alpha, rows["Variant"]) == (before[0] + 1, before[1] - 1)


def _refunds(fixture, order_pk: int) -> tuple[int, str, Decimal]:
    with tenant_context(fixture.tenant):
        order = Order.objects.get(pk=order_pk)
        return Refund.objects.count(), order.status, order.refunded_total


def test_another_tenants_order_id_refunds_nothing(gql, alpha, beta, rows):
    token = shop.staff(alpha)
    with tenant_context(alpha.tenant):
        Order.objects.filter(pk=rows["Order"]).update(status="paid")
    before = _refunds(alpha, rows["Order"])
    for order_id in (gid(beta, "Order", rows["Order"]), old_style("Order", rows["Order"])):
        response = gql.post(REFUND, {"o": order_id}, host=alpha.host, token=token)
        assert response.data["refundCreate"] == {
            "refund": None,
            "userErrors": [{"field": "order", "code": "NOT_FOUND"}],
        }
    assert _refunds(alpha, rows["Order"]) == before
    refunded = gql.post(
        REFUND, {"o": gid(alpha, "Order", rows["Order"])}, host=alpha.host, token=token
    )
    assert refunded.data["refundCreate"]["userErrors"] == []
    assert _refunds(alpha, rows["Order"])[0] == before[0] + 1


def test_ids_are_unique_across_tenants_and_read_back_only_where_minted(gql, alpha, beta):
    made = {}
    for fixture in (alpha, beta):
        with tenant_context(fixture.tenant):
            made[fixture.slug] = shop.variant("5.00", name=f"Same in {fixture.slug}").product
    token = shop.staff(alpha)
    listed = gql.post(
        "{ products(first: 100) { edges { node { id name } } } }", host=alpha.host, token=token
    )
    mine = {edge["node"]["name"]: edge["node"]["id"] for edge in listed.data["products"]["edges"]}
    alpha_id = mine["Same in alpha"]
    assert alpha_id == gid(alpha, "Product", made["alpha"].pk)
    assert alpha_id != gid(
        beta, "Product", made["alpha"].pk
    )  # the same number elsewhere is another id
    assert alpha_id != old_style("Product", made["alpha"].pk)
    found = gql.post(NODE, {"id": alpha_id}, host=alpha.host, token=token).data["node"]
    assert found == {"id": alpha_id, "name": "Same in alpha"}
    elsewhere = gql.post(NODE, {"id": alpha_id}, host=beta.host, token=shop.staff(beta))
    assert elsewhere.errors == [] and elsewhere.data == {"node": None}


NODE_TYPES = sorted(
    t.name
    for t in GRAPHQL.type_map.values()
    if isinstance(t, GraphQLObjectType) and any(i.name == "Node" for i in t.interfaces)
)


def test_every_node_type_shows_and_finds_its_tenants_ids(gql, alpha, beta, rows):
    """Each Node type's `id` is the codec's, minted here, and `node` finds the row by it (a new Node
    type fails here until `rows` makes one of it)."""
    assert set(NODE_TYPES) <= set(rows)
    token = token_for(alpha.email("owner"), alpha.tenant)
    for type_name in NODE_TYPES:
        mine = gid(alpha, type_name, rows[type_name])
        found = gql.post(
            "query($id: ID!) { node(id: $id) { __typename id } }",
            {"id": mine},
            host=alpha.host,
            token=token,
        )
        assert found.data == {"node": {"__typename": type_name, "id": mine}}, (
            type_name,
            found.body,
        )
        elsewhere = gql.post(
            "query($id: ID!) { node(id: $id) { id } }",
            {"id": gid(beta, type_name, rows[type_name])},
            host=alpha.host,
            token=token,
        )
        assert (elsewhere.errors, elsewhere.data) == ([], {"node": None}), type_name


def test_every_altered_character_is_an_id_of_nothing(gql, alpha, rows):
    token = shop.staff(alpha)
    real = gid(alpha, "Product", rows["Product"])
    assert gql.post(NODE, {"id": real}, host=alpha.host, token=token).data["node"]["id"] == real
    for at in range(len(real)):
        response = gql.post(NODE, {"id": tampered(real, at)}, host=alpha.host, token=token)
        assert (response.errors, response.data) == ([], {"node": None}), at


def test_only_what_graphql_refuses_as_an_id_is_a_bad_request(gql, alpha):
    token = shop.staff(alpha)
    for value in ({"id": 1}, ["x"], True, 1.5, None):
        response = gql.post(NODE, {"id": value}, host=alpha.host, token=token)
        assert (response.codes, response.data) == (["BAD_REQUEST"], None), value
    for literal in ("7", '"7"'):  # an integer is an ID too (as text): one that names nothing
        response = gql.post(f"{{ node(id: {literal}) {{ id }} }}", host=alpha.host, token=token)
        assert (response.errors, response.data) == ([], {"node": None}), literal


def test_node_of_nothing_costs_what_it_returned(gql, alpha, rows):
    token = shop.staff(alpha)
    for value, actual in [
        ("abc", 0),
        ("", 0),
        (gid(alpha, "Product", MISSING), 0),
        (gid(alpha, "Product", rows["Product"]), 1),
    ]:
        cost = gql.post(NODE, {"id": value}, host=alpha.host, token=token).body["extensions"][
            "cost"
        ]
        assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (1, actual), value


# --- ids inside JSON: definitions and export filters ---------------------------------------------


def test_ids_inside_definitions_and_filters_name_their_tenant(gql, alpha, beta, rows):
    token = token_for(alpha.email("owner"), alpha.tenant)
    run = """mutation($d: JSON!) { widgetCreate(input: {title: "W", kind: KPI, definition: $d}) {
      widget { definition } userErrors { field code } } }"""
    definition = {"metrics": ["product_revenue"], "range": "last_7_days"}
    for product_id in (
        gid(beta, "Product", rows["Product"]),
        old_style("Product", rows["Product"]),
    ):
        refused = gql.post(
            run,
            {"d": {**definition, "filters": {"productIds": [product_id]}}},
            host=alpha.host,
            token=token,
        )
        assert refused.data["widgetCreate"]["userErrors"] == [
            {"field": "definition.filters.productIds", "code": "NOT_FOUND"}
        ]
    own = gid(alpha, "Product", rows["Product"])
    saved = gql.post(
        run, {"d": {**definition, "filters": {"productIds": [own]}}}, host=alpha.host, token=token
    )
    assert saved.data["widgetCreate"]["widget"]["definition"]["filters"]["productIds"] == [own]

    export = """mutation($f: JSON) { exportCreate(kind: REPORT, format: CSV, filters: $f) { export { id }
      userErrors { field code } } }"""
    for report_id in (
        gid(beta, "Report", rows["Report"]),
        old_style("Report", rows["Report"]),
        "!!!",
    ):
        refused = gql.post(export, {"f": {"report": report_id}}, host=alpha.host, token=token)
        assert refused.data["exportCreate"]["userErrors"] == [
            {"field": "filters.report", "code": "NOT_FOUND"}
        ]


# --- any text as an id ---------------------------------------------------------------------------

ID_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=80
    ),
    st.binary(max_size=80).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
)
PRODUCT_UPDATE = """mutation($id: ID!) { productUpdate(id: $id, input: {name: "Renamed"}) { product { id }
  userErrors { field code } } }"""
ORDER_CANCEL = (
    "mutation($id: ID!) { orderCancel(id: $id) { order { id } userErrors { field code } } }"
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=ID_TEXT,
    edit=st.tuples(
        st.integers(0, 200),
        st.sampled_from(["replace", "insert", "delete", "cut"]),
        st.characters(),
    ),
)
def test_no_text_is_an_internal_error_or_reaches_a_row(gql, alpha, rows, text, edit):
    token = token_for(alpha.email("owner"), alpha.tenant)
    real = gid(alpha, "Product", rows["Product"])
    at, how, char = edit
    at %= len(real)
    mutated = {
        "replace": real[:at] + char + real[at + 1 :],
        "insert": real[:at] + char + real[at:],
        "delete": real[:at] + real[at + 1 :],
        "cut": real[:at],
    }[how]
    for value in (text, mutated):
        if value == real:
            continue
        node = gql.post(NODE, {"id": value}, host=alpha.host, token=token)
        if "\x00" in value:
            # Refused at the edge before any id is read (PostgreSQL cannot store a NUL): the one
            # rule for NULs (schema/extensions/strings.py), and no row reached either.
            assert (node.codes, node.data) == (["BAD_REQUEST"], None), value
            continue
        assert (node.errors, node.data) == ([], {"node": None}), value
        updated = gql.post(PRODUCT_UPDATE, {"id": value}, host=alpha.host, token=token)
        assert updated.data["productUpdate"] == {
            "product": None,
            "userErrors": [{"field": "id", "code": "NOT_FOUND"}],
        }
        cancelled = gql.post(ORDER_CANCEL, {"id": value}, host=alpha.host, token=token)
        assert cancelled.data["orderCancel"]["order"] is None, value
        assert [e["code"] for e in cancelled.data["orderCancel"]["userErrors"]] == ["NOT_FOUND"], (
            value
        )
    with tenant_context(alpha.tenant):
        assert Product.objects.get(pk=rows["Product"]).name != "Renamed"
        assert Order.objects.get(pk=rows["Order"]).status != "cancelled"
        assert OrderLine.objects.get(pk=rows["OrderLine"]).quantity == 2


# --- cursors -------------------------------------------------------------------------------------

PAGE = """query($after: String, $before: String) { products(first: 2, after: $after, before: $before) {
  totalCount edges { cursor node { id } } pageInfo { endCursor } } }"""
SEGMENT_PAGE = "query($after: String) { customerSegments { customers(first: 1, after: $after) { totalCount } } }"
BAD_CURSORS = [
    "",
    "abc",
    "!!!",
    "\x00",
    "A" * 5000,
    base64.b64encode(b"arrayconnection:abc").decode(),
    base64.b64encode(b"arrayconnection:-5").decode(),
    base64.b64encode(b"arrayconnection:").decode(),
    base64.b64encode(b"arrayconnection:99999999999999999999").decode(),
    base64.b64encode(b"Product:1").decode(),
    base64.b64encode(b"arrayconnection:1").decode().rstrip("="),
    base64.b64encode(b"arrayconnection:01").decode(),
]


def test_a_cursor_a_page_gave_works_and_any_other_text_is_a_bad_request(gql, alpha):
    with tenant_context(alpha.tenant):
        for n in range(3):
            shop.variant(name=f"Paged {n}")
    token = shop.staff(alpha)
    first = gql.post(PAGE, host=alpha.host, token=token).data["products"]
    after = gql.post(PAGE, {"after": first["pageInfo"]["endCursor"]}, host=alpha.host, token=token)
    assert after.errors == [] and len(after.data["products"]["edges"]) == 1
    before = gql.post(PAGE, {"before": first["edges"][1]["cursor"]}, host=alpha.host, token=token)
    assert [e["node"]["id"] for e in before.data["products"]["edges"]] == [
        first["edges"][0]["node"]["id"]
    ]
    for cursor in BAD_CURSORS:
        for variables in ({"after": cursor}, {"before": cursor}):
            response = gql.post(PAGE, variables, host=alpha.host, token=token)
            assert (response.codes, response.data) == (["BAD_REQUEST"], None), (
                variables,
                response.body,
            )
        nested = gql.post(SEGMENT_PAGE, {"after": cursor}, host=alpha.host, token=token)
        assert (nested.codes, nested.data) == (["BAD_REQUEST"], None), (cursor, nested.body)
    literal = gql.post(
        '{ products(first: 1, after: "nope") { totalCount } }', host=alpha.host, token=token
    )
    assert literal.codes == ["BAD_REQUEST"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cursor=st.one_of(
        st.text(max_size=100),
        st.integers(-10, 10**12).map(
            lambda n: base64.b64encode(f"arrayconnection:{n}".encode()).decode()
        ),
    )
)
def test_any_cursor_text_is_a_page_or_a_bad_request(gql, alpha, cursor):
    response = gql.post(PAGE, {"after": cursor}, host=alpha.host, token=shop.staff(alpha))
    valid = cursor == base64.b64encode(f"arrayconnection:{cursor_number(cursor)}".encode()).decode()
    if valid:
        assert response.errors == [], response.body
    else:
        assert (response.codes, response.data) == (["BAD_REQUEST"], None), response.body


def cursor_number(cursor: str) -> int | None:
    """The offset of a cursor as pages give them (at most 10**9 deep), else None."""
    try:
        text = base64.b64decode(cursor, validate=True).decode()
    except ValueError:
        return None
    prefix, _, number = text.partition(":")
    ok = (
        prefix == "arrayconnection"
        and number.isascii()
        and number.isdigit()
        and int(number) <= 10**9
    )
    return int(number) if ok else None
