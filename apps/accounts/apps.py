from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.accounts.selectors import tenant_id_for_api_key
        from tenants.resolution import use_api_key_lookup

        # Requests that name their tenant by nothing but an API key (tenants.resolution).
        use_api_key_lookup(tenant_id_for_api_key)
