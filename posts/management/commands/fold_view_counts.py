"""Move the view counts kept in Redis into the posts (posts/viewcounts.py)."""

from django.core.management.base import BaseCommand

from posts import tasks


class Command(BaseCommand):
    help = (
        "Add the views counted in Redis since the last fold to Post.view_count. Safe to run "
        "again after a crash and to run twice at once; run it every few minutes (cron). With "
        "--enqueue, queue the same work as a task for the worker instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--enqueue", action="store_true",
            help="Queue the fold as a task (TASKS_BACKEND) instead of running it here.",
        )

    def handle(self, *, enqueue, **options):
        if enqueue:
            result = tasks.fold_view_counts.enqueue()
            self.stdout.write(f"queued fold_view_counts as task {result.id} ({result.status})")
            return
        folded = tasks.fold_view_counts.call()
        self.stdout.write(f"folded {folded['views']:,} views of {folded['posts']:,} posts")
