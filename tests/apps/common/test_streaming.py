"""Downloads under the real ASGI app (config.asgi, called as a server calls it): an export's file
and a media file go out chunk by chunk as they are read, not read whole before the first byte
(Django warns "StreamingHttpResponse must consume synchronous iterators" when it has to), with
every header the views set, and the bytes of the file.

The app runs each request on a connection of its own, so the export row is committed (in a
thread) and removed after."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django_tenants.utils import tenant_context

from apps.exports import files, links
from apps.exports.models import Export, ExportStatus
from config.asgi import application
from tests.committed import run_committed

SIZE = 1_000_003  # ~15 chunks of 64 KiB, the last one short
SYNC_ITERATOR_WARNING = "must consume synchronous iterators"


@dataclass
class Download:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    read_before_first_chunk: (
        int  # how far the server had read the file when it sent the first bytes
    )

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def read_position(path: Path) -> int:
    """How far this process has read `path` through the descriptor it has open on it (Linux)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    return next(int(line.split()[1]) for line in info if line.startswith("pos:"))
        except OSError:  # closed meanwhile (the listing's own descriptor, for one)
            continue
    raise AssertionError(f"{path} is not open")


def download(host: str, target: str, file: Path) -> Download:
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    answer = Download(0, {}, [], -1)

    async def run() -> None:
        request_sent = False
        disconnected = asyncio.Event()

        async def receive() -> dict:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnected.wait()  # the client stays connected until the answer is complete
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = {
                    name.decode().lower(): value.decode() for name, value in message["headers"]
                }
            elif message.get("body"):
                if not answer.chunks:
                    answer.read_before_first_chunk = read_position(file)
                answer.chunks.append(message["body"])
            if message["type"] == "http.response.body" and not message.get("more_body"):
                disconnected.set()

        await application(scope, receive, send)

    serve_like_a_server(run)
    return answer


def serve_like_a_server(run) -> None:
    """`run()` on an event loop of its own in a thread, as uvicorn runs the app: the request's
    sync work then gets a thread and a database connection of its own (never the test's)."""
    failed: list[BaseException] = []

    def loop() -> None:
        try:
            asyncio.run(run())
        except BaseException as error:  # handed to the test
            failed.append(error)

    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


@pytest.fixture
def export_file(alpha):
    """A finished export of SIZE bytes, committed; its link and file."""
    data = os.urandom(SIZE)

    def make() -> Export:
        export = Export.objects.create(
            kind="orders",
            format="csv",
            status=ExportStatus.DONE,
            file_name="orders-2026-12-03.csv",
            size=SIZE,
        )
        schema = alpha.tenant.schema_name
        export.file = files.name_for(schema, export.pk, "csv")
        with files.writing(export.file, files.partial_path(schema, export.pk, "csv")) as out:
            out.write(data)
        export.save(update_fields=["file"])
        return export

    export = run_committed(alpha.tenant, make)
    yield (
        links.path(alpha.tenant.schema_name, export.pk),
        Path(files.storage().path(export.file)),
        data,
    )

    def remove() -> None:
        files.delete(export.file)
        export.delete()

    run_committed(alpha.tenant, remove)


@pytest.fixture
def media_file(alpha):
    data = os.urandom(SIZE)
    with tenant_context(alpha.tenant):
        name = default_storage.save("products/streaming/big.png", ContentFile(data))
        path = Path(default_storage.path(name))
    yield f"/media/{alpha.tenant.schema_name}/{name}", path, data
    with tenant_context(alpha.tenant):
        default_storage.delete(name)


def _streamed(answer: Download, file: Path, data: bytes, recwarn) -> None:
    assert answer.status == 200
    assert answer.body == data and file.stat().st_size == SIZE
    assert len(answer.chunks) > 1
    assert not [str(w.message) for w in recwarn if SYNC_ITERATOR_WARNING in str(w.message)]
    # The first bytes left before the rest of the file was read: memory does not grow with the file.
    assert answer.read_before_first_chunk < SIZE // 2
    assert answer.headers["content-length"] == str(SIZE)
    assert "connect-src" in answer.headers["content-security-policy"]


def test_an_export_download_streams_with_its_headers(alpha, export_file, recwarn):
    link, file, data = export_file
    answer = download(alpha.host, link, file)
    _streamed(answer, file, data, recwarn)
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="orders-2026-12-03.csv"'
    assert answer.headers["cache-control"] == "private, no-store"


def test_a_media_file_streams_with_its_headers(alpha, media_file, recwarn):
    link, file, data = media_file
    answer = download(alpha.host, link, file)
    _streamed(answer, file, data, recwarn)
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["cache-control"] == "public, max-age=86400"
    assert "last-modified" in answer.headers
