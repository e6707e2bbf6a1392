"""Reading an export's file back with the reader of its format: rows as dicts by column name."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from openpyxl import load_workbook

from apps.exports import files
from apps.exports.models import Export


def content(export: Export) -> bytes:
    with files.storage().open(export.file, "rb") as stored:
        return stored.read()


def rows_of(data: bytes, format: str, layout: str = "array") -> list[dict[str, Any]]:
    if format == "csv":
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    if format == "json" and layout == "ndjson":
        return [json.loads(line) for line in data.decode("utf-8").splitlines()]
    if format == "json":
        return json.loads(data)
    book = load_workbook(io.BytesIO(data))
    sheet = book["Data"]
    header, *rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def read(export: Export) -> list[dict[str, Any]]:
    return rows_of(content(export), export.format, export.layout)
