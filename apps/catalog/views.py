"""Media files on tenant hosts: each tenant's own uploads and nothing else (dev and tests; in
production a web server or CDN serves MEDIA_ROOT with the same rule), sent chunk by chunk
(apps.common.streaming)."""

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.views.decorators.http import require_safe
from django.views.static import serve

from apps.common.streaming import streamed


@require_safe
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    tenant = getattr(request, "tenant", None)
    # Storage URLs are MEDIA_URL/<schema>/<name>; another schema's prefix is simply not found.
    schema, _, name = path.partition("/")
    if tenant is None or schema != tenant.schema_name or not name:
        raise Http404
    # The tenant's storage root, as the storage itself computes it for this tenant.
    root = default_storage.path("")
    if not root.rstrip("/").endswith(f"/{tenant.schema_name}"):
        raise Http404
    response = serve(request, name, document_root=root)  # a FileResponse, or 304 Not Modified
    response["Cache-Control"] = "public, max-age=86400"
    return streamed(response) if isinstance(response, FileResponse) else response


MEDIA_PATTERN = f"{settings.MEDIA_URL.strip('/')}/<path:path>"
