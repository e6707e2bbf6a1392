"""Schema-driven fuzzing of every root query and mutation of the committed schema
(hypothesis-graphql), through the real request path (ASGI → tenant middleware → auth → GraphQL →
DB), as the tenant's owner and as an outsider (another tenant's owner).

Operations are valid against the schema (POSITIVE) or not (NEGATIVE); scalar values mix real
ids of both tenants with malformed ones, and good dates, decimals and text with bad ones (out of
range, NUL characters, huge). Whatever comes in, the answer must be a coded one:
- never a 5xx and never `extensions.code: INTERNAL` (that is a bug of ours);
- never an object of the other tenant: no id minted in beta's schema appears in an answer on alpha.

`make test` runs FUZZ_EXAMPLES (default 8) operations per root field (about 1,000 in all, the same
ones every run); `make fuzz` runs 60 per field by default, new ones each run (FUZZ_EXAMPLES=105:
over 10,000 operations). Each operation runs in a savepoint
rolled back after it, so the examples do not pile up data."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import graphql
import pytest
from django.db import transaction
from django.test import override_settings
from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from apps.common import global_ids
from apps.customers.models import Customer
from tests.apps.orders import shop
from tests.conftest import token_for
from tests.fuzz.tally import TALLY

SCHEMA = graphql.build_schema((Path(__file__).resolve().parents[2] / "schema.graphql").read_text())
QUERIES = sorted(SCHEMA.query_type.fields)
MUTATIONS = sorted(SCHEMA.mutation_type.fields)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))

IDS_OF = """{ products(first: 20) { edges { node { id variants { id } } } }
  categories(first: 20) { edges { node { id } } }
  customers(first: 20) { edges { node { id } } }
  orders(first: 20) { edges { node { id lines { id } } } } }"""


def _ids(value: Any) -> set[str]:
    """Every value of an `id` key in an answer."""
    if isinstance(value, dict):
        return {v for k, v in value.items() if k == "id" and isinstance(v, str)} | {
            found for v in value.values() for found in _ids(v)
        }
    if isinstance(value, list):
        return {found for v in value for found in _ids(v)}
    return set()


def _shop(fixture) -> set[str]:
    """A little data in the tenant (rolled back with the test); the ids the API gives it."""
    with tenant_context(fixture.tenant):
        hat = shop.variant("15.00", stock=20, name="Hat")
        shop.place(fixture, [(hat, 1)], email="fuzz@example.com")
        Customer.objects.create(email="fuzz-customer@example.com")
    return fixture


def _violable(field: str) -> bool:
    """Whether NEGATIVE mode can make the field's operation invalid: it needs a required argument
    or an argument (or input field) of a built-in scalar type."""
    root = SCHEMA.query_type.fields.get(field) or SCHEMA.mutation_type.fields[field]

    def violable(kind, seen: frozenset[str]) -> bool:
        named = graphql.get_named_type(kind)
        if isinstance(named, graphql.GraphQLScalarType):
            return graphql.is_specified_scalar_type(named)
        if isinstance(named, graphql.GraphQLInputObjectType) and named.name not in seen:
            return any(
                graphql.is_non_null_type(f.type) or violable(f.type, seen | {named.name})
                for f in named.fields.values()
            )
        return False

    return any(
        graphql.is_non_null_type(arg.type) or violable(arg.type, frozenset())
        for arg in root.args.values()
    )


def _text(value: Any) -> graphql.StringValueNode:
    return nodes.String(value)


BAD_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "x" * 10_000,
        "💥",
        "../../etc/passwd",
        "' OR 1=1 --",
        "null",
        "-1",
        "1e999999",
        "NaN",
        "Infinity",
        "9" * 40,
        "0x1F",
        "2026-02-30",
        "10000-01-01",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
    ]
)


def _scalars(ids: list[str]) -> dict[str, st.SearchStrategy]:
    malformed_ids = st.one_of(
        BAD_TEXT,
        st.text(max_size=40),
        st.sampled_from(ids).map(
            lambda known: known[:-2] + ("A" if known[-2] != "A" else "B") + known[-1:]
        ),
    )
    return {
        "ID": st.one_of(st.sampled_from(ids), malformed_ids).map(_text),
        "Date": st.one_of(st.dates(min_value=date(1, 1, 1)).map(date.isoformat), BAD_TEXT).map(
            _text
        ),
        "DateTime": st.one_of(
            st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat), BAD_TEXT
        ).map(_text),
        "Decimal": st.one_of(
            st.decimals(
                allow_nan=False,
                allow_infinity=False,
                places=2,
                min_value=Decimal("-1e15"),
                max_value=Decimal("1e15"),
            ).map(str),
            st.decimals(allow_nan=True, allow_infinity=True).map(str),
            BAD_TEXT,
        ).map(_text),
        "JSON": st.one_of(
            st.just(nodes.Object([])), BAD_TEXT.map(_text), st.integers().map(nodes.Int)
        ),
        "Upload": st.just(graphql.NullValueNode()),
    }


@pytest.fixture
def both(alpha, beta):
    """alpha and beta with data, each one's ids as the API gives them, and tokens."""
    owner = token_for(alpha.email("owner"), alpha.tenant)
    outsider = token_for(beta.email("owner"), beta.tenant)
    return alpha, beta, owner, outsider


def _known_ids(gql, fixture, token: str) -> set[str]:
    answer = gql.post(IDS_OF, host=fixture.host, token=token)
    assert answer.errors == [], answer.body
    return _ids(answer.data)


def _run(gql, alpha, token: str, document: str, foreign_schema: str) -> None:
    with transaction.atomic():
        answer = gql.post(document, host=alpha.host, token=token)
        transaction.set_rollback(True)
    codes = [e.get("extensions", {}).get("code") for e in answer.errors]
    TALLY.count(codes, answer.status)
    assert answer.status < 500, (answer.status, document, answer.body)
    assert "INTERNAL" not in codes, (document, answer.body)
    leaked = [
        text for text in _ids(answer.data) if global_ids.decode(text, foreign_schema) is not None
    ]
    assert not leaked, (document, leaked)


def _fuzz(fields: list[str], gql, both) -> None:
    """Fuzz each field in turn (the data and ids made once); every field that broke is reported
    with its smallest failing operation, not only the first."""
    alpha, beta, owner, outsider = both
    _shop(alpha)
    _shop(beta)
    alpha_ids = _known_ids(gql, alpha, owner)
    beta_ids = _known_ids(gql, beta, outsider)
    assert alpha_ids and beta_ids
    scalars = _scalars(sorted(alpha_ids | beta_ids))
    broken: dict[str, str] = {}
    for field in fields:
        modes = [Mode.POSITIVE, Mode.NEGATIVE] if _violable(field) else [Mode.POSITIVE]
        operations = st.one_of(
            *(
                from_schema(SCHEMA, fields=[field], custom_scalars=scalars, mode=mode)
                for mode in modes
            )
        )

        @settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck))
        @given(document=operations, as_outsider=st.booleans())
        def check(document: str, as_outsider: bool) -> None:
            _run(gql, alpha, outsider if as_outsider else owner, document, beta.tenant.schema_name)

        with override_settings(
            GRAPHQL_RESTORE_RATE=1_000_000
        ):  # the bucket is not what is tested here
            try:
                check()
            except AssertionError as failure:
                broken[field] = str(failure)[:2000]
    assert not broken, "\n\n".join(f"{field}: {failure}" for field, failure in broken.items())


def test_every_root_query_answers_with_a_code(gql, both):
    _fuzz(QUERIES, gql, both)


def test_every_root_mutation_answers_with_a_code(gql, both):
    _fuzz(MUTATIONS, gql, both)
