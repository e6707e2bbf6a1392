"""A real server: uvicorn serving config.asgi over TCP against the test database, for clients we
did not write (httpx, the websockets library, Chromium), and Debian's Chromium. It sees only
committed data, so these tests use the session tenants and make their own tokens once.

A plugin of the root conftest, so every folder shares one server per session (fixtures imported
into several conftests are separate fixtures, each starting its own uvicorn)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from graphql_jwt.settings import jwt_settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from config.devserver.asgi_server import ServerDidNotStart, uvicorn_server
from tests.conftest import token_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


SESSION_TOKEN_LIFETIME = timedelta(hours=12)


@contextmanager
def _access_tokens_lasting(lifetime: timedelta) -> Iterator[None]:
    original = jwt_settings.JWT_EXPIRATION_DELTA
    jwt_settings.JWT_EXPIRATION_DELTA = lifetime
    try:
        yield
    finally:
        jwt_settings.JWT_EXPIRATION_DELTA = original


def database_url(*, relay_port: int | None = None) -> str:
    """The test database as a DATABASE_URL for a process we start (a server, a worker); with
    `relay_port`, reached through a relay of ours on that loopback port."""
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    address = (
        f"127.0.0.1:{relay_port}"
        if relay_port
        else f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    )
    return f"postgres://{auth}@{address}/{db['NAME']}"


@dataclass(frozen=True)
class LiveServer:
    port: int
    tokens: dict[str, str]

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def http(self, host: str) -> httpx.Client:
        """Connects to 127.0.0.1 and sends the tenant's host name (*.localhost may not resolve)."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"Host": f"{host}:{self.port}"}
        )


@pytest.fixture(scope="session")
def asgi_server(tenants, django_db_blocker):
    # The server lives as long as the session, which under load outlasts an access token's 15
    # minutes (CI's run on b1677ac took 18 and its last tests got 401): mint these for the session.
    with django_db_blocker.unblock(), _access_tokens_lasting(SESSION_TOKEN_LIFETIME):
        tokens = {
            "alpha-owner": token_for("owner@alpha.test", tenants["alpha"].tenant),
            "alpha-viewer": token_for("viewer@alpha.test", tenants["alpha"].tenant),
            "beta-owner": token_for("owner@beta.test", tenants["beta"].tenant),
        }
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "SESSION_COOKIE_SECURE": "false",  # plain http on loopback
    }
    try:
        with uvicorn_server(env=env, start_timeout=30, capture_output=True) as server:
            yield LiveServer(port=server.port, tokens=tokens)
    except ServerDidNotStart as failed:
        pytest.fail(str(failed))


@pytest.fixture
def browser():
    """Debian's Chromium, headless, with its console log kept (tests marked `browser`)."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def pytest_collection_modifyitems(items):
    """pytest-django creates the test database only for a run with tests that ask for `db`; the
    tests of the real server reach it through the session `tenants` fixture and their own
    committed tenants. Give each of them `db` last (after its own fixtures have committed what the
    server must see), so `pytest tests/live` works on its own too."""
    for item in items:
        if (
            item.nodeid.startswith("tests/live/")
            or {"asgi_server", "stack"} & set(item.fixturenames)
        ) and "db" not in item.fixturenames:
            item.fixturenames.append("db")
