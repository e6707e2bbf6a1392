"""Signed download links: `/exports/<id>/download?sig=…` on the tenant's host. The signature
(django.core.signing, timestamped) is salted with the tenant's schema and the export's id, so a
link works for that export of that tenant only, and for EXPORT_URL_MAX_AGE seconds."""

from __future__ import annotations

from django.conf import settings
from django.core import signing


def _signer(schema: str, export_id: int) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"apps.exports.download:{schema}:{export_id}")


def signature(schema: str, export_id: int) -> str:
    """The `sig` of a fresh link (the signed value is the id, already in the path)."""
    return _signer(schema, export_id).sign(str(export_id)).split(":", 1)[1]


def path(schema: str, export_id: int) -> str:
    return f"/exports/{export_id}/download?sig={signature(schema, export_id)}"


def valid(schema: str, export_id: int, sig: str) -> bool:
    """Whether `sig` was made for this export of this tenant and has not expired."""
    try:
        _signer(schema, export_id).unsign(f"{export_id}:{sig}", max_age=settings.EXPORT_URL_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return False
    return True
