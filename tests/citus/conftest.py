"""The Citus run (`make test-citus CITUS_URL=…`, docs/scale-out.md): this folder's tests, marked
`citus`, run only when the database is the coordinator of a Citus cluster (settings.CITUS);
elsewhere they are left out, and the run says so at its start and its end (never counted as
passed)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from django.conf import settings

from tests.servers import database_url

LEFT_OUT = (
    "NOTE: {count} Citus tests (tests/citus) are LEFT OUT of this run: no Citus cluster given "
    "(make test-citus CITUS_URL=postgres://…; docs/scale-out.md)."
)


def pytest_collection_modifyitems(config, items):
    if settings.CITUS:
        return
    left_out = [item for item in items if item.get_closest_marker("citus")]
    if left_out:
        items[:] = [item for item in items if not item.get_closest_marker("citus")]
        config.hook.pytest_deselected(items=left_out)
        config.stash[_LEFT_OUT] = len(left_out)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(LEFT_OUT.format(count=len(left_out)))


_LEFT_OUT = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, config):
    count = config.stash.get(_LEFT_OUT, 0)
    if count:
        terminalreporter.write_line(LEFT_OUT.format(count=count))


@pytest.fixture
def coordinator() -> Iterator:
    """An autocommit connection of our own to the coordinator's test database, for Citus's
    catalog and its functions (outside the test's transaction)."""
    connection = psycopg2.connect(database_url())
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()
