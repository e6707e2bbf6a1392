"""`manage.py` commands through the dev launcher, as the README gives them: `exec` hands them the
dev environment `make run` has (DJANGO_DEV_SERVER, so the dev-only keys when none is set), so a
platform admin can be made without a SECRET_KEY of one's own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from django.conf import settings

from config.devserver import PROJECT_DIR
from config.devserver.__main__ import admin_command

# What the settings would otherwise take from the caller (the test settings set some of them).
DEV_ONLY = (
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "DJANGO_DEV_SERVER",
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
)


def _test_database_url() -> str:
    """The suite's DATABASE_URL, naming the migrated test database instead of the empty one:
    a `make run` server's database, as far as createsuperuser can tell."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))


def test_the_readmes_createsuperuser_works_without_a_secret_key(db):  # db: the test database exists
    url = _test_database_url()
    email = f"admin-{uuid.uuid4().hex[:8]}@devserver.test"
    env = {key: value for key, value in os.environ.items() if key not in DEV_ONLY}
    env |= {"DJANGO_SUPERUSER_EMAIL": email, "DJANGO_SUPERUSER_PASSWORD": "admin-pass-123"}
    # The command the `run` banner prints for its servers, as a shell runs it.
    command = (
        admin_command({"DATABASE_URL": url, "REDIS_URL": os.environ["REDIS_URL"]}) + " --noinput"
    )
    connection = psycopg2.connect(url)
    try:
        made = subprocess.run(
            command,
            shell=True,
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT is_superuser, is_staff FROM public.accounts_user WHERE email = %s", [email]
            )
            assert cursor.fetchall() == [(True, True)]
    finally:
        with connection, connection.cursor() as cursor:
            cursor.execute("DELETE FROM public.accounts_user WHERE email = %s", [email])
        connection.close()


def test_exec_keeps_debug_off_and_gives_the_dev_keys():
    """Tests and benches run through `exec`: they get the dev-only keys but the DEBUG a
    deployment has, unless the caller asks for it."""
    env = {key: value for key, value in os.environ.items() if key not in DEV_ONLY}
    script = (
        "from django.conf import settings; "
        "print(settings.DEBUG, bool(settings.SECRET_KEY), bool(settings.FIELD_ENCRYPTION_KEY))"
    )
    command = [
        sys.executable,
        "-m",
        "config.devserver",
        "exec",
        "--",
        "python",
        "manage.py",
        "shell",
        "--verbosity",
        "0",
        "-c",
        script,
    ]
    shown = subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["False", "True", "True"]
    asked = subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env={**env, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert asked.stdout.split()[0] == "True", asked.stderr
