"""Project configuration: settings, URL maps, ASGI entry point, the Celery app, dev server."""
