"""`exportProgress` over a WebSocket (graphql-transport-ws, the real ASGI app): the export's state
first, then what the task publishes, ending when it is done. The socket's resolvers read with
connections of their own, so the export is committed (in a thread) and removed after; it is of
a kind with no rows in the session tenant, so nothing else needs committing."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync

from apps.exports import files, services
from apps.exports.models import Export
from tests.committed import run_committed
from tests.conftest import gid
from tests.test_websocket import bearer, communicator, open_session

TIMEOUT = 30  # a deadline, never slept
PROGRESS = (
    "subscription($id: ID!) { exportProgress(id: $id) { exportId status rowsDone rowsTotal } }"
)


@pytest.fixture
def queued(alpha):
    export_id = run_committed(
        alpha.tenant, lambda: Export.objects.create(kind="products", format="csv").pk
    )
    yield export_id

    def remove() -> None:
        export = Export.objects.get(pk=export_id)
        files.delete(export.file)
        export.delete()

    run_committed(alpha.tenant, remove)


async def _subscribe(ws, export_id: str, params: dict) -> None:
    assert json.loads((await open_session(ws, params))["text"])["type"] == "connection_ack"
    await ws.send_json_to(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": PROGRESS, "variables": {"id": export_id}},
        }
    )


def test_progress_streams_from_the_current_state_to_done(alpha, queued):
    params = bearer(alpha, "owner")

    @async_to_sync
    async def run():
        ws = communicator(alpha.host)
        await _subscribe(ws, gid(alpha, "Export", queued), params)
        first = await ws.receive_json_from(timeout=TIMEOUT)
        # The task's work, committed as a worker's would be, while the socket listens.
        await asyncio.to_thread(
            run_committed, alpha.tenant, lambda: services.run_export(export_id=queued)
        )
        seen = [first]
        while (message := await ws.receive_json_from(timeout=TIMEOUT))["type"] == "next":
            seen.append(message)
        await ws.disconnect()
        return seen, message

    seen, last = run()
    states = [
        (
            m["payload"]["data"]["exportProgress"]["status"],
            m["payload"]["data"]["exportProgress"]["rowsDone"],
        )
        for m in seen
    ]
    assert states[0] == ("QUEUED", 0)
    assert states[-1] == ("DONE", 0) and ("RUNNING", 0) in states  # no products: an empty file
    assert last["type"] == "complete"


def test_viewers_are_refused_and_an_unknown_export_is_not_found(alpha, beta, queued):
    @async_to_sync
    async def run(params: dict, export_id: str):
        ws = communicator(alpha.host)
        await _subscribe(ws, export_id, params)
        message = await ws.receive_json_from(timeout=TIMEOUT)
        await ws.disconnect()
        return message

    assert _codes(run(bearer(alpha, "viewer"), gid(alpha, "Export", queued))) == ["FORBIDDEN"]
    assert _codes(run(bearer(alpha, "owner"), gid(alpha, "Export", queued + 1000))) == ["NOT_FOUND"]
    # ids name their tenant: beta's id with this export's number, and text that is no id, find nothing
    for other in (gid(beta, "Export", queued), "!!!", ""):
        assert _codes(run(bearer(alpha, "owner"), other)) == ["NOT_FOUND"], other


def _codes(message: dict) -> list[str]:
    """The codes of a refusal: an `error` message, or a `next` carrying only errors."""
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert message["type"] == "error" or message["payload"].get("data") is None, message
    return [error["extensions"]["code"] for error in errors]
