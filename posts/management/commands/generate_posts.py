"""Create deterministic synthetic posts for demos, tests and load tests."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from posts import derived
from posts.generation import generate_records
from posts.models import Post
from posts.progress import Progress
from posts.serialization import dumps, record_to_dict
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
            "--output",
            "-o",
            metavar="FILE",
            help="Write the posts as JSON Lines to FILE (- for standard output) for import_posts, "
            "instead of saving them.",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already has posts (used by `make demo`).",
        )

    def handle(self, *, count, seed, batch_size, output, if_empty, **options):
        if count < 0:
            raise CommandError(f"--count must be 0 or more, got {count}.")
        if seed < 0:
            raise CommandError(f"--seed must be 0 or more, got {seed}.")
        if batch_size < 1:
            raise CommandError(f"--batch-size must be 1 or more, got {batch_size}.")
        if output:
            self.write_jsonl(output, count, seed)
            return
        if if_empty and Post.objects.exists():
            self.stdout.write("Posts already exist; nothing generated (--if-empty).")
            return
        started = time.monotonic()
        progress = Progress(sys.stderr, label="posts saved")
        outcome = save_posts(
            generate_records(count, seed),
            batch_size=batch_size,
            progress=progress.update if options["verbosity"] >= 1 else None,
        )
        progress.finish()
        derived.refresh_search_bands()  # the new posts' dates may have moved the bands
        seconds = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Saved {count} posts (seed {seed}): created {outcome.created}, updated "
                f"{outcome.updated}, unchanged {outcome.unchanged}, in {seconds:.1f}s, "
                f"{count / max(seconds, 1e-9):.0f} posts/s."
            )
        )

    def write_jsonl(self, output, count, seed):
        """Write the generated posts to `output` as JSON Lines."""
        started = time.monotonic()
        lines = (dumps(record_to_dict(record)) + "\n" for record in generate_records(count, seed))
        if output == "-":
            for line in lines:
                self.stdout.write(line, ending="")
            return
        try:
            with open(output, "w", encoding="utf-8") as stream:
                stream.writelines(lines)
        except OSError as error:
            raise CommandError(f"{output}: cannot write ({error.strerror}).") from None
        seconds = time.monotonic() - started
        self.stdout.write(f"Wrote {count} posts (seed {seed}) to {output} in {seconds:.1f}s.")
