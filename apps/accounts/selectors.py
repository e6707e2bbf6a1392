"""Reads of users, memberships and credentials."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING

from apps.accounts.models import ApiKey, Membership, User

if TYPE_CHECKING:
    from tenants.models import Tenant

API_KEY_MARK = "sk"
# What services.create_api_key makes (a hex prefix, a URL-safe secret), with some slack. Anything
# else is no key, and never reaches a query (a NUL in it would be a 500 from PostgreSQL).
_API_KEY = re.compile(rf"{API_KEY_MARK}_([A-Za-z0-9]{{1,16}})_([A-Za-z0-9_-]{{1,128}})")


def split_api_key(raw_key: str) -> tuple[str, str] | None:
    """`sk_<prefix>_<secret>` → (prefix, secret), or None when it is not of that form."""
    match = _API_KEY.fullmatch(raw_key)
    return (match[1], match[2]) if match else None


def hash_secret(secret: str) -> str:
    # The secret is 32 random bytes: a fast hash is enough, and keeps key checks cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def tenant_id_for_api_key(raw_key: str) -> int | None:
    """The tenant an API key names (its secret is checked later, by authentication)."""
    parts = split_api_key(raw_key)
    if parts is None:
        return None
    return ApiKey.objects.filter(prefix=parts[0]).values_list("tenant_id", flat=True).first()


def api_key_for(raw_key: str) -> ApiKey | None:
    """The key whose prefix and secret both match, whatever its state."""
    parts = split_api_key(raw_key)
    if parts is None:
        return None
    key = ApiKey.objects.select_related("tenant").filter(prefix=parts[0]).first()
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(parts[1])):
        return None
    return key


def membership_for(*, user: User, tenant: Tenant) -> Membership | None:
    return Membership.objects.filter(user=user, tenant=tenant).first()


def owners_count(tenant: Tenant) -> int:
    return Membership.objects.filter(tenant=tenant, role="owner").count()
