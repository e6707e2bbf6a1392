"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with keys from the environment. Here, at
the bottom, because more than one app stores secrets it must read back (Stripe keys, alert
webhook signing secrets).

FIELD_ENCRYPTION_KEY is one Fernet key, or several separated by commas to rotate: the first
encrypts, any of them decrypts (MultiFernet). Without a key nothing is encrypted or decrypted:
there is no default outside the dev server and the tests.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in (settings.FIELD_ENCRYPTION_KEY or "").split(",") if key.strip()]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set to store payment secrets.")
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plain: str) -> str:
    """The token stored for `plain`; an empty string stays empty (nothing set)."""
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # a rotated-out key: say so, never what was stored
        raise ImproperlyConfigured(
            "A payment secret cannot be decrypted with FIELD_ENCRYPTION_KEY."
        ) from exc
