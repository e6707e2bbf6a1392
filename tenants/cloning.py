"""Fast schema cloning: a new tenant schema from the template in one batch of statements.

django-tenants' `clone_schema()` (a 4,600-line PL/pgSQL function) scans the whole catalog and
slows down as schemas accumulate: 0.44 s with 10 tenants, 2.6 s with 40 (measured here). This
copies the template table by table with `CREATE TABLE … (LIKE … INCLUDING ALL EXCLUDING
INDEXES)` (columns, defaults, identity, checks), copies the rows the template holds (migration
records, content types), then adds keys, indexes and foreign keys as the catalog states them,
under their original names, so that later migrations find them by name.
"""

from __future__ import annotations

import re

from django.db import connection
from django_tenants.utils import quote_schema_name

_TABLES = """
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind = 'r'
ORDER BY c.relname
"""

# Rendered while the search path is the template, so its own tables come out unqualified and
# the DDL lands in whatever schema the search path names when it runs.
_CONSTRAINTS = """
SELECT c.relname, con.conname, pg_get_constraintdef(con.oid), con.contype
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND con.contype IN ('p', 'u', 'x', 'f')
ORDER BY con.contype = 'f', c.relname, con.conname
"""

_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid)
ORDER BY 1
"""

_IDENTITY_COLUMNS = """
SELECT c.relname, a.attname
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND a.attidentity <> '' AND c.relkind = 'r'
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _catalog(cursor, template: str) -> tuple[list, list, list, list]:
    cursor.execute(_TABLES, [template])
    tables = [row[0] for row in cursor.fetchall()]
    cursor.execute(_CONSTRAINTS, [template])
    constraints = cursor.fetchall()
    cursor.execute(_INDEXES, [template])
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(_IDENTITY_COLUMNS, [template])
    identities = cursor.fetchall()
    return tables, constraints, indexes, identities


def clone_schema(template: str, target: str) -> None:
    """Create schema `target` as a copy of `template`, structure and rows. Runs in the caller's
    transaction (all or nothing) and leaves the connection's search path as it found it."""
    source, destination = quote_schema_name(template), quote_schema_name(target)
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        (search_path,) = cursor.fetchone()
        cursor.execute(f"SET LOCAL search_path = {source}")
        tables, constraints, indexes, identities = _catalog(cursor, template)

        statements = [f"CREATE SCHEMA {destination}"]
        for table in tables:
            statements.append(
                f"CREATE TABLE {destination}.{_ident(table)} "
                f"(LIKE {source}.{_ident(table)} INCLUDING ALL EXCLUDING INDEXES)"
            )
            statements.append(
                f"INSERT INTO {destination}.{_ident(table)} OVERRIDING SYSTEM VALUE "
                f"SELECT * FROM {source}.{_ident(table)}"
            )
        for table, column in identities:
            qualified = f"{destination}.{_ident(table)}"
            statements.append(
                f"SELECT setval(pg_get_serial_sequence('{qualified}', '{column}'), "
                f"COALESCE((SELECT max({_ident(column)}) FROM {qualified}), 0) + 1, false)"
            )
        statements.append(f"SET LOCAL search_path = {destination}, public")
        statements.extend(
            f"ALTER TABLE {_ident(table)} ADD CONSTRAINT {_ident(name)} {definition}"
            for table, name, definition, kind in constraints
            if kind != "f"
        )
        # pg_get_indexdef() always names the table's schema: point each index at the new one.
        statements.extend(
            re.sub(
                rf" ON (ONLY )?{re.escape(source)}\.| ON (ONLY )?{re.escape(template)}\.",
                lambda m: f" ON {m.group(1) or m.group(2) or ''}{destination}.",
                index,
                count=1,
            )
            for index in indexes
        )
        statements.extend(
            f"ALTER TABLE {_ident(table)} ADD CONSTRAINT {_ident(name)} {definition}"
            for table, name, definition, kind in constraints
            if kind == "f"
        )
        statements.append(f"SET LOCAL search_path = {search_path}")  # as the connection had it
        cursor.execute(";\n".join(statements))
