"""Migrate the public schema, make sure the template schema exists, migrate every tenant."""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.services import ensure_template


class Command(BaseCommand):
    help = "Migrate public and tenant schemas and create the template schema new tenants clone."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command(
            "migrate_schemas", shared=True, interactive=False, verbosity=options["verbosity"]
        )
        ensure_template()
        call_command(
            "migrate_schemas", tenant=True, interactive=False, verbosity=options["verbosity"]
        )
        self.stdout.write(self.style.SUCCESS("Platform ready."))
