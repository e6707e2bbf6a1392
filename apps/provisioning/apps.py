from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    """No models: creating and seeding tenants, which needs the apps below it (DESIGN §2)."""

    name = "apps.provisioning"
    label = "provisioning"
