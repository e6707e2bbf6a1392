"""The current tenant, sign-up on the platform host, and platform staff's tenant administration."""

from django.db import connection
from django_tenants.utils import schema_exists

from apps.accounts.models import Membership
from tenants.models import Domain, Tenant
from tests.conftest import PLATFORM_HOST, gid, token_for

UPDATE = (
    "mutation($input: TenantUpdateInput!) { tenantUpdate(input: $input) { tenant { name "
    "timeZone currency settings } userErrors { field code } } }"
)
SIGN_UP = """mutation($input: TenantCreateInput!) {
  tenantCreate(input: $input) { tenant { id slug domains status } userErrors { field code } }
}"""
SUSPEND = "mutation($id: ID!) { tenantSuspend(id: $id) { tenant { status } userErrors { code } } }"
RESUME = "mutation($id: ID!) { tenantResume(id: $id) { tenant { status } userErrors { code } } }"


def _sign_up(gql, **fields):
    values = {
        "name": "Initech",
        "slug": "initech",
        "ownerEmail": "boss@initech.test",
        "ownerPassword": "a-Long-pass-42",
        **fields,
    }
    return gql.post(SIGN_UP, {"input": values}, host=PLATFORM_HOST).data["tenantCreate"]


def test_owner_updates_the_tenant(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    changes = {
        "name": "Alpha Inc",
        "timeZone": "Europe/Paris",
        "currency": "eur",
        "settings": {"cors_allowed_origins": ["https://shop.alpha.test"]},
    }
    response = gql.post(UPDATE, {"input": changes}, host=alpha.host, token=owner)
    assert response.data["tenantUpdate"] == {
        "tenant": {
            "name": "Alpha Inc",
            "timeZone": "Europe/Paris",
            "currency": "EUR",
            "settings": {"cors_allowed_origins": ["https://shop.alpha.test"]},
        },
        "userErrors": [],
    }


def test_invalid_tenant_changes_are_user_errors_and_change_nothing(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    cases = [
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"currency": "EURO"}, "currency"),
        ({"settings": {"unknown_key": 1}}, "settings"),
        ({"settings": {"cors_allowed_origins": ["ftp://x"]}}, "settings"),
    ]
    for changes, field in cases:
        response = gql.post(UPDATE, {"input": changes}, host=alpha.host, token=owner)
        assert response.data["tenantUpdate"]["userErrors"] == [
            {"field": field, "code": "INVALID"}
        ], changes
    alpha.tenant.refresh_from_db()
    assert alpha.tenant.time_zone == "UTC" and alpha.tenant.currency == "USD"


def test_sign_up_creates_tenant_schema_domain_and_owner(gql, tenants, db):
    payload = _sign_up(gql)
    assert payload["userErrors"] == []
    assert payload["tenant"]["slug"] == "initech" and payload["tenant"]["domains"] == [
        "initech.localhost"
    ]
    tenant = Tenant.objects.get(slug="initech")
    assert schema_exists(tenant.schema_name)
    assert Membership.objects.get(tenant=tenant).role == "owner"
    signed_in = gql.post(
        'mutation { tokenCreate(email: "boss@initech.test", password: "a-Long-pass-42") { token } }',
        host="initech.localhost",
    )
    token = signed_in.data["tokenCreate"]["token"]
    me = gql.post(
        "{ tenant { slug } me { role } auditLog(first: 5) { edges { node { action } } } }",
        host="initech.localhost",
        token=token,
    )
    # its own, fresh audit log: nothing but the owner's sign-in
    assert me.data == {
        "tenant": {"slug": "initech"},
        "me": {"role": "OWNER"},
        "auditLog": {"edges": [{"node": {"action": "token.create"}}]},
    }


def test_bad_sign_ups_write_nothing(gql, tenants, db):
    cases = [
        ({"slug": "alpha"}, "slug", "DUPLICATE"),
        ({"slug": "admin"}, "slug", "RESERVED"),
        ({"slug": "Bad_Slug!"}, "slug", "INVALID"),
        ({"ownerEmail": "nope"}, "ownerEmail", "INVALID"),
        ({"ownerPassword": "123"}, "ownerPassword", "WEAK_PASSWORD"),
        ({"timeZone": "Nowhere/Land"}, "timeZone", "INVALID"),
    ]
    tenants_before, domains_before = Tenant.objects.count(), Domain.objects.count()
    for fields, field, code in cases:
        payload = _sign_up(gql, **fields)
        assert payload == {"tenant": None, "userErrors": [{"field": field, "code": code}]}, fields
    assert (Tenant.objects.count(), Domain.objects.count()) == (tenants_before, domains_before)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'initech'"
        )
        assert cursor.fetchone()[0] == 0


def test_sign_up_is_for_the_platform_host_only(gql, alpha):
    response = gql.post(
        SIGN_UP,
        {
            "input": {
                "name": "X",
                "slug": "xcorp",
                "ownerEmail": "x@x.test",
                "ownerPassword": "a-Long-pass-42",
            }
        },
        host=alpha.host,
    )
    assert response.codes == ["BAD_REQUEST"]


def test_platform_staff_suspend_and_resume_a_tenant(gql, alpha):
    staff = token_for("staff@platform.test", None)
    owner = token_for(alpha.email("owner"), alpha.tenant)
    listed = gql.post(
        "{ tenants(first: 50) { edges { node { id slug } } } }", host=PLATFORM_HOST, token=staff
    )
    alpha_id = next(
        e["node"]["id"] for e in listed.data["tenants"]["edges"] if e["node"]["slug"] == "alpha"
    )
    assert "tenant-template" not in str(listed.body)
    suspended = gql.post(SUSPEND, {"id": alpha_id}, host=PLATFORM_HOST, token=staff)
    assert suspended.data["tenantSuspend"] == {"tenant": {"status": "SUSPENDED"}, "userErrors": []}
    refused = gql.post("{ tenant { slug } }", host=alpha.host, token=owner)
    assert refused.status == 403 and refused.codes == ["FORBIDDEN"]
    resumed = gql.post(RESUME, {"id": alpha_id}, host=PLATFORM_HOST, token=staff)
    assert resumed.data["tenantResume"]["tenant"]["status"] == "ACTIVE"
    assert gql.post("{ tenant { slug } }", host=alpha.host, token=owner).data == {
        "tenant": {"slug": "alpha"}
    }


def test_platform_update_of_an_unknown_tenant_is_not_found(gql, tenants, db):
    staff = token_for("staff@platform.test", None)
    response = gql.post(
        SUSPEND, {"id": gid(None, "Tenant", 99999)}, host=PLATFORM_HOST, token=staff
    )
    assert response.data["tenantSuspend"]["userErrors"] == [{"code": "NOT_FOUND"}]
