"""Tenant resolution through the real HTTP path (DESIGN §3): the host, `X-Tenant-ID`,
`?tenant_id=` and `X-API-Key` name a tenant; signals that disagree are 400, an unknown tenant is
404, a suspended one is 403, and no signal on the platform host is the public schema."""

from __future__ import annotations

import pytest

from apps.accounts.authentication import Principal
from apps.accounts.models import User
from apps.accounts.services import create_api_key
from tenants.models import Tenant
from tenants.services import TEMPLATE_SLUG
from tests.conftest import PLATFORM_HOST, token_for

TENANT_SLUG = "{ tenant { slug } }"


def api_key_of(fixture, *, role: str = "viewer", scopes: tuple[str, ...] = ("read",)) -> str:
    owner = User.objects.get(email=fixture.email("owner"))
    actor = Principal(tenant=fixture.tenant, user=owner, role="owner", via="jwt")
    _, secret = create_api_key(
        actor=actor, tenant=fixture.tenant, name="resolution", role=role, scopes=list(scopes)
    )
    return secret


def assert_answered_by(response, slug: str) -> None:
    assert response.status == 200, response.body
    assert response.errors == [], response.body
    assert response.data == {"tenant": {"slug": slug}}


def assert_refused(response, status: int, code: str) -> None:
    assert response.status == status, response.body
    assert response.data is None, response.body
    assert response.codes == [code], response.body


def suspend(fixture) -> None:
    Tenant.objects.filter(pk=fixture.tenant.pk).update(status=Tenant.Status.SUSPENDED)


# --- each signal finds its tenant ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_by_host(gql, tenants, db, name):
    fixture = tenants[name]
    token = token_for(fixture.email("viewer"), fixture.tenant)
    assert_answered_by(gql.post(TENANT_SLUG, host=fixture.host, token=token), name)


def test_by_host_with_port_and_upper_case(gql, alpha):
    token = token_for(alpha.email("viewer"), alpha.tenant)
    host = f"{alpha.host.upper()}:8000"
    assert_answered_by(gql.post(TENANT_SLUG, host=host, token=token), "alpha")


@pytest.mark.parametrize("reference", ["slug", "SLUG", "id"])
def test_by_tenant_header_on_platform_host(gql, beta, reference):
    value = {"slug": beta.slug, "SLUG": beta.slug.upper(), "id": str(beta.tenant.pk)}[reference]
    token = token_for(beta.email("owner"), beta.tenant)
    response = gql.post(
        TENANT_SLUG, host=PLATFORM_HOST, token=token, headers={"X-Tenant-ID": value}
    )
    assert_answered_by(response, "beta")


@pytest.mark.parametrize("reference", ["slug", "id"])
def test_by_query_parameter_on_platform_host(gql, alpha, reference):
    value = alpha.slug if reference == "slug" else str(alpha.tenant.pk)
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(
        TENANT_SLUG, host=PLATFORM_HOST, token=token, path=f"/graphql/?tenant_id={value}"
    )
    assert_answered_by(response, "alpha")


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_by_api_key_alone_on_platform_host(gql, tenants, db, name):
    fixture = tenants[name]
    response = gql.post(
        "{ tenant { slug } me { via role } }", host=PLATFORM_HOST, api_key=api_key_of(fixture)
    )
    assert response.status == 200, response.body
    assert response.errors == [], response.body
    assert response.data == {"tenant": {"slug": name}, "me": {"via": "api_key", "role": "VIEWER"}}


def test_signals_that_agree_are_fine(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(
        TENANT_SLUG,
        host=alpha.host,
        token=token,
        headers={"X-Tenant-ID": str(alpha.tenant.pk)},
        path=f"/graphql/?tenant_id={alpha.slug}",
    )
    assert_answered_by(response, "alpha")


def test_api_key_agreeing_with_the_header(gql, alpha):
    response = gql.post(
        TENANT_SLUG, host=PLATFORM_HOST, api_key=api_key_of(alpha), headers={"X-Tenant-ID": "alpha"}
    )
    assert_answered_by(response, "alpha")


# --- signals that disagree ----------------------------------------------------------------------


def test_host_and_header_disagree(gql, alpha, beta):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(
        TENANT_SLUG, host=alpha.host, token=token, headers={"X-Tenant-ID": beta.slug}
    )
    assert_refused(response, 400, "BAD_REQUEST")


def test_host_and_header_id_disagree(gql, alpha, beta):
    response = gql.post(TENANT_SLUG, host=beta.host, headers={"X-Tenant-ID": str(alpha.tenant.pk)})
    assert_refused(response, 400, "BAD_REQUEST")


def test_header_and_query_disagree(gql, alpha, beta):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(
        TENANT_SLUG,
        host=PLATFORM_HOST,
        token=token,
        headers={"X-Tenant-ID": alpha.slug},
        path=f"/graphql/?tenant_id={beta.slug}",
    )
    assert_refused(response, 400, "BAD_REQUEST")


def test_host_and_query_disagree(gql, alpha, beta):
    response = gql.post(TENANT_SLUG, host=alpha.host, path=f"/graphql/?tenant_id={beta.slug}")
    assert_refused(response, 400, "BAD_REQUEST")


def test_conflict_wins_over_a_suspended_tenant_or_a_credential(gql, alpha, beta):
    """Disagreeing signals are refused before anything else is looked at."""
    suspend(beta)
    response = gql.post(
        TENANT_SLUG, host=alpha.host, api_key=api_key_of(alpha), headers={"X-Tenant-ID": beta.slug}
    )
    assert_refused(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("values", [("alpha", "beta"), ("beta", "alpha")])
def test_a_repeated_query_parameter_naming_two_tenants_is_a_conflict(gql, alpha, beta, values):
    """Neither the first nor the last `tenant_id` wins: two tenants named is a conflict."""
    first, last = values
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(
        TENANT_SLUG,
        host=PLATFORM_HOST,
        token=token,
        path=f"/graphql/?tenant_id={first}&tenant_id={last}",
    )
    assert_refused(response, 400, "BAD_REQUEST")


# --- unknown tenants ----------------------------------------------------------------------------


def test_unknown_host(gql, alpha):
    assert_refused(gql.post(TENANT_SLUG, host="nope.localhost"), 404, "NOT_FOUND")


@pytest.mark.parametrize("value", ["nope", "999999999", TEMPLATE_SLUG])
def test_unknown_header(gql, alpha, value):
    response = gql.post(TENANT_SLUG, host=PLATFORM_HOST, headers={"X-Tenant-ID": value})
    assert_refused(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("value", ["nope", "999999999", TEMPLATE_SLUG])
def test_unknown_query_parameter(gql, alpha, value):
    response = gql.post(TENANT_SLUG, host=PLATFORM_HOST, path=f"/graphql/?tenant_id={value}")
    assert_refused(response, 404, "NOT_FOUND")


def test_unknown_header_on_a_tenant_host(gql, alpha):
    """An unknown tenant named next to a known one is still 404, not a conflict."""
    response = gql.post(TENANT_SLUG, host=alpha.host, headers={"X-Tenant-ID": "nope"})
    assert_refused(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("header", "99999999999999999999999"),  # a number beyond any id column
        ("query", "99999999999999999999999"),
        ("header", "\u00b2"),  # '²' (latin-1): str.isdigit() says yes, int() says no
        ("query", "%C2%B2"),
    ],
)
def test_odd_numeric_references_are_unknown_tenants_not_server_errors(gql, alpha, where, value):
    if where == "header":
        response = gql.post(TENANT_SLUG, host=PLATFORM_HOST, headers={"X-Tenant-ID": value})
    else:
        response = gql.post(TENANT_SLUG, host=PLATFORM_HOST, path=f"/graphql/?tenant_id={value}")
    assert_refused(response, 404, "NOT_FOUND")


# --- suspended tenants --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["host", "header-slug", "header-id", "query", "api-key"])
def test_suspended_tenant_is_refused_by_every_method(gql, alpha, method):
    key = api_key_of(alpha)
    token = token_for(alpha.email("owner"), alpha.tenant)
    suspend(alpha)
    host, headers, path, credentials = PLATFORM_HOST, {}, "/graphql/", {"token": token}
    if method == "host":
        host = alpha.host
    elif method == "header-slug":
        headers = {"X-Tenant-ID": alpha.slug}
    elif method == "header-id":
        headers = {"X-Tenant-ID": str(alpha.tenant.pk)}
    elif method == "query":
        path = f"/graphql/?tenant_id={alpha.slug}"
    else:
        credentials = {"api_key": key}
    response = gql.post(TENANT_SLUG, host=host, headers=headers, path=path, **credentials)
    assert_refused(response, 403, "FORBIDDEN")


def test_suspending_one_tenant_leaves_the_other_alone(gql, alpha, beta):
    suspend(alpha)
    token = token_for(beta.email("viewer"), beta.tenant)
    assert_answered_by(gql.post(TENANT_SLUG, host=beta.host, token=token), "beta")


# --- no signal: the public schema ---------------------------------------------------------------


def test_no_signal_on_platform_host_is_public_and_anonymous(gql, alpha):
    response = gql.post("{ me { via } }", host=PLATFORM_HOST)
    assert response.status == 200, response.body
    assert response.data is None
    assert response.codes == ["UNAUTHENTICATED"]


def test_tenant_fields_need_a_tenant_on_the_platform_host(gql, alpha):
    token = token_for("staff@platform.test", None)
    response = gql.post("{ analyticsOverview { currency } }", host=PLATFORM_HOST, token=token)
    assert response.codes == ["BAD_REQUEST"], response.body
    assert "needs a tenant" in response.errors[0]["message"]
    # `tenant` itself names one by id there (platform staff); without an id it cannot answer.
    unnamed = gql.post(TENANT_SLUG, host=PLATFORM_HOST, token=token)
    assert unnamed.codes == ["BAD_REQUEST"] and "`id`" in unnamed.errors[0]["message"]


def test_platform_staff_on_the_platform_host(gql, alpha):
    token = token_for("staff@platform.test", None)
    response = gql.post("{ me { via role user { email } } }", host=PLATFORM_HOST, token=token)
    assert response.errors == [], response.body
    assert response.data == {
        "me": {"via": "jwt", "role": None, "user": {"email": "staff@platform.test"}}
    }


TENANT_CREATE = """
mutation { tenantCreate(input: {name: "X", slug: "x", ownerEmail: "x@x.test", ownerPassword: "pw"}) {
  tenant { slug } userErrors { field } } }
"""


def test_tenant_create_is_served_on_the_platform_host_only(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    on_tenant = gql.post(TENANT_CREATE, host=alpha.host, token=token)
    assert on_tenant.status == 200, on_tenant.body
    assert on_tenant.codes == ["BAD_REQUEST"], on_tenant.body
    assert "platform host" in on_tenant.errors[0]["message"]

    by_header = gql.post(
        TENANT_CREATE, host=PLATFORM_HOST, token=token, headers={"X-Tenant-ID": "alpha"}
    )
    assert by_header.codes == ["BAD_REQUEST"], by_header.body

    # On the platform host, anonymous, it runs (and refuses this input with userErrors).
    on_platform = gql.post(TENANT_CREATE, host=PLATFORM_HOST)
    assert on_platform.errors == [], on_platform.body
    assert on_platform.data["tenantCreate"]["tenant"] is None
    assert on_platform.data["tenantCreate"]["userErrors"], on_platform.body
    assert not Tenant.objects.filter(slug="x").exists()


def test_probes_answer_on_any_host(gql, alpha):
    assert gql.get("/healthz", host="nope.localhost").status_code == 200
