"""Refresh the cached pages that scheduled posts join once their date has passed."""

from django.core.management.base import BaseCommand

from posts import tasks


class Command(BaseCommand):
    help = (
        "Refresh the cached list pages, tag pages and similar lists that posts dated for later "
        "now join (nothing is written when such a date passes). Run it every minute (cron). "
        "With --enqueue, queue the same work as a task for the worker instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--enqueue", action="store_true",
            help="Queue the release as a task (TASKS_BACKEND) instead of running it here.",
        )

    def handle(self, *, enqueue, **options):
        if enqueue:
            result = tasks.release_scheduled.enqueue()
            self.stdout.write(f"queued release_scheduled as task {result.id} ({result.status})")
            return
        released = tasks.release_scheduled.call()["released"]
        self.stdout.write(f"released {released:,} scheduled posts onto cached pages")
