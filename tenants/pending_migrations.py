"""Which tenant schemas have migrations to apply, found for all of them in a few queries.

django-tenants' `migrate_schemas` runs Django's `migrate` in every schema, and each run asks its
schema for its `django_migrations` rows: ~0.24 s a schema, 4 minutes a deploy at a thousand
tenants, most of them with nothing to do (DESIGN §13: deploys scale with the work). Here one
catalog query says which schemas exist and have a `django_migrations` table, then one
`UNION ALL` query per chunk of schemas returns a digest of each schema's applied migrations; the
schemas share a handful of distinct digests (clones of the template, migrated alike), and the
rows behind each distinct digest are read once and compared with the migration graph.

A schema is up to date when every node of the graph that belongs to a tenant app is applied in
it. Shared-only apps' migrations are recorded in tenant schemas too (as no-ops: the router keeps
their operations out), but a missing one of those changes nothing in the schema, so it alone does
not send a thousand schemas through `migrate`; it is recorded with the schema's next real work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django_tenants.routers import TenantSyncRouter

# Schemas per `UNION ALL` query: each branch locks its table until the statement ends, and a
# statement of a few hundred branches plans in milliseconds.
CHUNK = 250

_EXISTING = """
SELECT n.nspname, EXISTS (
    SELECT 1 FROM pg_class c
    WHERE c.relnamespace = n.oid AND c.relname = 'django_migrations' AND c.relkind IN ('r', 'p')
)
FROM pg_namespace n
WHERE n.nspname = ANY(%s)
"""


@dataclass
class Pending:
    """The tenant schemas that need `migrate`, in the order they were given, and the tenants
    whose schema does not exist at all (django-tenants fails on those; so does the command)."""

    schemas: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    up_to_date: int = 0


def tenant_migration_nodes() -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """The tenant apps' nodes of the migration graph, each with the migrations it replaces (a
    squashed migration counts as applied when all it replaces are). Read from the files alone."""
    router = TenantSyncRouter()
    tenant_labels = {
        config.label
        for config in apps.get_app_configs()
        if router.app_in_list(config.label, settings.TENANT_APPS)
    }
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {
        key: tuple(tuple(replaced) for replaced in (loader.graph.nodes[key].replaces or ()))
        for key in loader.graph.nodes
        if key[0] in tenant_labels
    }


def _is_current(
    applied: set[tuple[str, str]], nodes: dict[tuple[str, str], tuple[tuple[str, str], ...]]
) -> bool:
    return all(
        key in applied or (replaces and all(old in applied for old in replaces))
        for key, replaces in nodes.items()
    )


def _quote(connection: BaseDatabaseWrapper, schema: str) -> str:
    return connection.ops.quote_name(schema)


def _digests(connection: BaseDatabaseWrapper, schemas: Sequence[str]) -> dict[str, str | None]:
    """Each schema's digest of its applied migrations (None for an empty table)."""
    digests: dict[str, str | None] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(schemas), CHUNK):
            chunk = schemas[start : start + CHUNK]
            sql = "\nUNION ALL\n".join(
                "SELECT %s, md5(string_agg(app || '.' || name, ',' ORDER BY app, name)) "
                f"FROM {_quote(connection, schema)}.django_migrations"
                for schema in chunk
            )
            cursor.execute(sql, list(chunk))
            digests.update(cursor.fetchall())
    return digests


def _applied(connection: BaseDatabaseWrapper, schema: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {_quote(connection, schema)}.django_migrations")
        return {(app, name) for app, name in cursor.fetchall()}


def pending_schemas(connection: BaseDatabaseWrapper, schemas: Iterable[str]) -> Pending:
    """Sort `schemas` into those with work (a tenant app's migration not applied, or no
    `django_migrations` table at all), those that do not exist, and the rest (counted)."""
    schemas = list(schemas)
    result = Pending()
    if not schemas:
        return result
    with connection.cursor() as cursor:
        cursor.execute(_EXISTING, [schemas])
        has_table = dict(cursor.fetchall())
    recorded = [schema for schema in schemas if has_table.get(schema)]
    digests = _digests(connection, recorded)
    nodes = tenant_migration_nodes()
    current: dict[str | None, bool] = {}
    for schema in recorded:
        digest = digests[schema]
        if digest not in current:
            current[digest] = digest is not None and _is_current(
                _applied(connection, schema), nodes
            )
    for schema in schemas:
        if schema not in has_table:
            result.missing.append(schema)
        elif not has_table[schema] or not current[digests[schema]]:
            result.schemas.append(schema)
        else:
            result.up_to_date += 1
    return result
