"""The broker keeps Celery's messages (issue 15, finding 4): the production stack's Redis writes
an append-only file to a volume, and a task a dead worker left unacknowledged comes back after a
visibility timeout that outlasts the longest task (so no running task is handed out twice)."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

from config.celery import app

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _redis_service() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]["redis"]


def test_the_production_broker_keeps_its_messages_across_a_restart():
    redis = _redis_service()
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] in ("everysec", "always")
    assert any(
        volume.endswith(":/data") for volume in redis["volumes"]
    )  # the file outlives the container


def test_an_unacknowledged_task_comes_back_only_after_the_longest_task_could_have_ended():
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    limit = app.conf.task_time_limit
    assert limit and app.conf.task_soft_time_limit < limit
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeout == settings.CELERY_VISIBILITY_TIMEOUT > limit
    assert (
        timeout <= 3600
    )  # and a crashed task runs again within the hour Celery's default would take
