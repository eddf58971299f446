"""Refresh the cached pages that scheduled posts join once their date has passed."""

from django.core.management.base import BaseCommand

from posts import derived


class Command(BaseCommand):
    help = (
        "Refresh the cached list pages, tag pages and similar lists that posts dated for later "
        "now join (nothing is written when such a date passes). Run it every minute (cron)."
    )

    def handle(self, **options):
        released = derived.release_scheduled()
        self.stdout.write(f"released {len(released):,} scheduled posts onto cached pages")
