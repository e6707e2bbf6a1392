"""Provisioning and changing tenants. New tenants clone the template schema (DESIGN §3).

Here rather than in tenants/: a tenant comes with its owner's membership (accounts), every change
is audited (audit) and a new time zone rebuilds the analytics rollups (analytics), all apps that
sit above tenants."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, models, transaction
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, Role
from apps.analytics import rollups
from apps.audit import services as audit
from apps.common.actors import Actor
from apps.common.errors import NotFound, UserError
from tenants.db import connection
from tenants.errors import TenantErrorCode
from tenants.models import RESERVED_SLUGS, Domain, Tenant
from tenants.services import TEMPLATE_SLUG, ensure_template

UPDATABLE_FIELDS = ("name", "time_zone", "currency", "settings")


def _validated(tenant: Tenant) -> None:
    try:
        tenant.full_clean(exclude=["schema_name"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise UserError(messages[0], field=_camel(field), code=TenantErrorCode.INVALID) from exc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def tenant_domain(slug: str) -> str:
    return f"{slug}.{settings.TENANT_DOMAIN_SUFFIX}"


def provision_tenant(
    *,
    name: str,
    slug: str,
    owner_email: str,
    owner_password: str | None = None,
    time_zone: str = "UTC",
    currency: str = "USD",
    domain: str | None = None,
    actor: Actor | None = None,
) -> Tenant:
    """Tenant, its schema (cloned), its domain and its owner's membership, all or nothing."""
    slug = (slug or "").strip().lower()
    owner_email = owner_email.strip().lower()
    if slug in RESERVED_SLUGS or slug == TEMPLATE_SLUG:
        raise UserError("This address is reserved.", field="slug", code=TenantErrorCode.RESERVED)
    tenant = Tenant(
        name=(name or "").strip(),
        slug=slug,
        schema_name=slug.replace("-", "_"),
        time_zone=time_zone,
        currency=(currency or "").upper(),
    )
    if Tenant.objects.filter(
        models.Q(slug=slug) | models.Q(schema_name=tenant.schema_name)
    ).exists():
        raise UserError("This address is taken.", field="slug", code=TenantErrorCode.DUPLICATE)
    _validated(tenant)
    try:
        validate_email(owner_email)
    except ValidationError as exc:
        raise UserError(
            "Enter a valid email address.", field="ownerEmail", code=TenantErrorCode.INVALID
        ) from exc
    user_model = get_user_model()
    owner = user_model.objects.filter(email__iexact=owner_email).first()
    if owner is None and owner_password is not None:
        try:
            validate_password(owner_password)
        except ValidationError as exc:
            raise UserError(
                " ".join(exc.messages), field="ownerPassword", code=TenantErrorCode.WEAK_PASSWORD
            ) from exc
    host = (domain or tenant_domain(slug)).lower()
    if Domain.objects.filter(domain=host).exists():
        raise UserError("This domain is taken.", field="slug", code=TenantErrorCode.DUPLICATE)

    ensure_template()
    connection.set_schema_to_public()  # django-tenants creates tenants from public only
    try:
        with transaction.atomic():
            tenant.save()  # clones the template schema; DDL is transactional in PostgreSQL
            Domain.objects.create(domain=host, tenant=tenant, is_primary=True)
            if owner is None:
                owner = user_model.objects.create_user(email=owner_email, password=owner_password)
            Membership.objects.create(user=owner, tenant=tenant, role=Role.OWNER)
            audit.record(actor=actor, action="tenant.create", obj=tenant, changes={"slug": slug})
    except IntegrityError as exc:  # a concurrent sign-up took the slug, domain or email first
        raise UserError(
            "This address is taken.", field="slug", code=TenantErrorCode.DUPLICATE
        ) from exc
    finally:
        connection.set_schema_to_public()
    return tenant


@transaction.atomic
def update_tenant(*, actor: Actor, tenant: Tenant, changes: dict[str, Any]) -> Tenant:
    """Change the fields in `changes` (a subset of UPDATABLE_FIELDS)."""
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise UserError(
            f"{sorted(unknown)[0]} cannot be changed.",
            field=_camel(sorted(unknown)[0]),
            code=TenantErrorCode.INVALID,
        )
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = {field: getattr(tenant, field) for field in changes}
    for field, value in changes.items():
        setattr(
            tenant,
            field,
            value.upper() if field == "currency" and isinstance(value, str) else value,
        )
    _validated(tenant)
    tenant.save(update_fields=list(changes))
    audit.record(
        actor=actor,
        action="tenant.update",
        obj=tenant,
        changes={field: [before[field], getattr(tenant, field)] for field in changes},
    )
    if "time_zone" in changes and before["time_zone"] != tenant.time_zone:
        _rebuild_rollups(tenant)
    return tenant


def _rebuild_rollups(tenant: Tenant) -> None:
    """Analytics' daily rollups are local days of the tenant's zone: a new zone moves every
    order to its new day, in this transaction (so no figure is ever in two zones)."""
    with tenant_context(tenant):
        rollups.rebuild(time_zone=tenant.time_zone)


def tenant_by_id(tenant_id: int, *, lock: bool = False) -> Tenant:
    query = Tenant.objects.select_for_update() if lock else Tenant.objects
    tenant = query.filter(pk=tenant_id, is_template=False).first()
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


@transaction.atomic
def set_tenant_status(*, actor: Actor, tenant_id: int, status: str) -> Tenant:
    tenant = tenant_by_id(tenant_id, lock=True)
    if tenant.status != status:
        tenant.status = status
        tenant.save(update_fields=["status"])
        audit.record(actor=actor, action=f"tenant.{status}", obj=tenant)
    return tenant
