from django.apps import AppConfig


class AlphanodeConfig(AppConfig):
    """The project's own app: what every process does with the database and logins."""

    name = "alphanode"

    def ready(self):
        # Their signal receivers (and the database's exit hook).
        from alphanode import database, security  # noqa: F401
