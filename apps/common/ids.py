"""Database ids from text that callers send (headers, global ids, tokens)."""

import re

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only ('²'.isdigit() is True), within bigint


def parse_id(text: str) -> int | None:
    return int(text) if _ID.fullmatch(text or "") else None
