"""Move the view counts kept in Redis into the posts (posts/viewcounts.py)."""

from django.core.management.base import BaseCommand

from posts.viewcounts import fold_view_counts


class Command(BaseCommand):
    help = (
        "Add the views counted in Redis since the last fold to Post.view_count. Safe to run "
        "again after a crash and to run twice at once; run it every few minutes (cron)."
    )

    def handle(self, **options):
        posts, views = fold_view_counts()
        self.stdout.write(f"folded {views:,} views of {posts:,} posts")
