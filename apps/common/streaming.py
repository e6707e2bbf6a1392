"""File downloads that stream under ASGI.

Django's FileResponse iterates its file synchronously; under ASGI a synchronous iterator is read
whole into a list before the first byte goes out ("StreamingHttpResponse must consume synchronous
iterators…"), so a large export would sit in the server's memory. `streamed` gives the response an
asynchronous iterator instead, which reads one chunk at a time in a worker thread (file reads
block), and memory stays flat whatever the file's size. The headers FileResponse computed from the
file (length, type, disposition) and the ones the view set are kept; the response still closes
the file when it is done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO

from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse

# One ASGI body message each: the size Django's ASGI handler sends in anyway.
CHUNK_SIZE = ASGIHandler.chunk_size


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
        yield chunk


def streamed(response: FileResponse) -> FileResponse:
    """`response`, sending its file chunk by chunk as the client takes it."""
    if response.file_to_stream is not None:
        response.streaming_content = _chunks(response.file_to_stream)
    return response
