"""Global ids: how the API names one object of one tenant (DESIGN §3 "Ids name their tenant").

An id is the URL-safe base64 (unpadded) of `<Type>:<schema>:<pk>` followed by a truncated HMAC of
that text under SECRET_KEY. The tenant's schema is in it because database numbering is per schema:
without it, another tenant's `Variant:1` would address this tenant's variant 1. The HMAC makes ids
tamper-evident: a client cannot make one up or turn one into another (a changed character fails
it), so an id is only ever what the API gave out. Clients treat ids as opaque strings.

`decode` is the only way back to a row: an id minted in another tenant, tampered with, or not an
id at all is None, whatever it looks like (the API answers NOT_FOUND, never which of these it was).
"""

from __future__ import annotations

import base64
import hmac
import re

from django.conf import settings
from django.utils.crypto import salted_hmac

from apps.common.ids import parse_id

_SALT = "apps.common.global_ids"
_MAC_BYTES = 8  # 64 bits: guessing one through a throttled API is out of reach
MAX_LENGTH = 160  # longer than any id we mint (a 63-character schema name included)
_TEXT = re.compile(r"[A-Za-z0-9_-]+")
# GraphQL type names; schema names as django-tenants allows them; pks as parse_id takes them
_PAYLOAD = re.compile(r"([A-Za-z][A-Za-z0-9]{0,63}):([A-Za-z_][A-Za-z0-9_]{0,62}):([0-9]{1,18})")


def _mint(payload: str, secret: str) -> str:
    mac = salted_hmac(_SALT, payload, secret=secret, algorithm="sha256").digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload.encode("ascii") + mac).rstrip(b"=").decode("ascii")


def encode(type_name: str, pk: int, schema: str) -> str:
    """The id of row `pk` of GraphQL type `type_name` in tenant schema `schema` ("public" for
    the platform)."""
    payload = f"{type_name}:{schema}:{int(pk)}"
    if not _PAYLOAD.fullmatch(payload):
        raise ValueError(f"Cannot mint an id from {payload!r}.")
    return _mint(payload, settings.SECRET_KEY)


def decode(text: object, schema: str) -> tuple[str, int] | None:
    """(type name, pk) of an id minted in `schema`; None for anything else."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH or not _TEXT.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # binascii.Error: a length no base64 has
        return None
    match = _PAYLOAD.fullmatch(raw[:-_MAC_BYTES].decode("ascii", errors="replace"))
    if match is None or match[2] != schema:
        return None
    # Valid iff minting its parts again gives exactly this text: that checks the HMAC and refuses
    # other spellings of the same bytes. Ids minted before a key rotation hold while the old key
    # is in SECRET_KEY_FALLBACKS, as Django's signing does.
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(hmac.compare_digest(_mint(match[0], secret), text) for secret in secrets):
        return None
    pk = parse_id(match[3])
    return None if pk is None else (match[1], pk)


def pk_in(text: object, type_name: str, schema: str) -> int | None:
    """The pk an id names if it is an id of `type_name` minted in `schema`; None otherwise."""
    found = decode(text, schema)
    return found[1] if found is not None and found[0] == type_name else None
