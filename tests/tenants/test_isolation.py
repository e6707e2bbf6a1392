"""Tenant isolation as a property (DESIGN §3, §9): whatever two tenants do, each one, named by any
resolution method, lists exactly its own API keys, members and audit entries, and cannot fetch
the other's objects by global id."""

from __future__ import annotations

import itertools
import string

from django.db import transaction
from django.test import override_settings
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.models import ApiKey, Membership
from apps.audit.models import AuditEntry
from tests.conftest import token_for

TENANTS = ("alpha", "beta")
METHODS = ("host", "header", "query")

API_KEY_CREATE = """
mutation($name: String!) {
  apiKeyCreate(name: $name, role: VIEWER, scopes: ["read"]) {
    apiKey { id name } secret userErrors { field message }
  }
}"""
MEMBER_ADD = """
mutation($email: String!, $name: String!) {
  memberAdd(email: $email, role: VIEWER, fullName: $name) {
    member { id user { email } } userErrors { field message }
  }
}"""
LISTS = """{
  tenant { slug }
  apiKeys(first: 100) { edges { node { name } } }
  members(first: 100) { edges { node { user { email } } } }
  auditLog(first: 100) { edges { node { action objectId } } }
}"""
NODE = """
query($id: ID!) {
  node(id: $id) { id ... on ApiKey { name } ... on Member { user { email } } }
}"""

# Hypothesis runs every example inside the test's one transaction (rolled back per example
# below, but unique values keep a leak from hiding behind a coincidence).
_serial = itertools.count()

names = st.text(
    alphabet=string.ascii_letters + string.digits + " -.'", min_size=1, max_size=16
).filter(lambda s: s.strip())
local_parts = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)
operations = st.lists(
    st.tuples(
        st.sampled_from(TENANTS),
        st.sampled_from(("api_key", "member")),
        st.sampled_from(METHODS),
        names,
        local_parts,
    ),
    max_size=6,
)


def ok(response) -> dict:
    assert response.status == 200, response.body
    assert response.errors == [], response.body
    return response.data


class World:
    """The two tenants, their owners' tokens and what each example created in each."""

    def __init__(self, gql, fixtures):
        self.gql = gql
        self.fixtures = fixtures
        self.tokens = {name: token_for(f.email("owner"), f.tenant) for name, f in fixtures.items()}

    def post(self, tenant: str, method: str, query: str, variables: dict | None = None):
        return self.gql.post(
            query, variables, token=self.tokens[tenant], **self.fixtures[tenant].named_by(method)
        )

    def nodes(self, tenant: str, method: str, global_ids: list[str]) -> list[dict | None]:
        """`node(id:)` for each id, in one request (aliases)."""
        if not global_ids:
            return []
        fields = " ".join(
            f'n{i}: node(id: "{gid}") {{ id ... on ApiKey {{ name }} ... on Member {{ user {{ email }} }} }}'
            for i, gid in enumerate(global_ids)
        )
        data = ok(self.post(tenant, method, f"{{ {fields} }}"))
        return [data[f"n{i}"] for i in range(len(global_ids))]

    def truth(self, tenant: str) -> dict[str, set]:
        """What the database holds for `tenant`, read without going through the API."""
        fixture = self.fixtures[tenant]
        with schema_context(fixture.tenant.schema_name):
            audit = set(AuditEntry.objects.values_list("action", "object_id"))
        return {
            "apiKeys": set(
                ApiKey.objects.filter(tenant=fixture.tenant).values_list("name", flat=True)
            ),
            "members": set(
                Membership.objects.filter(tenant=fixture.tenant).values_list(
                    "user__email", flat=True
                )
            ),
            "auditLog": audit,
        }

    def listed(self, tenant: str, method: str) -> dict[str, set]:
        data = ok(self.post(tenant, method, LISTS))
        assert data["tenant"] == {"slug": tenant}
        for name in ("apiKeys", "members", "auditLog"):
            assert len(data[name]["edges"]) < 100, "the listing was cut off: raise `first`"
        return {
            "apiKeys": {e["node"]["name"] for e in data["apiKeys"]["edges"]},
            "members": {e["node"]["user"]["email"] for e in data["members"]["edges"]},
            "auditLog": {
                (e["node"]["action"], e["node"]["objectId"]) for e in data["auditLog"]["edges"]
            },
        }


def _create(world: World, tenant: str, kind: str, method: str, name: str, local: str) -> dict:
    """Run one operation; returns what it made, by list."""
    serial = next(_serial)
    if kind == "api_key":
        name = f"{name.strip()} #{serial}"
        payload = ok(world.post(tenant, method, API_KEY_CREATE, {"name": name}))["apiKeyCreate"]
        assert payload["userErrors"] == [], payload
        assert payload["apiKey"]["name"] == name
        key = ApiKey.objects.get(name=name)
        assert key.tenant_id == world.fixtures[tenant].tenant.pk
        return {
            "apiKeys": name,
            "auditLog": ("api_key.create", str(key.pk)),
            "id": payload["apiKey"]["id"],
        }
    email = f"{local}.{serial}@iso-{tenant}.test"
    payload = ok(world.post(tenant, method, MEMBER_ADD, {"email": email, "name": name}))[
        "memberAdd"
    ]
    assert payload["userErrors"] == [], payload
    assert payload["member"]["user"] == {"email": email}
    membership = Membership.objects.get(user__email=email)
    assert membership.tenant_id == world.fixtures[tenant].tenant.pk
    return {
        "members": email,
        "auditLog": ("member.add", str(membership.pk)),
        "id": payload["member"]["id"],
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_tenants_see_only_their_own_items(gql, alpha, beta, ops):
    world = World(gql, {"alpha": alpha, "beta": beta})
    # Not a test of the rate limit: every example lists everything six times, faster than the
    # bucket of one owner refills.
    with override_settings(GRAPHQL_RESTORE_RATE=1_000_000), transaction.atomic():
        before = {tenant: world.truth(tenant) for tenant in TENANTS}
        made: dict[str, list[dict]] = {tenant: [] for tenant in TENANTS}
        for tenant, kind, method, name, local in ops:
            made[tenant].append(_create(world, tenant, kind, method, name, local))

        for tenant in TENANTS:
            other = "beta" if tenant == "alpha" else "alpha"
            expected = {lst: set(items) for lst, items in before[tenant].items()}
            for item in made[tenant]:
                for lst in ("apiKeys", "members", "auditLog"):
                    if lst in item:
                        expected[lst].add(item[lst])
            # The oracle: the database agrees with what the operations made.
            assert world.truth(tenant) == expected
            for method in METHODS:
                listed = world.listed(tenant, method)
                assert listed == expected, (tenant, method)
                for item in made[other]:
                    for lst in ("apiKeys", "members", "auditLog"):
                        assert item.get(lst) not in listed[lst], (tenant, method, lst, item)

            # By global id: the tenant's own objects are found, the other's are not.
            own = world.nodes(tenant, "host", [item["id"] for item in made[tenant]])
            assert all(node is not None for node in own), own
            method = METHODS[next(_serial) % len(METHODS)]
            theirs = world.nodes(tenant, method, [item["id"] for item in made[other]])
            assert theirs == [None] * len(made[other]), (tenant, method, theirs)

        transaction.set_rollback(True)


def test_node_of_a_committed_beta_member_is_null_from_alpha(gql, alpha, beta):
    """The session fixtures' members (committed, not made in this transaction) by id."""
    beta_token = token_for(beta.email("owner"), beta.tenant)
    query = "{ members(first: 100) { edges { node { id user { email } } } } }"
    edges = ok(gql.post(query, host=beta.host, token=beta_token))["members"]["edges"]
    assert {e["node"]["user"]["email"] for e in edges} >= {
        beta.email("owner"),
        beta.email("viewer"),
    }
    token = token_for(alpha.email("owner"), alpha.tenant)
    for edge in edges:
        data = ok(gql.post(NODE, {"id": edge["node"]["id"]}, host=alpha.host, token=token))
        assert data == {"node": None}, edge


def test_node_of_the_other_tenant_and_its_owner_user(gql, alpha, beta):
    token = token_for(alpha.email("owner"), alpha.tenant)
    query = "query($id: ID!) { node(id: $id) { id } }"
    beta_tenant_id = ok(
        gql.post(
            "{ tenant { id } }", host=beta.host, token=token_for(beta.email("owner"), beta.tenant)
        )
    )["tenant"]["id"]
    assert ok(gql.post(query, {"id": beta_tenant_id}, host=alpha.host, token=token)) == {
        "node": None
    }
    beta_owner = ok(
        gql.post(
            "{ me { user { id } } }",
            host=beta.host,
            token=token_for(beta.email("owner"), beta.tenant),
        )
    )["me"]["user"]["id"]
    assert ok(gql.post(query, {"id": beta_owner}, host=alpha.host, token=token)) == {"node": None}
