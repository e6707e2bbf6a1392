"""Who is calling: one function for HTTP and WebSocket, from a bearer JWT, an API key or a
Django session. Every credential is bound to one tenant and refused on any other (403)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import jwt
from django.utils import timezone
from graphql_jwt.settings import jwt_settings

from apps.accounts import selectors
from apps.accounts.models import ApiKey, User
from tenants.errors import AuthenticationError, forbidden

if TYPE_CHECKING:
    from tenants.models import Tenant

# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass
class Principal:
    tenant: Tenant | None = None
    user: User | None = None
    role: str | None = None
    api_key: ApiKey | None = None
    via: str = "anonymous"  # anonymous | jwt | api_key | session
    client_ip: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_authenticated(self) -> bool:
        return self.via != "anonymous"

    @property
    def is_platform_staff(self) -> bool:
        return self.tenant is None and self.user is not None and self.user.is_staff

    @property
    def credential_id(self) -> str:
        """What rate buckets are kept per (with the tenant)."""
        if self.api_key is not None:
            return f"key:{self.api_key.prefix}"
        if self.user is not None:
            return f"user:{self.user.pk}"
        return f"ip:{self.client_ip or 'unknown'}"

    def may(self, scope: str) -> bool:
        """API keys are limited by their scopes; people by their role only."""
        return self.api_key is None or scope in self.scopes


def _tenant_slug(tenant: Tenant | None) -> str | None:
    return getattr(tenant, "slug", None)


def decode_access_token(token: str) -> dict:
    try:
        return jwt_settings.JWT_DECODE_HANDLER(token, None)
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("The token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthenticationError("The token is not valid.") from exc


def _from_jwt(token: str, tenant: Tenant | None, client_ip: str) -> Principal:
    payload = decode_access_token(token)
    if payload.get("tenant") != _tenant_slug(tenant):
        raise forbidden("This token was issued for another tenant.")
    user = User.objects.filter(email__iexact=payload.get("email", ""), is_active=True).first()
    if user is None:
        raise AuthenticationError("The token's user no longer exists.")
    return _as_user(user, tenant, "jwt", client_ip)


def _as_user(user: User, tenant: Tenant | None, via: str, client_ip: str) -> Principal:
    role = None
    if tenant is not None:
        membership = selectors.membership_for(user=user, tenant=tenant)
        if membership is None:
            raise forbidden("You are not a member of this tenant.")
        role = membership.role
    return Principal(tenant=tenant, user=user, role=role, via=via, client_ip=client_ip)


def _from_api_key(raw_key: str, tenant: Tenant | None, client_ip: str) -> Principal:
    key = selectors.api_key_for(raw_key)
    if key is None or not key.is_usable():
        raise AuthenticationError("The API key is not valid, revoked or expired.")
    if tenant is None or key.tenant_id != tenant.pk:
        raise forbidden("This API key belongs to another tenant.")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return Principal(
        tenant=tenant,
        role=key.role,
        api_key=key,
        via="api_key",
        client_ip=client_ip,
        scopes=frozenset(key.scopes),
    )


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() not in ("bearer", "jwt") or not token.strip():
        raise AuthenticationError("Authorization must be 'Bearer <token>'.")
    return token.strip()


def authenticate(
    *,
    tenant: Tenant | None,
    authorization: str | None = None,
    api_key: str | None = None,
    session_user: User | None = None,
    session_tenant: str | None = None,
    client_ip: str = "",
) -> Principal:
    """The caller of a request to `tenant` (None: the platform host). Raises RequestRefused."""
    token = bearer_token(authorization)
    if token is not None:
        if selectors.split_api_key(token) is not None:  # `Bearer sk_…`: an API key, as X-API-Key
            return _from_api_key(token, tenant, client_ip)
        return _from_jwt(token, tenant, client_ip)
    if api_key:
        return _from_api_key(api_key, tenant, client_ip)
    if session_user is not None and session_user.is_authenticated:
        if session_tenant != _tenant_slug(tenant):
            raise forbidden("This session was opened for another tenant.")
        return _as_user(session_user, tenant, "session", client_ip)
    return Principal(tenant=tenant, client_ip=client_ip)
