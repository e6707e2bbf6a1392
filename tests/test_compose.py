"""The production compose (docker-compose.yml): every app process reaches PostgreSQL through the
pool, and the processes that write files and those that serve them share one volume for them."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker", "beat")


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_app_process_connects_through_the_pool():
    services = _services()
    for name in APP_SERVICES:
        assert "@pgbouncer:6432/" in services[name]["environment"]["DATABASE_URL"], name
    pool = services["pgbouncer"]
    assert pool["command"] == ["python", "-m", "config.devserver", "pgbouncer"]
    assert "@postgres:5432/" in pool["environment"]["DATABASE_URL"]


def test_web_and_worker_keep_media_and_exports_on_one_volume():
    services = _services()
    mounts = {}
    for name in ("web", "worker"):
        environment, volumes = services[name]["environment"], services[name]["volumes"]
        (mount,) = [volume for volume in volumes if volume.startswith("files:")]
        target = mount.split(":", 1)[1]
        for setting in ("MEDIA_ROOT", "EXPORT_ROOT"):
            assert environment[setting].startswith(target + "/"), (name, setting)
        mounts[name] = (mount, environment["MEDIA_ROOT"], environment["EXPORT_ROOT"])
    assert mounts["web"] == mounts["worker"]
    assert "PROMETHEUS_MULTIPROC_DIR" in services["web"]["environment"]  # uvicorn --workers
