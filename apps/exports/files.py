"""Where export files live: their own storage (settings.STORAGES["exports"]), outside MEDIA_ROOT,
so neither the media view nor a web server in front of MEDIA_ROOT ever serves one. Names carry
the tenant's schema, the export's id and a keyed hash of both: `<schema>/<id>-<hash>.<ext>`. The
hash keeps names unguessable; that the name is the same for every run of one export is what lets
a run that starts over (its worker killed) replace a file instead of leaving a second one.

A file is written to a partial file of its export (`partial_path`, under EXPORT_PARTIAL_ROOT) and
moved into the storage when complete, so the storage never holds half a file. A run killed
mid-write leaves its partial behind; the next run of that export truncates it, and a run's end
(stored or failed) removes it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils.crypto import salted_hmac


def storage() -> Storage:
    return storages["exports"]


def name_for(schema: str, export_id: int, extension: str) -> str:
    """The storage name of the file of one export: the same for every run of it."""
    token = salted_hmac("apps.exports.files.name", f"{schema}:{export_id}").hexdigest()[:24]
    return f"{schema}/{export_id}-{token}.{extension}"


def partial_path(schema: str, export_id: int, extension: str) -> Path:
    """Where a run writes the file of one export before it is stored."""
    return Path(settings.EXPORT_PARTIAL_ROOT) / schema / f"{export_id}.{extension}.part"


class _Partial(File):
    """A file on the local disk the storage may move instead of copying (as an upload's)."""

    def temporary_file_path(self) -> str:
        assert self.file is not None  # made from an open file
        return self.file.name


def scratch_for(partial: Path) -> Path:
    """The folder beside `partial` for a run's own temporary files (XlsxWriter's row files): kept
    out of the system's temporary folder, where a killed run's would stay for good, and emptied
    by the export's next run as its partial file is."""
    return partial.with_name(partial.name + ".tmp")


@contextmanager
def writing(name: str, partial: Path) -> Iterator[IO[bytes]]:
    """`partial`, emptied, to write to (its `scratch_for` folder emptied too); stored under `name`
    (replacing a file a killed run stored there) when the block ends without an error. `partial`
    and its scratch folder are gone afterwards either way."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(scratch_for(partial), ignore_errors=True)  # what a killed run left
    try:
        with partial.open("w+b") as out:  # truncates what a killed run left
            yield out
            out.flush()
            storage().delete(name)
            if (saved := storage().save(name, _Partial(out, name=str(partial)))) != name:
                raise OSError(f"export file stored as {saved!r}, not {name!r}")
    finally:
        discard_partial(partial)


def discard_partial(partial: Path) -> None:
    """The partial file of a run that will not end (its export failed, or is to start over), and
    its scratch folder."""
    partial.unlink(missing_ok=True)
    shutil.rmtree(scratch_for(partial), ignore_errors=True)


def delete(name: str) -> None:
    if name:
        storage().delete(name)
