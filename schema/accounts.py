"""Sign-in tokens, the current user, members and API keys."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from strawberry.types import Info
from strawberry_django.relay import DjangoListConnection

from apps.accounts import services
from apps.accounts.models import ApiKey, Membership
from schema.context import principal, tenant, tenant_or_none
from schema.errors import AccountError, payload_or_errors
from schema.ids import TenantNode, pk_of
from schema.types import RoleEnum, TenantScoped, UserType, as_type


@strawberry_django.type(Membership, name="Member")
class MemberType(TenantScoped, TenantNode):
    user: UserType
    created: datetime

    @strawberry_django.field(only=["role"])
    def role(self, root: Membership) -> RoleEnum:
        return RoleEnum(root.role)


@strawberry_django.type(ApiKey, name="ApiKey")
class ApiKeyType(TenantScoped, TenantNode):
    name: str
    prefix: str
    scopes: list[str]
    created: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @strawberry_django.field(only=["role"])
    def role(self, root: ApiKey) -> RoleEnum:
        return RoleEnum(root.role)


@strawberry.type
class Me:
    user: UserType | None
    role: RoleEnum | None
    via: str
    api_key: ApiKeyType | None


@strawberry.type
class TokenPayload:
    token: str | None = None
    refresh_token: str | None = None
    user: UserType | None = None
    user_errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class TokenVerifyPayload:
    valid: bool
    payload: strawberry.scalars.JSON | None = None
    user_errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class TokenRevokePayload:
    revoked: bool
    user_errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class MemberPayload:
    member: MemberType | None = None
    invitation_token: str | None = None
    user_errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class MemberRemovePayload:
    removed_id: strawberry.ID | None = None
    user_errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKeyType | None = None
    secret: str | None = strawberry.field(
        default=None, description="Shown once; only a hash is kept."
    )
    user_errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class InvitationAcceptPayload:
    user: UserType | None = None
    user_errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class Query:
    members: DjangoListConnection[MemberType] = strawberry_django.connection()
    api_keys: DjangoListConnection[ApiKeyType] = strawberry_django.connection()

    @strawberry.field
    def me(self, info: Info) -> Me:
        who = principal(info)
        return Me(
            user=as_type(UserType, who.user),
            role=RoleEnum(who.role) if who.role else None,
            via=who.via,
            api_key=as_type(ApiKeyType, who.api_key),
        )


@strawberry.type
class Mutation:
    @strawberry.mutation
    def token_create(self, info: Info, email: str, password: str) -> TokenPayload:
        def make() -> TokenPayload:
            user, access, refresh = services.create_tokens(
                email=email, password=password, tenant=tenant_or_none(info)
            )
            return TokenPayload(token=access, refresh_token=refresh, user=as_type(UserType, user))

        return payload_or_errors(
            make, lambda errors: TokenPayload(user_errors=errors), AccountError
        )

    @strawberry.mutation
    def token_refresh(self, info: Info, refresh_token: str) -> TokenPayload:
        def make() -> TokenPayload:
            access, refresh = services.refresh_tokens(
                refresh_token=refresh_token, tenant=tenant_or_none(info)
            )
            return TokenPayload(token=access, refresh_token=refresh)

        return payload_or_errors(
            make, lambda errors: TokenPayload(user_errors=errors), AccountError
        )

    @strawberry.mutation
    def token_verify(self, info: Info, token: str) -> TokenVerifyPayload:
        return payload_or_errors(
            lambda: TokenVerifyPayload(
                valid=True,
                payload=strawberry.scalars.JSON(
                    services.verify_access_token(token=token, tenant=tenant(info))
                ),
            ),
            lambda errors: TokenVerifyPayload(valid=False, user_errors=errors),
            AccountError,
        )

    @strawberry.mutation
    def token_revoke(self, info: Info, refresh_token: str) -> TokenRevokePayload:
        def make() -> TokenRevokePayload:
            services.revoke_refresh_token(refresh_token=refresh_token, tenant=tenant_or_none(info))
            return TokenRevokePayload(revoked=True)

        return payload_or_errors(
            make, lambda errors: TokenRevokePayload(revoked=False, user_errors=errors), AccountError
        )

    @strawberry.mutation
    def member_add(
        self, info: Info, email: str, role: RoleEnum, full_name: str = ""
    ) -> MemberPayload:
        def make() -> MemberPayload:
            member, invitation = services.add_member(
                actor=principal(info),
                tenant=tenant(info),
                email=email,
                role=role.value,
                full_name=full_name,
            )
            return MemberPayload(member=as_type(MemberType, member), invitation_token=invitation)

        return payload_or_errors(
            make, lambda errors: MemberPayload(user_errors=errors), AccountError
        )

    @strawberry.mutation
    def member_update_role(self, info: Info, id: strawberry.ID, role: RoleEnum) -> MemberPayload:
        def make() -> MemberPayload:
            member = services.change_member_role(
                actor=principal(info),
                tenant=tenant(info),
                membership_id=pk_of(id, "Member", info),
                role=role.value,
            )
            return MemberPayload(member=as_type(MemberType, member))

        return payload_or_errors(
            make, lambda errors: MemberPayload(user_errors=errors), AccountError
        )

    @strawberry.mutation
    def member_remove(self, info: Info, id: strawberry.ID) -> MemberRemovePayload:
        def make() -> MemberRemovePayload:
            services.remove_member(
                actor=principal(info), tenant=tenant(info), membership_id=pk_of(id, "Member", info)
            )
            return MemberRemovePayload(removed_id=id)

        return payload_or_errors(
            make, lambda errors: MemberRemovePayload(user_errors=errors), AccountError
        )

    @strawberry.mutation
    def invitation_accept(
        self, info: Info, token: str, password: str, full_name: str = ""
    ) -> InvitationAcceptPayload:
        def make() -> InvitationAcceptPayload:
            user = services.accept_invitation(
                tenant=tenant(info), token=token, password=password, full_name=full_name
            )
            return InvitationAcceptPayload(user=as_type(UserType, user))

        return payload_or_errors(
            make, lambda errors: InvitationAcceptPayload(user_errors=errors), AccountError
        )

    @strawberry.mutation
    def api_key_create(
        self,
        info: Info,
        name: str,
        role: RoleEnum,
        scopes: list[str],
        expires_at: datetime | None = None,
    ) -> ApiKeyPayload:
        def make() -> ApiKeyPayload:
            key, secret = services.create_api_key(
                actor=principal(info),
                tenant=tenant(info),
                name=name,
                role=role.value,
                scopes=scopes,
                expires_at=expires_at,
            )
            return ApiKeyPayload(api_key=as_type(ApiKeyType, key), secret=secret)

        return payload_or_errors(
            make, lambda errors: ApiKeyPayload(user_errors=errors), AccountError
        )

    @strawberry.mutation
    def api_key_revoke(self, info: Info, id: strawberry.ID) -> ApiKeyPayload:
        def make() -> ApiKeyPayload:
            key = services.revoke_api_key(
                actor=principal(info), tenant=tenant(info), key_id=pk_of(id, "ApiKey", info)
            )
            return ApiKeyPayload(api_key=as_type(ApiKeyType, key))

        return payload_or_errors(
            make, lambda errors: ApiKeyPayload(user_errors=errors), AccountError
        )


__all__ = ["ApiKeyType", "MemberType", "Mutation", "Query"]
