"""Which tenant a request is for: one function for HTTP and WebSocket (DESIGN §3).

Signals, in order: the host (a tenant domain), `X-Tenant-ID` (slug or id), `?tenant_id=`, and, when
none of those names a tenant, the tenant an `X-API-Key` belongs to. Host, header and query must
agree (400 otherwise); a named tenant that does not exist is 404; a suspended one is 403. An API key
of another tenant is a credential mismatch, refused by authentication (403), not a conflict here.
No signal on a platform host means the public schema.

Every signal is bounded text before anything looks it up: a control character (a NUL would reach
PostgreSQL, which cannot hold one) or an over-long value never names a tenant, so it is a 400 here
rather than a 500 or a 404 from a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_tenants.postgresql_backend.base import FakeTenant

from apps.common.ids import parse_id
from tenants.errors import bad_request, forbidden, not_found
from tenants.models import Domain, Tenant

PUBLIC = FakeTenant(schema_name="public")

# Longest value each signal may hold: a host name (253) with a port; a slug (40) or an id; an API
# key (`sk_` + 12 + `_` + 43 characters), with room to spare.
MAX_LENGTH = {
    "Host header": 300,
    "X-Tenant-ID header": 100,
    "tenant_id parameter": 100,
    "X-API-Key header": 200,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _bounded(value: str | None, source: str) -> str | None:
    """The signal stripped (None when empty); RequestRefused when it is not plain bounded text.
    Checked before stripping: str.strip() takes some control characters (\\x1c-\\x1f) away."""
    if value is None:
        return None
    if _CONTROL.search(value):
        raise bad_request(f"The {source} contains a control character.")
    if len(value) > MAX_LENGTH[source]:
        raise bad_request(f"The {source} is longer than {MAX_LENGTH[source]} characters.")
    return value.strip() or None


@dataclass(frozen=True)
class TenantSignals:
    host: str
    tenant_header: str | None = None
    query_tenant: str | None = None
    api_key: str | None = None

    @classmethod
    def from_headers(
        cls, host: str, headers: dict[str, str], query: dict[str, list[str]]
    ) -> TenantSignals:
        """`headers` with lower-case names; `query` the query string with every value of each
        name, so that a repeated `tenant_id` naming two tenants is a conflict, not "the last one
        wins". Raises RequestRefused."""
        named = {_bounded(value, "tenant_id parameter") for value in query.get("tenant_id", [])} - {
            None
        }
        if len(named) > 1:
            raise bad_request(
                "The tenant_id parameter is given more than once, naming different tenants."
            )
        return cls(
            host=_bounded(host, "Host header") or "",
            tenant_header=_bounded(headers.get("x-tenant-id"), "X-Tenant-ID header"),
            query_tenant=next(iter(named), None),
            api_key=_bounded(headers.get("x-api-key"), "X-API-Key header"),
        )


def normalize_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):  # IPv6 literal
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _live_tenants():
    return Tenant.objects.filter(is_template=False)


def _by_host(host: str) -> Tenant | None:
    if host in settings.PLATFORM_HOSTS:
        return None
    domain = Domain.objects.select_related("tenant").filter(domain=host).first()
    if domain is None or domain.tenant.is_template:
        raise not_found(f"No tenant is served at {host!r}.")
    return domain.tenant


def _by_reference(reference: str, source: str) -> Tenant:
    query = _live_tenants()
    pk = parse_id(reference)
    tenant = (
        query.filter(pk=pk).first()
        if pk is not None
        else query.filter(slug=reference.lower()).first()
    )
    if tenant is None:
        raise not_found(f"Unknown tenant {reference!r} in {source}.")
    return tenant


# Which tenant an API key belongs to is for accounts to say, an app above tenants: it registers
# its lookup here from its AppConfig.ready() (DESIGN §2).
_api_key_lookup: Callable[[str], int | None] | None = None


def use_api_key_lookup(lookup: Callable[[str], int | None]) -> None:
    """`lookup(raw_key)` is the id of the tenant the key names, or None."""
    global _api_key_lookup
    _api_key_lookup = lookup


def _by_api_key(raw_key: str) -> Tenant | None:
    if _api_key_lookup is None:
        raise ImproperlyConfigured(
            "No API key lookup: apps.accounts registers it when Django starts."
        )
    tenant_id = _api_key_lookup(raw_key)
    return _live_tenants().filter(pk=tenant_id).first() if tenant_id else None


def resolve_tenant(signals: TenantSignals) -> Tenant | None:
    """The tenant the signals name, or None for the public schema. Raises RequestRefused."""
    named: dict[str, Tenant] = {}
    host_tenant = _by_host(normalize_host(signals.host))
    if host_tenant is not None:
        named["host"] = host_tenant
    if signals.tenant_header:
        named["X-Tenant-ID header"] = _by_reference(signals.tenant_header, "X-Tenant-ID")
    if signals.query_tenant:
        named["tenant_id parameter"] = _by_reference(signals.query_tenant, "tenant_id")

    if len({tenant.pk for tenant in named.values()}) > 1:
        raise bad_request("The " + ", ".join(named) + " name different tenants.")
    tenant = next(iter(named.values()), None)
    if tenant is None and signals.api_key:
        tenant = _by_api_key(signals.api_key)
    if tenant is not None and not tenant.is_active:
        raise forbidden("This tenant is suspended.")
    return tenant
