"""API keys: created by owners/admins, shown once, stored hashed, scoped, revocable, expiring."""

from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import ApiKey
from tests.conftest import token_for

CREATE = """mutation($name: String!, $role: Role!, $scopes: [String!]!, $expiresAt: DateTime) {
  apiKeyCreate(name: $name, role: $role, scopes: $scopes, expiresAt: $expiresAt) {
    secret apiKey { id name prefix role scopes lastUsedAt } userErrors { field code }
  }
}"""
REVOKE = "mutation($id: ID!) { apiKeyRevoke(id: $id) { apiKey { revokedAt } userErrors { code } } }"


def _create(gql, fixture, **variables):
    token = token_for(fixture.email("admin"), fixture.tenant)
    values = {"name": "script", "role": "VIEWER", "scopes": ["read"], **variables}
    return gql.post(CREATE, values, host=fixture.host, token=token).data["apiKeyCreate"]


def test_a_key_is_shown_once_stored_hashed_and_works(gql, alpha):
    created = _create(gql, alpha)
    secret, key = created["secret"], created["apiKey"]
    assert created["userErrors"] == [] and secret.startswith(f"sk_{key['prefix']}_")
    row = ApiKey.objects.get(prefix=key["prefix"])
    assert secret.split("_", 2)[2] not in row.secret_hash and len(row.secret_hash) == 64
    me = gql.post("{ me { via role apiKey { name } } }", host=alpha.host, api_key=secret)
    assert me.data == {"me": {"via": "api_key", "role": "VIEWER", "apiKey": {"name": "script"}}}
    row.refresh_from_db()
    assert row.last_used_at is not None
    listed = gql.post(
        "{ apiKeys(first: 100) { edges { node { prefix } } } }",
        host=alpha.host,
        token=token_for(alpha.email("owner"), alpha.tenant),
    )
    assert key["prefix"] in {e["node"]["prefix"] for e in listed.data["apiKeys"]["edges"]}
    assert "secret" not in str(listed.body).lower().replace("secret_hash", "")


def test_wrong_secret_revoked_and_expired_keys_are_refused(gql, alpha):
    created = _create(gql, alpha)
    prefix = created["apiKey"]["prefix"]
    wrong = gql.post("{ me { via } }", host=alpha.host, api_key=f"sk_{prefix}_wrongsecret")
    assert wrong.status == 401 and wrong.codes == ["UNAUTHENTICATED"]
    revoked = gql.post(
        REVOKE,
        {"id": created["apiKey"]["id"]},
        host=alpha.host,
        token=token_for(alpha.email("owner"), alpha.tenant),
    )
    assert revoked.data["apiKeyRevoke"]["apiKey"]["revokedAt"] is not None
    assert gql.post("{ me { via } }", host=alpha.host, api_key=created["secret"]).codes == [
        "UNAUTHENTICATED"
    ]
    expiring = _create(gql, alpha, expiresAt=(timezone.now() + timedelta(hours=1)).isoformat())
    ApiKey.objects.filter(prefix=expiring["apiKey"]["prefix"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert gql.post("{ me { via } }", host=alpha.host, api_key=expiring["secret"]).codes == [
        "UNAUTHENTICATED"
    ]


def test_bad_key_requests_are_user_errors(gql, alpha):
    before = ApiKey.objects.count()
    assert _create(gql, alpha, role="OWNER")["userErrors"] == [
        {"field": "role", "code": "PERMISSION_DENIED"}
    ]
    assert _create(gql, alpha, scopes=["everything"])["userErrors"] == [
        {"field": "scopes", "code": "INVALID"}
    ]
    assert _create(gql, alpha, name="  ")["userErrors"] == [{"field": "name", "code": "REQUIRED"}]
    past = (timezone.now() - timedelta(days=1)).isoformat()
    assert _create(gql, alpha, expiresAt=past)["userErrors"] == [
        {"field": "expiresAt", "code": "INVALID"}
    ]
    assert ApiKey.objects.count() == before


def test_a_key_acts_with_its_role_and_scopes(gql, alpha):
    writer = _create(gql, alpha, role="ADMIN", scopes=["read", "write"])["secret"]
    renamed = gql.post(
        'mutation { tenantUpdate(input: {name: "Alpha Two"}) { tenant { name } } }',
        host=alpha.host,
        api_key=writer,
    )
    assert renamed.data["tenantUpdate"]["tenant"]["name"] == "Alpha Two"
    viewer = _create(gql, alpha, role="VIEWER", scopes=["read", "write"])["secret"]
    refused = gql.post(
        'mutation { tenantUpdate(input: {name: "X"}) { tenant { name } } }',
        host=alpha.host,
        api_key=viewer,
    )
    assert refused.codes == ["FORBIDDEN"]


def test_viewer_cannot_fetch_a_key_by_global_id(gql, alpha):
    key_id = _create(gql, alpha)["apiKey"]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on ApiKey { name } } }"
    viewer = gql.post(
        query, {"id": key_id}, host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    )
    assert viewer.codes == ["FORBIDDEN"]
    admin = gql.post(
        query, {"id": key_id}, host=alpha.host, token=token_for(alpha.email("admin"), alpha.tenant)
    )
    assert admin.data == {"node": {"name": "script"}}
