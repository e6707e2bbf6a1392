"""Credentials are bound to a tenant (DESIGN §3): a JWT or API key of one tenant is refused (403)
on any other, however the other tenant is named; a dead or forged credential is 401."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.utils import timezone
from graphql_jwt.settings import jwt_settings

from apps.accounts.authentication import Principal
from apps.accounts.models import ApiKey, Membership, User
from apps.accounts.services import create_api_key
from tests.conftest import PLATFORM_HOST, token_for

QUERY = "{ tenant { slug } }"
METHODS = ["host", "header", "query"]


def api_key_of(fixture, *, name: str = "binding") -> tuple[ApiKey, str]:
    owner = User.objects.get(email=fixture.email("owner"))
    actor = Principal(tenant=fixture.tenant, user=owner, role="owner", via="jwt")
    return create_api_key(
        actor=actor, tenant=fixture.tenant, name=name, role="viewer", scopes=["read"]
    )


def assert_refused(response, status: int, code: str) -> None:
    assert response.status == status, response.body
    assert response.data is None, response.body
    assert response.codes == [code], response.body


@pytest.mark.parametrize("method", METHODS)
def test_own_jwt_is_accepted_by_every_method(gql, alpha, method):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(QUERY, token=token, **alpha.named_by(method))
    assert response.status == 200, response.body
    assert response.data == {"tenant": {"slug": "alpha"}}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("role", ["owner", "viewer"])
def test_jwt_of_alpha_is_refused_on_beta(gql, alpha, beta, method, role):
    token = token_for(alpha.email(role), alpha.tenant)
    assert_refused(gql.post(QUERY, token=token, **beta.named_by(method)), 403, "FORBIDDEN")


def test_jwt_of_alpha_is_refused_on_beta_for_a_member_of_both(gql, alpha, beta):
    """Being a member of beta too does not make an alpha token good there."""
    owner = User.objects.get(email=alpha.email("owner"))
    Membership.objects.create(user=owner, tenant=beta.tenant, role="owner")
    token = token_for(alpha.email("owner"), alpha.tenant)
    assert_refused(gql.post(QUERY, token=token, host=beta.host), 403, "FORBIDDEN")
    # ...while a token issued for beta is.
    beta_token = token_for(alpha.email("owner"), beta.tenant)
    response = gql.post(QUERY, token=beta_token, host=beta.host)
    assert response.data == {"tenant": {"slug": "beta"}}, response.body


def test_jwt_of_alpha_is_refused_on_the_platform_host(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    assert_refused(gql.post("{ me { via } }", host=PLATFORM_HOST, token=token), 403, "FORBIDDEN")


@pytest.mark.parametrize("method", METHODS)
def test_own_api_key_is_accepted_by_every_method(gql, alpha, method):
    _, secret = api_key_of(alpha)
    response = gql.post(QUERY, api_key=secret, **alpha.named_by(method))
    assert response.status == 200, response.body
    assert response.data == {"tenant": {"slug": "alpha"}}


@pytest.mark.parametrize("method", METHODS)
def test_api_key_of_alpha_is_refused_on_beta(gql, alpha, beta, method):
    _, secret = api_key_of(alpha)
    assert_refused(gql.post(QUERY, api_key=secret, **beta.named_by(method)), 403, "FORBIDDEN")


def test_api_key_of_alpha_does_not_write_last_used_on_beta(gql, alpha, beta):
    key, secret = api_key_of(alpha)
    gql.post(QUERY, api_key=secret, host=beta.host)
    key.refresh_from_db()
    assert key.last_used_at is None
    gql.post(QUERY, api_key=secret, host=alpha.host)
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize("method", ["host", "header"])
def test_platform_token_is_refused_on_a_tenant(gql, alpha, method):
    token = token_for("staff@platform.test", None)
    assert_refused(gql.post(QUERY, token=token, **alpha.named_by(method)), 403, "FORBIDDEN")


def test_revoked_api_key_is_unauthenticated(gql, alpha):
    key, secret = api_key_of(alpha)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert_refused(gql.post(QUERY, api_key=secret, host=alpha.host), 401, "UNAUTHENTICATED")
    # Alone on the platform host it still names alpha, and is still refused.
    assert_refused(gql.post(QUERY, api_key=secret, host=PLATFORM_HOST), 401, "UNAUTHENTICATED")


def test_expired_api_key_is_unauthenticated(gql, alpha):
    key, secret = api_key_of(alpha)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_refused(gql.post(QUERY, api_key=secret, host=alpha.host), 401, "UNAUTHENTICATED")


def test_api_key_with_a_wrong_secret_is_unauthenticated(gql, alpha):
    _, secret = api_key_of(alpha)
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert_refused(gql.post(QUERY, api_key=forged, host=alpha.host), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("key", ["sk_nope_nope", "garbage"])
def test_unknown_api_key_is_unauthenticated(gql, alpha, key):
    assert_refused(gql.post(QUERY, api_key=key, host=alpha.host), 401, "UNAUTHENTICATED")
    assert_refused(gql.post(QUERY, api_key=key, host=PLATFORM_HOST), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("host", ["alpha", "platform"])
def test_garbage_bearer_token_is_unauthenticated(gql, alpha, host):
    response = gql.post(
        QUERY, token="not.a.jwt", host=alpha.host if host == "alpha" else PLATFORM_HOST
    )
    assert_refused(response, 401, "UNAUTHENTICATED")


def test_token_signed_with_another_key_is_unauthenticated(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    payload = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(payload, "not-the-secret-key-but-long-enough-0123456789", algorithm="HS256")
    assert_refused(gql.post(QUERY, token=forged, host=alpha.host), 401, "UNAUTHENTICATED")


def test_expired_token_is_unauthenticated(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    payload = jwt.decode(token, options={"verify_signature": False})
    payload["exp"] = int((timezone.now() - timedelta(minutes=1)).timestamp())
    expired = jwt_settings.JWT_ENCODE_HANDLER(payload, None)
    assert_refused(gql.post(QUERY, token=expired, host=alpha.host), 401, "UNAUTHENTICATED")


def test_token_of_a_removed_member_is_refused(gql, alpha):
    token = token_for(alpha.email("staff"), alpha.tenant)
    Membership.objects.filter(user__email=alpha.email("staff"), tenant=alpha.tenant).delete()
    assert_refused(gql.post(QUERY, token=token, host=alpha.host), 403, "FORBIDDEN")


def test_token_of_a_deactivated_user_is_unauthenticated(gql, alpha):
    token = token_for(alpha.email("staff"), alpha.tenant)
    User.objects.filter(email=alpha.email("staff")).update(is_active=False)
    assert_refused(gql.post(QUERY, token=token, host=alpha.host), 401, "UNAUTHENTICATED")


def test_bad_authorization_scheme_is_unauthenticated(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.post(QUERY, host=alpha.host, headers={"Authorization": f"Basic {token}"})
    assert_refused(response, 401, "UNAUTHENTICATED")


def test_a_bad_token_is_not_rescued_by_a_good_api_key(gql, alpha):
    _, secret = api_key_of(alpha)
    response = gql.post(QUERY, token="not.a.jwt", api_key=secret, host=alpha.host)
    assert_refused(response, 401, "UNAUTHENTICATED")
