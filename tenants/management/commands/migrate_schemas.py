"""`migrate_schemas` that migrates only the tenant schemas with something to apply (issue 17).

django-tenants runs Django's `migrate` in every tenant schema, one after the other, even when
there is nothing to apply: ~0.24 s a schema, 4 minutes a deploy at a thousand tenants. This
command finds what is pending across every tenant schema in a few queries
(`tenants.pending_migrations`) and hands django-tenants' executor only the schemas with work,
in parallel (its multiprocessing executor) when there are several and no `--executor` was asked
for. The public schema is migrated as before. The template schema is a tenant row, so it is
checked and migrated like every tenant (new tenants are cloned from it).

Anything but "bring every tenant schema up to date" keeps django-tenants' own behaviour: one
`--schema`, an app label or target migration, `--fake`, `--fake-initial`, `--plan`, `--prune`,
`--check`, `--run-syncdb`, multi-type tenants.

Skipped schemas get no `migrate` run, so no `post_migrate` signal and no django-tenants
`schema_migrated` signal either: nothing of ours listens to them for tenant schemas (content
types come with the clone and with the migrations that add models).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import CommandError
from django.db import connections
from django_tenants.management.commands.migrate_schemas import (
    GET_EXECUTOR_FUNCTION,
    MigrateSchemasCommand,
)
from django_tenants.utils import (
    get_public_schema_name,
    get_tenant_migration_order,
    get_tenant_model,
    has_multi_type_tenants,
)

from tenants.pending_migrations import pending_schemas

# Options whose meaning is per schema: with any of them, every schema goes through `migrate`.
PER_SCHEMA_OPTIONS = (
    "app_label",
    "migration_name",
    "fake",
    "fake_initial",
    "plan",
    "prune",
    "check_unapplied",
    "run_syncdb",
)


class Command(MigrateSchemasCommand):
    help = (
        "Migrates the public schema and the tenant schemas that have migrations to apply "
        "(all tenant schemas are checked in a few queries; up-to-date ones are skipped)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if (
            options.get("schema_name")
            or has_multi_type_tenants()
            or any(options.get(name) for name in PER_SCHEMA_OPTIONS)
        ):
            super().handle(*args, **options)
            return
        shared, tenant = options.get("shared"), options.get("tenant")
        if not shared and not tenant:
            shared = tenant = True
        if shared:
            super().handle(*args, **{**options, "shared": True, "tenant": False})
        if tenant:
            self._migrate_tenants(args, options)

    def _migrate_tenants(self, args: tuple[Any, ...], options: dict[str, Any]) -> None:
        database = options["database"]
        connection = connections[database]
        public = get_public_schema_name()
        tenants = (
            get_tenant_model()
            .objects.using(database)
            .only("schema_name")
            .exclude(schema_name=public)
            .values_list("schema_name", flat=True)
        )
        order = get_tenant_migration_order()
        if order is not None:
            tenants = tenants.order_by(*order)
        pending = pending_schemas(connection, list(tenants))
        verbosity = int(options.get("verbosity", 1))
        if verbosity >= 1:
            self.stdout.write(
                f"Tenant schemas: {len(pending.schemas)} with migrations to apply, "
                f"{pending.up_to_date} up to date (skipped)"
                + (f", {len(pending.missing)} missing" if pending.missing else "")
                + "."
            )
        if pending.schemas:
            codename = self._executor_codename(options, connection, len(pending.schemas))
            tenant_options = {**options, "shared": False, "tenant": True, "executor": codename}
            executor = GET_EXECUTOR_FUNCTION(codename=codename)(args, tenant_options)
            executor.run_migrations(tenants=list(pending.schemas))
        if pending.missing:
            raise CommandError(
                "Tenant schema(s) that do not exist (their tenant rows remain): "
                + ", ".join(f'"{schema}"' for schema in pending.missing)
            )

    @staticmethod
    def _executor_codename(options: dict[str, Any], connection: Any, count: int) -> str | None:
        """The executor asked for (`--executor`, or django-tenants' EXECUTOR variable); else
        django-tenants' multiprocessing one when several schemas have work, and its standard
        one for a single schema or inside a transaction (a fork would not see its writes, and
        that executor closes the connection)."""
        asked = options.get("executor") or os.environ.get("EXECUTOR")
        if asked:
            return str(asked)
        if count > 1 and not connection.in_atomic_block:
            return "multiprocessing"
        return "standard"
