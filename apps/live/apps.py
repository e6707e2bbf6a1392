from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "apps.live"
    label = "live"

    def ready(self) -> None:
        from apps.live import receivers  # models of the apps it listens to are loaded only now

        receivers.connect()
