"""The operation guard's protections through the HTTP path (DESIGN §4): depth, alias and token
limits, the cost limit, the per-tenant per-credential leaky bucket, `extensions.cost`, and
introspection for anonymous callers. Limits are shrunk per test with pytest-django's
`settings` fixture (the guard reads settings per request)."""

from __future__ import annotations

import json
import time

import pytest

from apps.accounts.models import Membership, User
from tests.conftest import token_for

# me 1 + user 1 = 2, tenant 1 -> 3; what the guard charges and, being all present, refunds nothing.
COST_3 = "{ tenant { name } me { user { email } } }"
# members 1 + 10 * (edges 0 + node 1 + user 1) = 21
MEMBERS_21 = "{ members(first: 10) { edges { node { user { email } } } } }"


@pytest.fixture
def post(gql, alpha):
    """POST as a member of `tenant` (default alpha) with `role`, or anonymously (role=None);
    every answer is checked for leaked stack traces."""
    tokens: dict[tuple[str, str], str] = {}

    def _post(query, variables=None, *, role="owner", tenant=None):
        tenant = tenant or alpha
        token = None
        if role is not None:
            key = (tenant.slug, role)
            if key not in tokens:
                tokens[key] = token_for(tenant.email(role), tenant.tenant)
            token = tokens[key]
        response = gql.post(query, variables, host=tenant.host, token=token)
        raw = json.dumps(response.body)
        assert "Traceback" not in raw and 'File "' not in raw, raw
        return response

    return _post


def cost_of(response) -> dict:
    return response.body["extensions"]["cost"]


def available(response) -> int:
    return cost_of(response)["throttleStatus"]["currentlyAvailable"]


# --- depth, aliases, tokens ----------------------------------------------------------------------

DEEP = "{ members { edges { node { user { email } } } } }"  # depth 4 below the root field


def test_depth_over_the_limit_is_refused(post, settings):
    settings.GRAPHQL_MAX_DEPTH = 3
    response = post(DEEP)
    assert response.status == 200
    assert response.codes == ["QUERY_TOO_COMPLEX"]
    assert response.errors[0]["message"] == "'anonymous' exceeds maximum operation depth of 3"
    assert response.data is None


def test_depth_at_the_limit_passes(post, settings):
    settings.GRAPHQL_MAX_DEPTH = 4
    response = post(DEEP)
    assert response.errors == []
    assert len(response.data["members"]["edges"]) == 5


def test_depth_limit_names_the_operation(post, settings):
    settings.GRAPHQL_MAX_DEPTH = 2
    response = post(
        "query Deep { me { user { email } apiKey { name } } members { edges { node { id } } } }"
    )
    assert response.codes == ["QUERY_TOO_COMPLEX"]
    assert response.errors[0]["message"] == "'Deep' exceeds maximum operation depth of 2"


def test_deep_introspection_is_refused(post):
    """Introspection is left out of the depth count, but graphql-core's own rule caps the
    cycles (fields → type → fields …) that make introspection answers explode."""
    query = "{ __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }"
    response = post(query)
    assert response.codes == ["QUERY_TOO_COMPLEX"]
    assert response.errors[0]["message"] == "Maximum introspection depth exceeded"
    assert response.data is None


def test_too_many_aliases_are_refused(post, settings):
    settings.GRAPHQL_MAX_ALIASES = 2
    response = post("{ a: me { via } b: me { role } c: tenant { name } }")
    assert response.codes == ["QUERY_TOO_COMPLEX"]
    assert response.errors[0]["message"] == "3 aliases found. Allowed: 2"
    assert response.data is None


def test_aliases_at_the_limit_pass(post, settings):
    settings.GRAPHQL_MAX_ALIASES = 2
    response = post("{ a: me { via } b: me { role } tenant { name } }")
    assert response.errors == []
    assert response.data == {
        "a": {"via": "jwt"},
        "b": {"role": "OWNER"},
        "tenant": {"name": "Alpha"},
    }


def test_too_many_tokens_are_refused(post, settings):
    """MaxTokensLimiter stops the parser: answered as QUERY_TOO_COMPLEX."""
    settings.GRAPHQL_MAX_TOKENS = 12
    response = post("{ me { via role via role via role via role } }")  # 13 tokens
    assert response.codes == ["QUERY_TOO_COMPLEX"]
    assert response.errors[0]["message"] == (
        "Syntax Error: Document contains more than 12 tokens. Parsing aborted."
    )
    assert response.data is None


def test_tokens_at_the_limit_pass(post, settings):
    settings.GRAPHQL_MAX_TOKENS = 12
    response = post("{ me { via role via role via role } }")  # 12 tokens
    assert response.errors == []
    assert response.data == {"me": {"via": "jwt", "role": "OWNER"}}


# --- cost ----------------------------------------------------------------------------------------


def test_cost_over_the_maximum_is_refused(post, settings):
    settings.GRAPHQL_MAX_COST = 20
    response = post(MEMBERS_21)
    assert response.status == 200
    assert response.codes == ["QUERY_TOO_COMPLEX"]
    error = response.errors[0]
    assert error["message"] == "Query cost 21 exceeds the maximum of 20."
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "cost": 21, "maximumCost": 20}
    assert response.data is None
    assert cost_of(response)["requestedQueryCost"] == 21
    assert cost_of(response)["actualQueryCost"] is None


def test_cost_at_the_maximum_passes(post, settings):
    settings.GRAPHQL_MAX_COST = 21
    response = post(MEMBERS_21)
    assert response.errors == []
    assert cost_of(response)["requestedQueryCost"] == 21
    assert len(response.data["members"]["edges"]) == 5


def test_cheaper_query_passes_under_the_maximum(post, settings):
    settings.GRAPHQL_MAX_COST = 20
    response = post(MEMBERS_21.replace("first: 10", "first: 9"))  # 1 + 9 * 2 = 19
    assert response.errors == []
    assert cost_of(response)["requestedQueryCost"] == 19


def test_too_complex_mutation_does_not_run(post, settings, alpha):
    # memberAdd 1 + (member 1 + user 1) + userErrors 1 = 4
    mutation = """mutation { memberAdd(email: "newcomer@alpha.test", role: VIEWER) {
        member { user { email } } userErrors { code } } }"""
    members_before = Membership.objects.filter(tenant=alpha.tenant).count()
    settings.GRAPHQL_MAX_COST = 3
    refused = post(mutation)
    assert refused.codes == ["QUERY_TOO_COMPLEX"]
    assert refused.data is None
    assert not User.objects.filter(email="newcomer@alpha.test").exists()
    assert Membership.objects.filter(tenant=alpha.tenant).count() == members_before

    settings.GRAPHQL_MAX_COST = (
        4  # the same mutation, allowed, does write: the check above can fail
    )
    done = post(mutation)
    assert done.errors == []
    assert done.data["memberAdd"] == {
        "member": {"user": {"email": "newcomer@alpha.test"}},
        "userErrors": [],
    }
    assert Membership.objects.filter(tenant=alpha.tenant).count() == members_before + 1


def test_refused_query_is_not_charged(post, settings):
    settings.GRAPHQL_MAX_COST = 20
    assert post(MEMBERS_21, role="admin").codes == ["QUERY_TOO_COMPLEX"]
    after = post("{ me { via } }", role="admin")  # costs 1 from a full bucket
    assert after.errors == []
    assert available(after) == settings.GRAPHQL_BUCKET_SIZE - 1


# --- extensions.cost -----------------------------------------------------------------------------


def test_cost_extension_on_a_successful_response(post, settings, alpha):
    members = Membership.objects.filter(tenant=alpha.tenant).count()
    assert members == 5
    response = post("{ members(first: 50) { edges { node { id user { email } } } } }")
    assert response.errors == []
    assert len(response.data["members"]["edges"]) == members
    cost = cost_of(response)
    assert cost["requestedQueryCost"] == 1 + 50 * 2  # 101: edges are free, node 1, user 1
    assert cost["actualQueryCost"] == 1 + members * 2  # members + 5 * (node, user) = 11
    assert cost["actualQueryCost"] <= cost["requestedQueryCost"]
    # charged 101, refunded the 90 not used: the bucket is down by the actual cost only
    assert cost["throttleStatus"] == {
        "maximumAvailable": settings.GRAPHQL_BUCKET_SIZE,
        "currentlyAvailable": settings.GRAPHQL_BUCKET_SIZE - 11,
        "restoreRate": settings.GRAPHQL_RESTORE_RATE,
    }


@pytest.mark.parametrize(
    ("query", "requested", "actual"),
    [
        ("{ me { via } }", 1, 1),
        (COST_3, 3, 3),
        ("{ __typename }", 0, 0),
        ("{ me { apiKey { name } } }", 2, 1),  # a JWT caller has no API key: null costs nothing
    ],
)
def test_cost_extension_on_every_successful_response(post, query, requested, actual):
    response = post(query)
    assert response.errors == []
    cost = cost_of(response)
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (requested, actual)
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


# --- throttling ----------------------------------------------------------------------------------


# Restore rate of the tests that count points: one point per 100 s, so however slow the machine,
# no point comes back between two requests (at 1 a second, a busy machine made counts drift).
SLOW = 0.01


def drain(post, role: str, tenant=None, *, limit: int = 6):
    """Send COST_3 until THROTTLED; return the successful responses and the refusal."""
    passed = []
    for _ in range(limit):
        response = post(COST_3, role=role, tenant=tenant)
        if response.codes == ["THROTTLED"]:
            return passed, response
        assert response.errors == [], response.body
        passed.append(response)
    raise AssertionError(f"never throttled after {limit} queries: {available(passed[-1])} left")


def test_bucket_drains_until_throttled(post, settings):
    settings.GRAPHQL_BUCKET_SIZE = 10
    settings.GRAPHQL_RESTORE_RATE = SLOW
    passed, refused = drain(post, "staff")
    # 10 -> 7 -> 4 -> 1 (a few ten-thousandths of a point come back between requests)
    assert [available(r) for r in passed] == [7, 4, 1]
    assert [cost_of(r)["throttleStatus"]["maximumAvailable"] for r in passed] == [10, 10, 10]
    error = refused.errors[0]
    assert error["extensions"]["code"] == "THROTTLED"
    retry = error["extensions"]["retryAfterSeconds"]
    assert 0 < retry <= (3 - 1) / SLOW  # (3 - a little over 1 left) / the restore rate
    assert refused.data is None
    assert cost_of(refused)["requestedQueryCost"] == 3
    assert cost_of(refused)["actualQueryCost"] is None
    assert cost_of(refused)["throttleStatus"]["currentlyAvailable"] == 1
    # a refused query is not charged: asking again leaves the bucket where it was
    again = post(COST_3, role="staff")
    assert again.codes == ["THROTTLED"]
    assert available(again) == 1


def test_throttled_query_does_not_run(post, settings, alpha):
    settings.GRAPHQL_BUCKET_SIZE = 10
    settings.GRAPHQL_RESTORE_RATE = SLOW
    drain(post, "admin")
    response = post(
        'mutation { memberAdd(email: "late@alpha.test", role: VIEWER) { userErrors { code } } }',
        role="admin",
    )
    assert response.codes == ["THROTTLED"]
    assert not User.objects.filter(email="late@alpha.test").exists()


def test_bucket_refills_at_the_restore_rate(post, settings):
    settings.GRAPHQL_BUCKET_SIZE = 10
    settings.GRAPHQL_RESTORE_RATE = SLOW
    drain(post, "analyst")
    assert post(COST_3, role="analyst").codes == ["THROTTLED"]

    settings.GRAPHQL_RESTORE_RATE = 50
    time.sleep(0.3)  # 0.3 s * 50 points/s = 15 points: more than the bucket holds
    response = post(COST_3, role="analyst")
    assert response.errors == []
    assert response.data["me"] == {"user": {"email": "analyst@alpha.test"}}
    assert cost_of(response)["throttleStatus"] == {
        "maximumAvailable": 10,
        "currentlyAvailable": 7,  # refilled to the brim (10), never beyond, then 3 spent
        "restoreRate": 50,
    }


def test_buckets_are_per_tenant_and_per_credential(post, gql, settings, alpha, beta):
    settings.GRAPHQL_BUCKET_SIZE = 10
    settings.GRAPHQL_RESTORE_RATE = SLOW
    drain(post, "owner", alpha)

    other_role = post(COST_3, role="viewer", tenant=alpha)
    assert other_role.errors == []
    assert available(other_role) == 7

    other_tenant = post(COST_3, role="owner", tenant=beta)
    assert other_tenant.errors == []
    assert available(other_tenant) == 7

    # the same person in another tenant has another bucket there
    Membership.objects.create(
        user=User.objects.get(email=alpha.email("owner")), tenant=beta.tenant, role="viewer"
    )
    elsewhere = gql.post(COST_3, host=beta.host, token=token_for(alpha.email("owner"), beta.tenant))
    assert elsewhere.errors == [], elsewhere.body
    assert elsewhere.data["me"] == {"user": {"email": "owner@alpha.test"}}
    assert available(elsewhere) == 7

    # the bucket is the person's, not the token's: a fresh token does not get a fresh bucket
    fresh = token_for(alpha.email("owner"), alpha.tenant)
    assert gql.post(COST_3, host=alpha.host, token=fresh).codes == ["THROTTLED"]


def test_anonymous_callers_have_a_bucket_too(post, settings):
    """Anonymous callers share a bucket per client address: sign-in attempts are throttled."""
    settings.GRAPHQL_BUCKET_SIZE = 22
    settings.GRAPHQL_RESTORE_RATE = 0.01
    # tokenCreate 10 (a password hash: schema/costs.py) + userErrors 1 = 11 (a wrong password
    # gives one userError: all of it used)
    attempt = 'mutation { tokenCreate(email: "owner@alpha.test", password: "wrong") { userErrors { code } } }'
    costs = []
    for _ in range(2):
        response = post(attempt, role=None)
        assert response.errors == [], response.body
        assert len(response.data["tokenCreate"]["userErrors"]) == 1
        costs.append((cost_of(response)["actualQueryCost"], available(response)))
    assert costs == [(11, 11), (11, 0)]
    refused = post(attempt, role=None)
    assert refused.codes == ["THROTTLED"]
    assert refused.data is None
    # a signed-in member of the same tenant is someone else
    assert post(attempt, role="viewer").errors == []


def test_negative_first_does_not_refill_the_bucket(post, settings):
    """BUG: `first: -1000` costs 1 + (-1000) * 2 = -1999 points; the bucket *gains* 1999 and the
    caller is no longer throttled (currentlyAvailable even goes above maximumAvailable)."""
    settings.GRAPHQL_BUCKET_SIZE = 10
    settings.GRAPHQL_RESTORE_RATE = SLOW
    drain(post, "admin")
    trick = post("{ members(first: -1000) { edges { node { id } } } }", role="admin")
    status = cost_of(trick).get("throttleStatus")
    if status is not None:
        assert 0 <= status["currentlyAvailable"] <= status["maximumAvailable"], status
    assert post(COST_3, role="admin").codes == ["THROTTLED"]


def test_negative_first_is_a_bad_request(post):
    """BUG: a negative page size is the caller's mistake, yet it reaches the resolver, which
    raises ValueError: INTERNAL (and an error log) instead of BAD_REQUEST."""
    response = post("{ members(first: -1) { edges { node { id } } } }")
    assert response.data is None
    assert response.codes == ["BAD_REQUEST"]


# --- introspection -------------------------------------------------------------------------------

INTROSPECTION = "{ __schema { types { name } } }"


def test_introspection_is_not_public_in_tests(settings):
    assert settings.GRAPHQL_INTROSPECTION_PUBLIC is False
    assert settings.DEBUG is False


def test_anonymous_introspection_is_refused(post):
    response = post(INTROSPECTION, role=None)
    assert response.codes == ["UNAUTHENTICATED"]
    assert response.errors[0]["message"] == "Introspection needs a signed-in caller."
    assert response.data is None


@pytest.mark.parametrize(
    "query",
    [
        '{ __type(name: "Member") { name fields { name } } }',
        "query { ...Q } fragment Q on Query { __schema { queryType { name } } }",
        "{ __typename ... on Query { __schema { queryType { name } } } }",
    ],
)
def test_anonymous_introspection_is_refused_however_asked(post, query):
    response = post(query, role=None)
    assert response.codes == ["UNAUTHENTICATED"]
    assert response.data is None


def test_members_may_introspect(post):
    response = post(INTROSPECTION, role="viewer")
    assert response.errors == []
    names = {t["name"] for t in response.data["__schema"]["types"]}
    assert {"Query", "Mutation", "Member", "MemberConnection"} <= names


def test_public_introspection_setting_opens_it(post, settings):
    settings.GRAPHQL_INTROSPECTION_PUBLIC = True
    response = post('{ __type(name: "Member") { name } }', role=None)
    assert response.errors == []
    assert response.data == {"__type": {"name": "Member"}}


def test_anonymous_typename_is_fine(post):
    """`__typename` is not introspection: it reaches no root field, costs 0 and passes."""
    response = post("{ __typename }", role=None)
    assert response.errors == []
    assert response.data == {"__typename": "Query"}
    assert cost_of(response)["requestedQueryCost"] == 0


# --- no stack traces -----------------------------------------------------------------------------


def test_internal_errors_are_masked(post, monkeypatch, caplog):
    """An unexpected exception in a resolver: INTERNAL, a fixed message, nothing of the exception
    in the body (no trace, class, text or file path); the log keeps it."""

    def boom(info):
        raise RuntimeError("password=hunter2 in /srv/app/secret.py")

    monkeypatch.setattr("schema.accounts.principal", boom)
    response = post("{ me { via } }")
    assert response.status == 200
    assert response.codes == ["INTERNAL"]
    assert response.errors[0]["message"] == "Internal server error."
    raw = json.dumps(response.body)
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret.py", "site-packages"):
        assert leak not in raw, raw
    assert any(
        record.exc_info and "hunter2" in str(record.exc_info[1]) for record in caplog.records
    )


def test_validation_errors_carry_a_code_and_no_trace(post):
    response = post("{ me { nope } }")
    assert response.codes == ["BAD_REQUEST"]
    assert response.errors[0]["message"].startswith("Cannot query field 'nope' on type 'Me'.")
    syntax = post("{ me { ")
    assert syntax.codes == ["BAD_REQUEST"]
    assert syntax.errors[0]["message"].startswith("Syntax Error:")


def test_a_page_above_the_maximum_is_a_bad_request_not_an_internal_error(post):
    response = post("{ members(first: 101) { totalCount } }")
    assert response.codes == ["BAD_REQUEST"] and response.data is None
