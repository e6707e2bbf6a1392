"""Tenants (merchants) and the host names that lead to them. Both live in the public schema."""

import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$",
    "3 to 40 lower-case letters, digits or '-', starting with a letter.",
)
RESERVED_SLUGS = frozenset({"www", "api", "admin", "public", "static", "media", "platform"})

# The keys a tenant's settings may carry, with the type each must have.
SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "cors_allowed_origins": list,
    "vip_threshold": (str, int),
    "high_value_order_threshold": (str, int),
    "low_stock_default": int,
}


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}.")


def validate_tenant_settings(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Settings must be an object.")
    for key, item in value.items():
        expected = SETTING_TYPES.get(key)
        if expected is None:
            raise ValidationError(f"Unknown setting {key!r}.")
        if not isinstance(item, expected):
            raise ValidationError(f"Setting {key!r} has the wrong type.")
    origins = value.get("cors_allowed_origins", [])
    for origin in origins:
        if not isinstance(origin, str) or not origin.startswith(("http://", "https://")):
            raise ValidationError(f"CORS origin {origin!r} must start with http:// or https://.")


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=40, unique=True, validators=[SLUG_VALIDATOR])
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    currency = models.CharField(max_length=3, default="USD")
    settings = models.JSONField(default=dict, blank=True, validators=[validate_tenant_settings])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The template schema new tenants are cloned from is a tenant row too, so that
    # `migrate_schemas` keeps it current; it never serves requests.
    is_template = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def clean(self) -> None:
        if self.currency and (len(self.currency) != 3 or not self.currency.isalpha()):
            raise ValidationError({"currency": "Use a three-letter ISO 4217 code."})
        self.currency = self.currency.upper()


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
