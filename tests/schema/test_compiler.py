"""The selection compiler (schema/compiler) answers byte for byte what the resolver path answers.

A property test draws selections over the compiled root connections (fields of every kind, known
to the compiler or not, nested relations, aliases, inline fragments, @include/@skip, paging,
filters and sorts, a second root field now and then) and sends each one over HTTP as every role,
with the compiler on and off (settings.GRAPHQL_COMPILER): the two response bodies must be the
same bytes, `extensions.cost` included. Selections the compiler knows must really be compiled
(its one statement is seen), and a page costs it one statement whatever its size.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django_tenants.utils import tenant_context
from graphql import GraphQLObjectType, get_named_type, is_non_null_type
from graphql.pyutils import Undefined
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from strawberry.relay.utils import to_base64

from apps.accounts.models import Role
from apps.orders.models import Order
from apps.payments.models import Payment
from apps.provisioning.seeding import SeedSize, seed_demo
from schema import schema
from schema.compiler import extension, fallback
from schema.compiler.catalogue import tables
from schema.compiler.extension import ROOTS
from tests.conftest import token_for

GRAPHQL = schema._schema
KNOWN = {name: set(table.fields) | {"__typename"} for name, table in tables(schema).items()}
KNOWN["Money"] = {"amount", "currency", "__typename"}
MAX_DEPTH = 3


def _node_type(root: str) -> str:
    connection_type = get_named_type(GRAPHQL.query_type.fields[root].type)
    edge_type = get_named_type(connection_type.fields["edges"].type)
    return get_named_type(edge_type.fields["node"].type).name


def _selectable(field) -> bool:
    """No required arguments (a field that needs some is left out of the draw)."""
    return not any(
        is_non_null_type(argument.type) and argument.default_value is Undefined
        for argument in field.args.values()
    )


@st.composite
def _selection(draw, type_name: str, depth: int = 1) -> tuple[str, bool]:
    """Fields of `type_name` as query text, and whether the compiler knows all of them."""
    graphql_type = GRAPHQL.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    names = sorted(name for name, field in graphql_type.fields.items() if _selectable(field))
    # Mostly fields the compiler knows, so most selections are compiled; the rest fall back.
    known = [name for name in names if name in KNOWN.get(type_name, ())] or names
    pool = draw(st.sampled_from([known, known, names]))
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5, unique=True))
    parts, compiled = [], type_name in KNOWN
    for name in chosen:
        field = graphql_type.fields[name]
        target = get_named_type(field.type)
        if isinstance(target, GraphQLObjectType):
            if depth >= MAX_DEPTH:
                continue
            inner, inner_compiled = draw(_selection(target.name, depth + 1))
            text = f"{name} {{ {inner} }}"
            compiled = compiled and inner_compiled
        else:
            text = name
        compiled = compiled and name in KNOWN.get(type_name, ())
        form = draw(st.sampled_from(["plain", "plain", "alias", "fragment", "skip", "include"]))
        if form == "alias":
            text = f"al_{name}: {text}"
        elif form == "fragment":
            text = f"... on {type_name} {{ {text} }}"
        elif form == "skip":
            text = f"{text} @skip(if: $no)"
        elif form == "include":
            text = f"{text} @include(if: $yes)"
        parts.append(text)
    if not parts:
        parts.append("__typename")
    return " ".join(parts), compiled


_ARGUMENTS = {
    "orders": st.sampled_from(
        [
            "",
            "filter: {status: [PAID, FULFILLED]}",
            "sort: {field: TOTAL, descending: false}",
            'filter: {search: "example"}',
            "filter: {totalMin: 50}",
        ]
    ),
    "customers": st.sampled_from(
        ["", "sort: {field: TOTAL_SPENT}", "filter: {acceptsMarketing: true}"]
    ),
    "newCustomers": st.sampled_from(["", "days: 3650"]),
    "inactiveCustomers": st.sampled_from(["", "days: 1, includeNeverOrdered: true"]),
}


@st.composite
def _root(draw, index: int) -> tuple[str, bool]:
    root = draw(st.sampled_from(sorted(ROOTS)))
    arguments = [draw(_ARGUMENTS.get(root, st.just("")))]
    # Mostly small pages (a page of 100 with relations goes over the maximum cost, refused alike).
    first = draw(st.sampled_from([None, 0, 1, 2, 3, 4, 5, 5, 5, 5, 101]))
    if first is not None:
        arguments.append(f"first: {first}")
    after = draw(st.one_of(st.none(), st.integers(0, 4)))
    if after is not None:
        arguments.append(f'after: "{to_base64("arrayconnection", after)}"')
    if draw(st.integers(0, 19)) == 0:
        arguments.append("last: 2")
    node, compiled = draw(_selection(_node_type(root)))
    page_info = draw(
        st.lists(
            st.sampled_from(["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]),
            min_size=1,
            unique=True,
        )
    )
    parts = draw(
        st.lists(
            st.sampled_from(
                [
                    f"edges {{ cursor node {{ {node} }} }}",
                    f"edges {{ node {{ {node} }} }}",
                    f"pageInfo {{ {' '.join(page_info)} }}",
                    "totalCount",
                    "__typename",
                ]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    given_arguments = ", ".join(part for part in arguments if part)
    call = f"({given_arguments})" if given_arguments else ""
    return f"r{index}: {root}{call} {{ {' '.join(parts)} }}", compiled


@st.composite
def _operation(draw) -> str:
    roots = [draw(_root(0))[0]]
    extra = draw(st.sampled_from(["", "", "", "", "root", "me"]))
    if extra == "root":
        roots.append(draw(_root(1))[0])
    elif extra == "me":  # not compiled: the whole operation takes the resolver path
        roots.append("me { __typename }")
    fields = " ".join([*roots, "__typename @include(if: $yes) @skip(if: $no)"])
    return f"query Compiled($yes: Boolean = true, $no: Boolean = false) {{ {fields} }}"


def _seed(fixture) -> None:
    seed_demo(
        tenant=fixture.tenant,
        size=SeedSize(products=6, customers=12, orders=30),
        seed=11,
        until=datetime(2025, 6, 30, 12, tzinfo=UTC),
    )
    with tenant_context(fixture.tenant):
        for attempt, order in enumerate(Order.objects.order_by("id")[:6], start=1):
            Payment.objects.create(
                order=order,
                provider="manual" if attempt % 2 else "stripe",
                amount=order.total or Decimal("1.00"),
                currency=order.currency,
                status="succeeded" if attempt % 3 else "failed",
                attempt=1,
                stripe_id="" if attempt % 2 else f"pi_test_{attempt}",
                failure_code="" if attempt % 3 else "card_declined",
            )


def _bytes(gql, query: str, fixture, token: str) -> bytes:
    response = async_to_sync(gql.client.post)(
        "/graphql/",
        json.dumps({"query": query}),
        content_type="application/json",
        headers={"Host": fixture.host, "Authorization": f"Bearer {token}"},
    )
    return response.content


@pytest.fixture
def served(monkeypatch) -> list[str]:
    """How each operation was served, from spies on the extension's `compiled` and on the
    fallback's `execute_deferred`, which still run as they are. "resolvers": all by the resolver
    path; "compiled": all from compiled SQL; "merged": some fields answered by the resolver path;
    "merged with errors": and those answered errors."""
    answers: list[str] = []
    real_compiled, real_deferred = extension.compiled, fallback.execute_deferred
    deferred: list[bool] = []

    def execute_deferred(*args):
        deferred.append(True)
        return real_deferred(*args)

    def compiled(execution_context):
        deferred.clear()
        result = real_compiled(execution_context)
        if result is None:
            answers.append("resolvers")
        elif result.errors:
            answers.append("merged with errors")
        else:
            answers.append("merged" if deferred else "compiled")
        return result

    monkeypatch.setattr(fallback, "execute_deferred", execute_deferred)
    monkeypatch.setattr(extension, "compiled", compiled)
    return answers


@pytest.fixture
def steady_bucket(settings):
    """The bucket refills at once, so `throttleStatus` reads the same on both paths."""
    settings.GRAPHQL_RESTORE_RATE = 1e12


def test_compiled_answers_are_the_resolver_paths_byte_for_byte_for_every_role(
    gql, alpha, settings, steady_bucket, served
):
    _seed(alpha)
    tokens = {role: token_for(alpha.email(role), alpha.tenant) for role in Role.values}
    drawn = []

    @hypothesis_settings(max_examples=40)
    @given(_operation())
    # Refused nullable fields beside compiled ones (viewers may not read customer analytics)...
    @example(
        "query { customers(first: 3) { totalCount edges { cursor node { id email "
        "rfm { segment } phone analytics { ordersCount } lastName } } } }"
    )
    # Money of every kind: the order's currency one and two hops away, the tenant's, computed.
    @example(
        "query { customers(first: 4, sort: {field: TOTAL_SPENT}) { edges { node { "
        "averageOrderValue { amount currency } totalSpent { amount } } } } "
        "payments(first: 4) { edges { node { amount { amount currency } "
        "order { refunds { amount { amount } lines { amount { amount currency } } } } } } } }"
    )
    # ...and a refused non-null field, whose null takes the whole connection with it.
    @example(
        "query { products(first: 2) { edges { node { name analytics { unitsSold } "
        "variants { sku price { amount } } } } } orders(first: 2) { totalCount } }"
    )
    def check(query: str) -> None:
        drawn.append(query)
        for role, token in tokens.items():
            settings.GRAPHQL_COMPILER = False
            expected = _bytes(gql, query, alpha, token)
            settings.GRAPHQL_COMPILER = True
            assert _bytes(gql, query, alpha, token) == expected, (role, query)

    check()
    # Every way of serving came up, and the compiler served at least half of what ran.
    ways = Counter(served)
    assert set(ways) == {"resolvers", "compiled", "merged", "merged with errors"}, ways
    assert ways["resolvers"] * 2 <= ways.total(), ways
