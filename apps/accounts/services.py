"""Writes for people and credentials: tokens, members, invitations and API keys."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.auth import authenticate as check_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from graphql_jwt.shortcuts import get_token

from apps.accounts import selectors
from apps.accounts.authentication import decode_access_token
from apps.accounts.errors import AccountErrorCode
from apps.accounts.models import ROLE_RANK, ApiKey, Membership, RefreshToken, Role, User
from apps.audit import services as audit
from apps.common.errors import NotFound, PermissionDenied, UserError
from apps.common.ids import parse_id
from apps.common.rules import required_text
from tenants.errors import RequestRefused

if TYPE_CHECKING:
    from apps.accounts.authentication import Principal
    from tenants.models import Tenant

invitation_tokens = PasswordResetTokenGenerator()


# --- tokens -----------------------------------------------------------------------------------


def _token_pair(user: User, tenant: Tenant | None) -> tuple[str, str, RefreshToken]:
    role = None
    if tenant is not None:
        membership = selectors.membership_for(user=user, tenant=tenant)
        role = membership.role if membership else None
    access = get_token(user, None, tenant=getattr(tenant, "slug", None), role=role)
    refresh = RefreshToken.objects.create(user=user, tenant=tenant)
    return access, refresh.get_token(), refresh


def create_tokens(*, email: str, password: str, tenant: Tenant | None) -> tuple[User, str, str]:
    """Sign in: (user, access token, refresh token) for a member of `tenant` (None: platform)."""
    user = check_password(None, username=(email or "").strip().lower(), password=password)
    if user is None:
        raise UserError(
            "Wrong email or password.", field="email", code=AccountErrorCode.INVALID_CREDENTIALS
        )
    if tenant is not None and selectors.membership_for(user=user, tenant=tenant) is None:
        # Same answer as a wrong password: do not tell who is a member of what.
        raise UserError(
            "Wrong email or password.", field="email", code=AccountErrorCode.INVALID_CREDENTIALS
        )
    if tenant is None and not user.is_staff:
        raise UserError(
            "Only platform staff sign in on the platform host.",
            field="email",
            code=AccountErrorCode.INVALID_CREDENTIALS,
        )
    access, refresh, token = _token_pair(user, tenant)
    audit.record(actor=user, action="token.create", obj=token)  # a sign-in
    return user, access, refresh


def _live_refresh_token(token: str, tenant: Tenant | None) -> RefreshToken:
    refresh = (
        RefreshToken.objects.select_related("user")
        .filter(token=token, revoked__isnull=True)
        .first()
    )
    if refresh is None or refresh.tenant_id != getattr(tenant, "pk", None):
        raise UserError(
            "Invalid refresh token.", field="refreshToken", code=AccountErrorCode.INVALID_TOKEN
        )
    if refresh.is_expired() or not refresh.user.is_active:
        raise UserError(
            "The refresh token has expired.", field="refreshToken", code=AccountErrorCode.EXPIRED
        )
    return refresh


@transaction.atomic
def refresh_tokens(*, refresh_token: str, tenant: Tenant | None) -> tuple[str, str]:
    """Rotate: the old refresh token is revoked and a new pair issued."""
    old = _live_refresh_token(refresh_token, tenant)
    if tenant is not None and selectors.membership_for(user=old.user, tenant=tenant) is None:
        raise UserError(
            "You are no longer a member of this tenant.",
            field="refreshToken",
            code=AccountErrorCode.INVALID_TOKEN,
        )
    old.revoke()
    access, refresh, token = _token_pair(old.user, tenant)
    audit.record(actor=old.user, action="token.refresh", obj=token)
    return access, refresh


def revoke_refresh_token(*, refresh_token: str, tenant: Tenant | None) -> None:
    token = _live_refresh_token(refresh_token, tenant)
    token.revoke()
    audit.record(actor=token.user, action="token.revoke", obj=token)


def verify_access_token(*, token: str, tenant: Tenant | None) -> dict:
    """The claims of an access token issued on `tenant`: one that is expired, forged or issued on
    another tenant is INVALID_TOKEN (an answer to the caller, not a refusal of the request)."""
    try:
        claims = decode_access_token(token)
    except RequestRefused as refused:
        raise UserError(
            refused.message, field="token", code=AccountErrorCode.INVALID_TOKEN
        ) from refused
    if claims.get("tenant") != getattr(tenant, "slug", None):
        raise UserError(
            "Issued for another tenant.", field="token", code=AccountErrorCode.INVALID_TOKEN
        )
    return claims


# --- members ------------------------------------------------------------------------------------


def _check_role(role: str, field: str = "role") -> None:
    if role not in Role.values:
        raise UserError(f"Unknown role {role!r}.", field=field, code=AccountErrorCode.INVALID)


def _may_manage(actor_role: str | None, target_role: str) -> bool:
    """Owners manage everyone; admins manage roles below admin."""
    if actor_role == Role.OWNER:
        return True
    return actor_role == Role.ADMIN and ROLE_RANK[target_role] < ROLE_RANK[Role.ADMIN]


@transaction.atomic
def add_member(
    *, actor: Principal, tenant: Tenant, email: str, role: str, full_name: str = ""
) -> tuple[Membership, str | None]:
    """Add a person to the tenant. A new person gets an invitation token to set a password."""
    email = email.strip().lower()
    _check_role(role)
    try:
        validate_email(email)
    except ValidationError as exc:
        raise UserError(
            "Enter a valid email address.", field="email", code=AccountErrorCode.INVALID
        ) from exc
    if not _may_manage(actor.role, role):
        raise PermissionDenied(f"You cannot grant the {role} role.", field="role")
    user = User.objects.filter(email__iexact=email).first()
    invitation = None
    if user is None:
        user = User.objects.create_user(email=email, full_name=full_name)
        invitation = f"{user.pk}-{invitation_tokens.make_token(user)}"
    elif Membership.objects.filter(user=user, tenant=tenant).exists():
        raise UserError(
            "This person is already a member.", field="email", code=AccountErrorCode.DUPLICATE
        )
    membership = Membership.objects.create(user=user, tenant=tenant, role=role)
    audit.record(
        actor=actor,
        action="member.add",
        obj=membership,
        changes={"email": user.email, "role": role},
    )
    return membership, invitation


@transaction.atomic
def accept_invitation(*, tenant: Tenant, token: str, password: str, full_name: str = "") -> User:
    user_id, _, secret = (token or "").partition("-")
    user = User.objects.filter(pk=parse_id(user_id) or -1).first()
    if user is None or not invitation_tokens.check_token(user, secret):
        raise UserError(
            "This invitation is not valid or has been used.",
            field="token",
            code=AccountErrorCode.INVALID_TOKEN,
        )
    if selectors.membership_for(user=user, tenant=tenant) is None:
        raise UserError(
            "This invitation is for another tenant.",
            field="token",
            code=AccountErrorCode.INVALID_TOKEN,
        )
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise UserError(
            " ".join(exc.messages), field="password", code=AccountErrorCode.WEAK_PASSWORD
        ) from exc
    user.set_password(password)
    if full_name:
        user.full_name = full_name
    user.save(update_fields=["password", "full_name"])
    audit.record(actor=user, action="member.accept_invitation", obj=user)
    return user


def _membership(tenant: Tenant, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("user").filter(tenant=tenant, pk=membership_id).first()
    )
    if membership is None:
        raise NotFound("No such member.")
    return membership


def _keep_an_owner(tenant: Tenant, membership: Membership) -> None:
    # Lock the owners first, so two concurrent changes cannot leave the tenant with none.
    list(Membership.objects.select_for_update().filter(tenant=tenant, role=Role.OWNER))
    if membership.role == Role.OWNER and selectors.owners_count(tenant) <= 1:
        raise UserError(
            "A tenant must keep at least one owner.", field="id", code=AccountErrorCode.LAST_OWNER
        )


@transaction.atomic
def change_member_role(
    *, actor: Principal, tenant: Tenant, membership_id: int, role: str
) -> Membership:
    _check_role(role)
    membership = _membership(tenant, membership_id)
    if not (_may_manage(actor.role, membership.role) and _may_manage(actor.role, role)):
        raise PermissionDenied("You cannot change this member's role.", field="role")
    if role != Role.OWNER:
        _keep_an_owner(tenant, membership)
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        actor=actor, action="member.change_role", obj=membership, changes={"role": [before, role]}
    )
    return membership


@transaction.atomic
def remove_member(*, actor: Principal, tenant: Tenant, membership_id: int) -> None:
    membership = _membership(tenant, membership_id)
    if membership.user_id != getattr(actor.user, "pk", None) and not _may_manage(
        actor.role, membership.role
    ):
        raise PermissionDenied("You cannot remove this member.")
    _keep_an_owner(tenant, membership)
    audit.record(
        actor=actor,
        action="member.remove",
        obj=membership,
        changes={"email": membership.user.email},
    )
    membership.delete()


# --- API keys -----------------------------------------------------------------------------------


@transaction.atomic
def create_api_key(
    *,
    actor: Principal,
    tenant: Tenant,
    name: str,
    role: str,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its full secret, which is shown this once and never again."""
    _check_role(role)
    name = required_text(
        name, field="name", max_length=ApiKey.NAME_MAX_LENGTH, missing="Give the key a name."
    )
    if role == Role.OWNER or ROLE_RANK[role] > ROLE_RANK.get(actor.role or "", 0):
        raise PermissionDenied(
            "A key cannot have the owner role or a role above yours.", field="role"
        )
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if not scopes or unknown:
        raise UserError(
            f"Scopes must be some of {', '.join(ApiKey.Scope.values)}.",
            field="scopes",
            code=AccountErrorCode.INVALID,
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise UserError(
            "The expiry must be in the future.", field="expiresAt", code=AccountErrorCode.INVALID
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name.strip(),
        prefix=prefix,
        secret_hash=selectors.hash_secret(secret),
        role=role,
        scopes=sorted(set(scopes)),
        created_by=actor.user,
        expires_at=expires_at,
    )
    audit.record(
        actor=actor, action="api_key.create", obj=key, changes={"role": role, "scopes": key.scopes}
    )
    return key, f"{selectors.API_KEY_MARK}_{prefix}_{secret}"


@transaction.atomic
def revoke_api_key(*, actor: Principal, tenant: Tenant, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(tenant=tenant, pk=key_id).first()
    if key is None:
        raise NotFound("No such API key.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit.record(actor=actor, action="api_key.revoke", obj=key)
    return key
