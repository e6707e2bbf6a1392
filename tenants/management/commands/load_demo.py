"""The two demo tenants of `make run`. Only this loader creates their owners and password."""

from django.core.management.base import BaseCommand

from tenants.models import Tenant
from tenants.services import provision_tenant

DEMO_PASSWORD = "demo-pass-123"
DEMO_TENANTS = (
    ("acme", "Acme Corp", "America/New_York", "USD"),
    ("globex", "Globex", "Europe/Berlin", "EUR"),
)


class Command(BaseCommand):
    help = "Create the demo tenants acme and globex with their owners (idempotent)."

    def handle(self, *args, **options):
        for slug, name, time_zone, currency in DEMO_TENANTS:
            if Tenant.objects.filter(slug=slug).exists():
                continue
            provision_tenant(
                name=name,
                slug=slug,
                owner_email=f"owner@{slug}.test",
                owner_password=DEMO_PASSWORD,
                time_zone=time_zone,
                currency=currency,
            )
            self.stdout.write(f"Created tenant {slug} (owner@{slug}.test / {DEMO_PASSWORD})")
