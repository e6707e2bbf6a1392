"""The permission table is complete, and every mutation and root query answers each role as
the table says, through the real HTTP path."""

from __future__ import annotations

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)

from apps.accounts.models import Role
from schema import schema
from schema.permissions import RULES
from tests.conftest import PLATFORM_HOST, token_for

GRAPHQL = schema._schema
ROOTS = {
    "Query": GRAPHQL.query_type,
    "Mutation": GRAPHQL.mutation_type,
    "Subscription": GRAPHQL.subscription_type,
}
ROOT_FIELDS = sorted(f"{root}.{name}" for root, gtype in ROOTS.items() for name in gtype.fields)
NODE_TYPES = sorted(
    t.name
    for t in GRAPHQL.type_map.values()
    if isinstance(t, GraphQLObjectType) and any(i.name == "Node" for i in t.interfaces)
)


def test_every_root_field_has_a_rule():
    missing = [name for name in ROOT_FIELDS if name not in RULES]
    assert missing == []


def test_every_node_type_has_a_rule():
    assert [name for name in NODE_TYPES if name not in RULES] == []


def test_no_rule_names_something_that_does_not_exist():
    known = set(ROOT_FIELDS) | {name for name in GRAPHQL.type_map}
    assert [name for name in RULES if name not in known] == []


SCALAR_LITERALS = {
    "String": '"x"',
    "ID": '"eDox"',
    "GlobalID": '"eDox"',
    "Int": "1",
    "Float": "1.0",
    "Boolean": "true",
    "DateTime": '"2099-01-01T00:00:00+00:00"',
    "JSON": "{}",
    "Decimal": '"1"',
    "Date": '"2099-01-01"',
    "Upload": '"x"',  # not a file: the mutation answers with a userError
}


def _literal(gtype) -> str:
    if isinstance(gtype, GraphQLNonNull):
        return _literal(gtype.of_type)
    if isinstance(gtype, GraphQLList):
        return f"[{_literal(gtype.of_type)}]"
    if isinstance(gtype, GraphQLEnumType):
        return next(iter(gtype.values))
    if isinstance(gtype, GraphQLInputObjectType):
        required = [
            f"{name}: {_literal(field.type)}"
            for name, field in gtype.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        ]
        return "{" + ", ".join(required) + "}"
    assert isinstance(gtype, GraphQLScalarType)
    return SCALAR_LITERALS[gtype.name]


def _operation(root: str, name: str) -> str:
    field = ROOTS[root].fields[name]
    args = [
        f"{arg}: {_literal(a.type)}"
        for arg, a in field.args.items()
        if isinstance(a.type, GraphQLNonNull)
    ]
    call = f"{name}({', '.join(args)})" if args else name
    keyword = {"Query": "query", "Mutation": "mutation"}[root]
    return f"{keyword} {{ {call} {{ __typename }} }}"


def _expected_on_tenant_host(rule, role: str | None) -> str | None:
    if rule.where == "platform":
        return "BAD_REQUEST"
    if rule.anonymous:
        return None
    if role is None:
        return "UNAUTHENTICATED"
    return None if role in rule.roles else "FORBIDDEN"


GUARDED = [
    name
    for name in ROOT_FIELDS
    if not name.startswith("Subscription.") and not RULES[name].anonymous
]


@pytest.mark.parametrize("field_name", GUARDED)
@pytest.mark.parametrize("role", [None, *Role.values])
def test_each_root_field_answers_each_role_as_the_table_says(gql, alpha, field_name, role):
    root, name = field_name.split(".")
    token = token_for(alpha.email(role), alpha.tenant) if role else None
    response = gql.post(_operation(root, name), host=alpha.host, token=token)
    expected = _expected_on_tenant_host(RULES[field_name], role)
    guard_codes = {"UNAUTHENTICATED", "FORBIDDEN", "BAD_REQUEST"}
    got = [code for code in response.codes if code in guard_codes]
    if expected is None:
        assert got == [], (field_name, role, response.body)
    else:
        assert got == [expected], (field_name, role, response.body)
        assert response.data is None  # refused before anything ran


# What readers may change: analysts keep their dashboards (widgets) and reports; nothing else.
READER_MUTATIONS = {
    Role.VIEWER: set(),
    Role.ANALYST: {
        "widgetCreate",
        "widgetUpdate",
        "widgetDelete",
        "widgetsReorder",
        "reportCreate",
        "reportUpdate",
        "reportDelete",
        # alerts (schema/alerts.py): analysts manage rules, every analytics role marks read
        "alertRuleCreate",
        "alertRuleUpdate",
        "alertRuleDelete",
        "notificationMarkRead",
        # exports (schema/exports.py): the rule, analyst role and above
        "exportCreate",
    },
}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST])
def test_readers_cannot_mutate_anything_that_needs_a_role(gql, alpha, role):
    token = token_for(alpha.email(role), alpha.tenant)
    allowed = set()
    for name in ROOTS["Mutation"].fields:
        rule = RULES[f"Mutation.{name}"]
        if rule.anonymous or rule.where == "platform":
            continue
        if role in rule.roles:
            allowed.add(name)
            continue
        response = gql.post(_operation("Mutation", name), host=alpha.host, token=token)
        assert response.codes == ["FORBIDDEN"], (name, response.body)
    assert allowed == READER_MUTATIONS[role]


def test_a_read_only_api_key_cannot_mutate(gql, alpha):
    from apps.accounts.authentication import Principal
    from apps.accounts.models import User
    from apps.accounts.services import create_api_key

    owner = Principal(
        tenant=alpha.tenant,
        user=User.objects.get(email=alpha.email("owner")),
        role=Role.OWNER,
        via="jwt",
    )
    _, secret = create_api_key(
        actor=owner, tenant=alpha.tenant, name="ro", role=Role.ADMIN, scopes=["read"]
    )
    read = gql.post("{ tenant { slug } }", host=alpha.host, api_key=secret)
    assert read.data == {"tenant": {"slug": "alpha"}}
    write = gql.post(
        'mutation { tenantUpdate(input: {name: "Nope"}) { tenant { name } } }',
        host=alpha.host,
        api_key=secret,
    )
    assert write.codes == ["FORBIDDEN"]
    assert "scope" in write.errors[0]["message"]


def test_platform_fields_need_platform_staff(gql, alpha):
    query = "{ tenants(first: 5) { totalCount } }"
    assert gql.post(query, host=PLATFORM_HOST).codes == ["UNAUTHENTICATED"]
    staff = gql.post(query, host=PLATFORM_HOST, token=token_for("staff@platform.test", None))
    assert staff.errors == [] and staff.data["tenants"]["totalCount"] >= 2
    owner = gql.post(query, host=alpha.host, token=token_for(alpha.email("owner"), alpha.tenant))
    assert owner.codes == ["BAD_REQUEST"]


def test_tenant_fields_need_a_tenant(gql, alpha):
    staff = token_for("staff@platform.test", None)
    response = gql.post("{ tenant { slug } }", host=PLATFORM_HOST, token=staff)
    assert response.codes == ["BAD_REQUEST"]


MANAGEMENT = [
    "memberAdd",
    "memberUpdateRole",
    "memberRemove",
    "apiKeyCreate",
    "apiKeyRevoke",
    "tenantUpdate",
]


@pytest.mark.parametrize("name", MANAGEMENT)
def test_only_owners_and_admins_manage_the_tenant(gql, alpha, name):
    """The table itself, pinned: people and keys are managed by owners and admins only."""
    for role in Role.values:
        response = gql.post(
            _operation("Mutation", name),
            host=alpha.host,
            token=token_for(alpha.email(role), alpha.tenant),
        )
        refused = "FORBIDDEN" in response.codes
        assert refused == (role not in (Role.OWNER, Role.ADMIN)), (name, role, response.body)
