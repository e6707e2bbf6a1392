"""The download of an export's file, through a signed link (apps.exports.links) on the tenant's
own host. A link of another tenant, a tampered or an expired one is refused (403) before anything
is read; an export without a file (not done yet, failed, expired) is not found (404). The file
goes out chunk by chunk (apps.common.streaming), however large it is."""

from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase, HttpResponseForbidden
from django.views.decorators.http import require_safe

from apps.common.streaming import streamed
from apps.exports import files, links, services
from apps.exports.models import Export, ExportStatus


@require_safe
def download(request: HttpRequest, export_id: int) -> HttpResponseBase:
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        raise Http404
    if not links.valid(tenant.schema_name, export_id, request.GET.get("sig", "")):
        return HttpResponseForbidden("This download link is not valid here, or has expired.")
    export = Export.objects.filter(pk=export_id, status=ExportStatus.DONE).exclude(file="").first()
    if export is None or not files.storage().exists(export.file):
        raise Http404
    response = FileResponse(
        files.storage().open(export.file, "rb"),
        as_attachment=True,
        filename=export.file_name,
        content_type=services.content_type(export),
    )
    response["Cache-Control"] = "private, no-store"
    return streamed(response)
