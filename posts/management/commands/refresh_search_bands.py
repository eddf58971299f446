"""Move the search bands' starts to where SEARCH_BANDS puts them now (docs/queries.md)."""

import time

from django.core.management.base import BaseCommand
from django.db import connection

from posts import derived


class Command(BaseCommand):
    help = (
        "Cut the published posts' search documents into bands by date again: the newest "
        "SEARCH_BANDS[0] in band 1, down to the newest SEARCH_BANDS[1] in band 2, and so on, "
        "moving only the documents whose band changed. Searches read the newest band first, "
        "so this keeps them fast as posts are published; what they find never depends on it. "
        "Run it every 10 minutes (deploy/systemd); import_posts and generate_posts run it at "
        "their end."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--full",
            action="store_true",
            help="Recompute every document's band, not only those between the old and new "
            "starts (a repair tool, e.g. after documents were changed by hand-written SQL).",
        )

    def handle(self, *, full, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("Nothing to do: search bands exist on PostgreSQL only.")
            return
        started = time.monotonic()
        moved = derived.refresh_search_bands(full=full)
        self.stdout.write(
            f"Search bands refreshed: {moved:,} documents moved in "
            f"{time.monotonic() - started:.1f}s."
        )
