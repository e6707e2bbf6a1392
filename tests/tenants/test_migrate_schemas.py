"""`migrate_schemas` checks every tenant schema in a few queries and runs `migrate` only where a
migration is missing (tenants/management/commands/migrate_schemas.py, issue 17).

Two committed throwaway tenants of this module's own (clones of the template) stand beside the
session's alpha, beta and the template. A test that takes a migration away from a schema does it
inside its transaction (so it is rolled back whatever happens), except the parallel one, which
needs its schemas committed for the forked workers and puts them right itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.migration_executors import base as executor_base
from django_tenants.migration_executors import multiproc, standard

from tenants.models import Tenant
from tenants.pending_migrations import pending_schemas
from tests.committed import throwaway_tenant

# A migration nothing depends on, whose effect is two indexes: taken away and put back cheaply.
# (When a later migration of the app comes to depend on it, move this to the newest leaf.)
APP, MIGRATION = "alerts", "0003_lost_sends_indexes"
INDEXES = ("notification_email_unclaimed", "webhook_delivery_unattempted")
SPARES = ("mig-one", "mig-two")


@pytest.fixture(scope="module")
def spares(tenants, django_db_blocker) -> Iterator[list[str]]:
    with ExitStack() as stack:
        made = [
            stack.enter_context(throwaway_tenant(django_db_blocker, slug, slug.title()))
            for slug in SPARES
        ]
        yield [tenant.schema_name for tenant in made]


@pytest.fixture
def migrate_runs() -> Iterator[list[str]]:
    """The schemas django-tenants' standard executor runs `migrate` in (the real run goes on)."""
    ran: list[str] = []
    original = executor_base.run_migrations

    def spy(args: Any, options: Any, codename: Any, schema_name: str, *rest: Any, **kw: Any):
        ran.append(schema_name)
        return original(args, options, codename, schema_name, *rest, **kw)

    with mock.patch.object(standard, "run_migrations", spy):
        yield ran


def _take_away(schema: str) -> None:
    """Undo the migration in `schema`: drop its indexes and its record."""
    with connection.cursor() as cursor:
        for index in INDEXES:
            cursor.execute(f'DROP INDEX "{schema}".{index}')
        cursor.execute(
            f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
            [APP, MIGRATION],
        )


def _has_migration(schema: str) -> tuple[bool, bool]:
    """(its record is there, its indexes are there)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT EXISTS (SELECT 1 FROM "{schema}".django_migrations WHERE app = %s AND name = %s)',
            [APP, MIGRATION],
        )
        (recorded,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname = ANY(%s)",
            [schema, list(INDEXES)],
        )
        (indexes,) = cursor.fetchone()
    return recorded, indexes == len(INDEXES)


def _migrate_tenants() -> None:
    call_command("migrate_schemas", tenant=True, interactive=False, verbosity=0)


def test_up_to_date_schemas_are_checked_together_and_none_is_migrated(spares, db, migrate_runs):
    with CaptureQueriesContext(connection) as captured:
        _migrate_tenants()
    assert migrate_runs == []
    # the tenant list, the catalog, one UNION ALL over every schema, the rows of the one digest
    # they all share: not a query per schema
    queries = [q["sql"] for q in captured if not q["sql"].startswith("SET search_path")]
    assert len(queries) == 4, [query[:120] for query in queries]
    union = next(query for query in queries if "UNION ALL" in query)
    schemas = [*spares, "alpha", "beta", settings.TENANT_BASE_SCHEMA]
    assert all(f'"{schema}".django_migrations' in union for schema in schemas)


def test_only_the_schema_missing_a_migration_is_migrated(spares, db, migrate_runs):
    lacking, current = spares
    _take_away(lacking)
    assert _has_migration(lacking) == (False, False)

    _migrate_tenants()

    assert migrate_runs == [lacking]
    assert _has_migration(lacking) == (True, True)
    assert _has_migration(current) == (True, True)


def test_the_template_schema_is_checked_and_migrated_like_a_tenant(spares, db, migrate_runs):
    template = settings.TENANT_BASE_SCHEMA
    _take_away(template)

    _migrate_tenants()

    assert migrate_runs == [template]
    assert _has_migration(template) == (True, True)


def test_a_schema_without_migration_records_is_pending_and_a_missing_schema_is_named(tenants, db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA mig_bare")  # no tables at all: rolled back with the test
    pending = pending_schemas(connection, ["mig_bare", "alpha", "mig_nowhere"])
    assert (pending.schemas, pending.missing, pending.up_to_date) == (
        ["mig_bare"],
        ["mig_nowhere"],
        1,
    )


def test_a_tenant_row_without_its_schema_fails_the_command(spares, db, migrate_runs):
    # bulk_create skips save(), which would clone the schema: a row whose schema is gone
    Tenant.objects.bulk_create([Tenant(schema_name="mig_gone", slug="mig-gone", name="Gone")])
    with pytest.raises(CommandError, match='"mig_gone"'):
        _migrate_tenants()
    assert migrate_runs == []


def test_schemas_with_work_are_migrated_in_parallel_workers(spares, django_db_blocker):
    """Outside a transaction, several schemas with work go to django-tenants' multiprocessing
    executor: its forked workers commit the migration in each."""
    pools: list[Any] = []
    original_pool = multiproc.get_pool
    handed: list[list[str]] = []
    original_run = multiproc.MultiprocessingExecutor.run_migrations

    def pool() -> Any:
        pools.append(original_pool())
        return pools[-1]

    def run(self: Any, tenants: Any = None) -> None:
        handed.append(list(tenants))
        original_run(self, tenants)

    with django_db_blocker.unblock():
        try:
            for schema in spares:
                _take_away(schema)
            with (
                mock.patch.object(multiproc, "get_pool", pool),
                mock.patch.object(multiproc.MultiprocessingExecutor, "run_migrations", run),
            ):
                _migrate_tenants()
            assert handed == [list(spares)]
            assert [_has_migration(schema) for schema in spares] == [(True, True)] * 2
        finally:
            for made in pools:
                made.close()
                made.join()
            connection.set_schema_to_public()
            for schema in spares:  # as the template has it, whatever happened above
                if _has_migration(schema) != (True, True):
                    call_command("migrate_schemas", schema_name=schema, verbosity=0)
