"""Recompute the stored post counts and listing dates from the posts themselves."""

from django.core.management.base import BaseCommand

from posts import derived


class Command(BaseCommand):
    help = (
        "Recompute every tag's post count, the total of published posts and the listing "
        "dates on tag links from the posts (every write keeps them current; this is a repair "
        "tool for data changed behind the application's back, e.g. by hand-written SQL)."
    )

    def handle(self, **options):
        derived.recount_posts()
        self.stdout.write(
            f"recounted: {derived.listed_post_count()} published posts"
        )
