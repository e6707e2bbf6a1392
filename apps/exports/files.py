"""Where export files live: their own storage (settings.STORAGES["exports"]), outside MEDIA_ROOT,
so neither the media view nor a web server in front of MEDIA_ROOT ever serves one. Names carry
the tenant's schema and a random part: `<schema>/<random>.<ext>`."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import TemporaryUploadedFile


def storage() -> Storage:
    return storages["exports"]


def new_name(schema: str, extension: str) -> str:
    return f"{schema}/{secrets.token_urlsafe(18)}.{extension}"


@contextmanager
def writing(name: str) -> Iterator[IO[bytes]]:
    """A temporary file to write to, stored under `name` when the block ends without an error
    (moved, not copied, on the local file system)."""
    temporary = TemporaryUploadedFile(name.rsplit("/", 1)[-1], "application/octet-stream", 0, None)
    try:
        yield temporary.file
        temporary.file.flush()
        temporary.size = temporary.file.tell()
        if (saved := storage().save(name, temporary)) != name:  # never: names are random
            raise OSError(f"export file stored as {saved!r}, not {name!r}")
    finally:
        temporary.close()


def delete(name: str) -> None:
    if name:
        storage().delete(name)
