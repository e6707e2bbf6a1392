"""A real server: uvicorn serving config.asgi over TCP against the test database, for clients we
did not write (httpx, the websockets library, Chromium). It sees only committed data, so these
tests use the session tenants and make their own tokens once."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import token_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass(frozen=True)
class LiveServer:
    port: int
    tokens: dict[str, str]

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def http(self, host: str) -> httpx.Client:
        """Connects to 127.0.0.1 and sends the tenant's host name (*.localhost may not resolve)."""
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"Host": f"{host}:{self.port}"})


@pytest.fixture(scope="session")
def asgi_server(tenants, django_db_blocker):
    with django_db_blocker.unblock():
        tokens = {
            "alpha-owner": token_for("owner@alpha.test", tenants["alpha"].tenant),
            "alpha-viewer": token_for("viewer@alpha.test", tenants["alpha"].tenant),
            "beta-owner": token_for("owner@beta.test", tenants["beta"].tenant),
        }
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url(),
        "SESSION_COOKIE_SECURE": "false",  # plain http on loopback
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"uvicorn did not start:\n{output[-3000:]}")
        time.sleep(0.1)
    yield LiveServer(port=port, tokens=tokens)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def browser():
    """Debian's Chromium, headless, with its console log kept (tests marked `browser`)."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def pytest_collection_modifyitems(items):
    """pytest-django creates the test database only for a run with tests that ask for `db`; the
    live tests reach it through the session `tenants` fixture and their own committed tenants.
    Give each of them `db` last (after its own fixtures have committed what the server must see),
    so `pytest tests/live` works on its own too."""
    for item in items:
        if item.nodeid.startswith("tests/live/") and "db" not in item.fixturenames:
            item.fixturenames.append("db")
