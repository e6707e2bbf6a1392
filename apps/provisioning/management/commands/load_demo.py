"""The two demo tenants of `make run`, with a small demo data set each. Only this loader creates
their owners and password."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.common.errors import UserError
from apps.provisioning.seeding import SeedSize, seed_demo
from apps.provisioning.services import provision_tenant
from tenants.models import Tenant

DEMO_PASSWORD = "demo-pass-123"
DEMO_TENANTS = (
    ("acme", "Acme Corp", "America/New_York", "USD", 42),
    ("globex", "Globex", "Europe/Berlin", "EUR", 7),
)
# Seconds to load, enough for every list and chart to show something.
DEMO_SIZE = SeedSize(products=60, customers=300, orders=2000)


class Command(BaseCommand):
    help = "Create the demo tenants acme and globex with their owners and demo data (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        for slug, name, time_zone, currency, seed in DEMO_TENANTS:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                tenant = provision_tenant(
                    name=name,
                    slug=slug,
                    owner_email=f"owner@{slug}.test",
                    owner_password=DEMO_PASSWORD,
                    time_zone=time_zone,
                    currency=currency,
                )
                self.stdout.write(f"Created tenant {slug} (owner@{slug}.test / {DEMO_PASSWORD})")
            try:
                written = seed_demo(tenant=tenant, size=DEMO_SIZE, seed=seed).rows
            except UserError as exc:
                if exc.code != "NOT_EMPTY":
                    raise
                continue  # seeded before, or the data is the user's own now: leave it
            self.stdout.write(
                f"Seeded {slug}: {written['orders_order']} orders, "
                f"{written['catalog_product']} products, {written['customers_customer']} customers"
            )
