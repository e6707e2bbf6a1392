"""tokenCreate / tokenRefresh / tokenVerify / tokenRevoke, each bound to the tenant it was issued on."""

from tests.conftest import PASSWORD, PLATFORM_HOST, token_for

CREATE = """mutation($email: String!, $password: String!) {
  tokenCreate(email: $email, password: $password) { token refreshToken user { email } userErrors { field code } }
}"""
REFRESH = "mutation($t: String!) { tokenRefresh(refreshToken: $t) { token refreshToken userErrors { code } } }"
VERIFY = "mutation($t: String!) { tokenVerify(token: $t) { valid payload userErrors { code } } }"
REVOKE = "mutation($t: String!) { tokenRevoke(refreshToken: $t) { revoked userErrors { code } } }"


def _create(gql, host, email, password=PASSWORD):
    return gql.post(CREATE, {"email": email, "password": password}, host=host).data["tokenCreate"]


def test_sign_in_gives_a_working_token_for_that_tenant(gql, alpha):
    created = _create(gql, alpha.host, alpha.email("analyst"))
    assert created["userErrors"] == [] and created["user"] == {"email": alpha.email("analyst")}
    me = gql.post("{ me { role via } }", host=alpha.host, token=created["token"])
    assert me.data == {"me": {"role": "ANALYST", "via": "jwt"}}


def test_wrong_password_and_non_members_get_the_same_user_error(gql, alpha, beta):
    wrong = _create(gql, alpha.host, alpha.email("owner"), "not-the-password")
    stranger = _create(gql, alpha.host, beta.email("owner"))
    for payload in (wrong, stranger):
        assert payload["token"] is None
        assert payload["userErrors"] == [{"field": "email", "code": "INVALID_CREDENTIALS"}]


def test_only_platform_staff_sign_in_on_the_platform_host(gql, alpha):
    assert (
        _create(gql, PLATFORM_HOST, alpha.email("owner"))["userErrors"][0]["code"]
        == "INVALID_CREDENTIALS"
    )
    assert _create(gql, PLATFORM_HOST, "staff@platform.test")["token"]


def test_refresh_rotates_and_the_old_refresh_token_dies(gql, alpha):
    created = _create(gql, alpha.host, alpha.email("staff"))
    first = gql.post(REFRESH, {"t": created["refreshToken"]}, host=alpha.host).data["tokenRefresh"]
    assert (
        first["userErrors"] == []
        and first["token"]
        and first["refreshToken"] != created["refreshToken"]
    )
    again = gql.post(REFRESH, {"t": created["refreshToken"]}, host=alpha.host).data["tokenRefresh"]
    assert again["token"] is None and again["userErrors"] == [{"code": "INVALID_TOKEN"}]


def test_a_refresh_token_works_only_on_its_tenant(gql, alpha, beta):
    created = _create(gql, alpha.host, alpha.email("owner"))
    elsewhere = gql.post(REFRESH, {"t": created["refreshToken"]}, host=beta.host).data[
        "tokenRefresh"
    ]
    assert elsewhere["token"] is None and elsewhere["userErrors"] == [{"code": "INVALID_TOKEN"}]


def test_revoked_refresh_token_cannot_refresh(gql, alpha):
    created = _create(gql, alpha.host, alpha.email("viewer"))
    revoked = gql.post(REVOKE, {"t": created["refreshToken"]}, host=alpha.host).data["tokenRevoke"]
    assert revoked == {"revoked": True, "userErrors": []}
    after = gql.post(REFRESH, {"t": created["refreshToken"]}, host=alpha.host).data["tokenRefresh"]
    assert after["userErrors"] == [{"code": "INVALID_TOKEN"}]


def test_verify_checks_signature_and_tenant(gql, alpha, beta):
    token = token_for(alpha.email("owner"), alpha.tenant)
    ok = gql.post(VERIFY, {"t": token}, host=alpha.host).data["tokenVerify"]
    assert (
        ok["valid"] is True
        and ok["payload"]["tenant"] == "alpha"
        and ok["payload"]["role"] == "owner"
    )
    other = gql.post(VERIFY, {"t": token}, host=beta.host).data["tokenVerify"]
    assert other["valid"] is False
    forged = gql.post(VERIFY, {"t": token[:-4] + "abcd"}, host=alpha.host).data["tokenVerify"]
    assert forged == {"valid": False, "payload": None, "userErrors": [{"code": "INVALID_TOKEN"}]}


def test_an_expired_token_is_unauthenticated(gql, alpha, settings):
    from datetime import timedelta

    from graphql_jwt.settings import jwt_settings

    original = jwt_settings.JWT_EXPIRATION_DELTA
    jwt_settings.JWT_EXPIRATION_DELTA = timedelta(seconds=-10)
    try:
        token = token_for(alpha.email("owner"), alpha.tenant)
    finally:
        jwt_settings.JWT_EXPIRATION_DELTA = original
    response = gql.post("{ me { role } }", host=alpha.host, token=token)
    assert response.status == 401 and response.codes == ["UNAUTHENTICATED"]


def test_a_removed_member_token_stops_working(gql, alpha):
    from apps.accounts.models import Membership

    token = token_for(alpha.email("staff"), alpha.tenant)
    Membership.objects.filter(user__email=alpha.email("staff"), tenant=alpha.tenant).delete()
    response = gql.post("{ me { role } }", host=alpha.host, token=token)
    assert response.status == 403 and response.codes == ["FORBIDDEN"]
