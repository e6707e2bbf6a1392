from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "apps.analytics"
    label = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.analytics import cache
        from tenants.models import on_schema_created

        # A schema made again under an old name must not serve that name's cached answers.
        on_schema_created(cache.bump)
