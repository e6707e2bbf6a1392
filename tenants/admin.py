from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.models import Domain, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "status", "time_zone", "currency", "created")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    # The time zone changes through tenantUpdate / platformTenantUpdate, which rebuild the
    # tenant's analytics rollups (days are local days) in the same transaction.
    readonly_fields = ("schema_name", "created", "is_template", "time_zone")
    inlines = [DomainInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).filter(is_template=False)


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    search_fields = ("domain", "tenant__slug")
