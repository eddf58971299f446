"""Create deterministic synthetic posts for demos, tests and load tests."""

import time

from django.core.management.base import BaseCommand, CommandError

from posts.generation import generate_records
from posts.models import Post
from posts.services import save_posts


class Command(BaseCommand):
    help = (
        "Create COUNT deterministic synthetic posts from SEED (same seed, same posts). "
        "Re-running with the same seed updates the same posts instead of adding new ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=200, help="How many posts (default 200).")
        parser.add_argument("--seed", type=int, default=1, help="Seed of the run (default 1).")
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Posts written per transaction."
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already has posts (used by `make demo`).",
        )

    def handle(self, *, count, seed, batch_size, if_empty, **options):
        if count < 0:
            raise CommandError(f"--count must be 0 or more, got {count}.")
        if seed < 0:
            raise CommandError(f"--seed must be 0 or more, got {seed}.")
        if batch_size < 1:
            raise CommandError(f"--batch-size must be 1 or more, got {batch_size}.")
        if if_empty and Post.objects.exists():
            self.stdout.write("Posts already exist; nothing generated (--if-empty).")
            return
        started = time.monotonic()

        def report_progress(saved):
            if options["verbosity"] >= 1 and count > batch_size:
                rate = saved / max(time.monotonic() - started, 1e-9)
                self.stdout.write(f"  {saved}/{count} posts saved, {rate:.0f} posts/s")

        result = save_posts(
            generate_records(count, seed), batch_size=batch_size, progress=report_progress
        )
        seconds = time.monotonic() - started
        rate = result.saved / seconds if seconds else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Saved {result.saved} posts (seed {seed}) in {seconds:.1f}s, {rate:.0f} posts/s."
            )
        )
