"""Exports: their files in a temporary folder (settings_test's EXPORT_ROOT), removed after the
session; the on-commit work of a test run in place (eager Celery)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from tests.apps.payments.test_cleanup import tasks_on_commit  # noqa: F401 (a fixture)


@pytest.fixture(scope="session", autouse=True)
def _temporary_export_root():
    yield
    root = Path(settings.STORAGES["exports"]["OPTIONS"]["location"])
    if root.name.startswith("shop-test-exports-"):
        shutil.rmtree(root, ignore_errors=True)
