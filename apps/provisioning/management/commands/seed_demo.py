"""manage.py seed_demo --tenant acme --products 500 --customers 5000 --orders 100000 [--seed 42] [--reset]"""

import argparse
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from apps.common.errors import UserError
from apps.provisioning.seeding import SeedSize, seed_demo
from tenants.models import Tenant


def _moment(text: str) -> datetime:
    moment = parse_datetime(text)
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give an ISO date and time with an offset, not {text!r}")
    return moment


class Command(BaseCommand):
    help = (
        "Fill a tenant with realistic, deterministic demo data: categories, products, customers "
        "and two years of orders with refunds (bulk COPY). Refuses a tenant that has data unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = SeedSize()
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--products", type=int, default=defaults.products)
        parser.add_argument("--customers", type=int, default=defaults.customers)
        parser.add_argument("--orders", type=int, default=defaults.orders)
        parser.add_argument("--seed", type=int, default=42, help="same seed and sizes, same data")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the tenant's catalog, customers and orders first",
        )
        parser.add_argument(
            "--until",
            type=_moment,
            default=None,
            help="the end of the two years of orders, e.g. 2025-06-30T12:00:00+00:00 (default: "
            "the start of today in the tenant's time zone, so a seed gives the same data all day)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"], is_template=False).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        size = SeedSize(
            products=options["products"], customers=options["customers"], orders=options["orders"]
        )
        try:
            result = seed_demo(
                tenant=tenant,
                size=size,
                seed=options["seed"],
                reset=options["reset"],
                until=options["until"],
            )
        except UserError as exc:
            raise CommandError(exc.message) from exc
        rows = ", ".join(f"{count} {table}" for table, count in result.rows.items())
        phases = ", ".join(f"{phase} {seconds:.1f}" for phase, seconds in result.seconds.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {tenant.slug} in {sum(result.seconds.values()):.1f} s ({phases}): {rows}; "
                f"orders until {result.until.isoformat()}."
            )
        )
