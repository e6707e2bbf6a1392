"""The audit log: who did what to which object, filterable, owners and admins only."""

from tests.conftest import token_for

LOG = """query($action: String, $objectType: String) {
  auditLog(first: 50, action: $action, objectType: $objectType) {
    totalCount edges { node { action actorEmail objectType objectId requestId changes } }
  }
}"""


def test_changes_are_logged_with_actor_object_and_request_id(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    gql.post(
        'mutation { apiKeyCreate(name: "ci", role: VIEWER, scopes: ["read"]) { apiKey { prefix } } }',
        host=alpha.host,
        token=owner,
        headers={"X-Request-ID": "audit-1"},
    )
    gql.post(
        'mutation { tenantUpdate(input: {name: "Alpha Audited"}) { tenant { name } } }',
        host=alpha.host,
        token=owner,
        headers={"X-Request-ID": "audit-2"},
    )
    everything = gql.post(LOG, host=alpha.host, token=owner).data["auditLog"]
    actions = [edge["node"]["action"] for edge in everything["edges"]]
    assert actions[:2] == ["tenant.update", "api_key.create"]  # newest first
    update = everything["edges"][0]["node"]
    assert update["actorEmail"] == alpha.email("owner") and update["requestId"] == "audit-2"
    assert update["objectType"] == "Tenant" and update["changes"] == {
        "name": ["Alpha", "Alpha Audited"]
    }


def test_filters(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    gql.post(
        'mutation { apiKeyCreate(name: "a", role: VIEWER, scopes: ["read"]) { apiKey { prefix } } }',
        host=alpha.host,
        token=owner,
    )
    gql.post(
        'mutation { tenantUpdate(input: {name: "Alpha F"}) { tenant { name } } }',
        host=alpha.host,
        token=owner,
    )
    by_prefix = gql.post(LOG, {"action": "api_key."}, host=alpha.host, token=owner).data["auditLog"]
    assert (
        by_prefix["totalCount"] == 1 and by_prefix["edges"][0]["node"]["action"] == "api_key.create"
    )
    by_type = gql.post(LOG, {"objectType": "Tenant"}, host=alpha.host, token=owner).data["auditLog"]
    assert {e["node"]["action"] for e in by_type["edges"]} == {"tenant.update"}


def test_only_owners_and_admins_read_the_log(gql, alpha, beta):
    for role, allowed in (("owner", True), ("admin", True), ("staff", False), ("viewer", False)):
        response = gql.post(LOG, host=alpha.host, token=token_for(alpha.email(role), alpha.tenant))
        assert (response.codes == []) == allowed, (role, response.body)
    beta_owner = token_for(beta.email("owner"), beta.tenant)
    gql.post(
        'mutation { tenantUpdate(input: {name: "Beta B"}) { tenant { name } } }',
        host=beta.host,
        token=beta_owner,
    )
    alpha_log = gql.post(
        LOG, host=alpha.host, token=token_for(alpha.email("owner"), alpha.tenant)
    ).data["auditLog"]
    assert all("Beta" not in str(edge["node"]["changes"]) for edge in alpha_log["edges"])
