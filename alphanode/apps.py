from django.apps import AppConfig


class AlphanodeConfig(AppConfig):
    """The project's own app: what every process does with the database and the logs."""

    name = "alphanode"

    def ready(self):
        from alphanode import database  # noqa: F401 (its signal receiver and exit hook)
