from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Installed for its ready() alone: the project's wiring that must happen wherever Django
    starts (web, worker, management commands, tests)."""

    name = "config"
    label = "config"

    def ready(self) -> None:
        # Shared tasks bind to our tenant-aware Celery app, not to a default one. Here rather than
        # in config/__init__.py (the Celery docs' place): config.celery sets DJANGO_SETTINGS_MODULE,
        # which the dev server launcher, importing config, would hand to its children.
        from config import celery  # noqa: F401
