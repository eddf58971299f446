"""Recompute every post's precomputed similar posts."""

import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from posts import derived
from posts.models import Post
from posts.progress import Progress


class Command(BaseCommand):
    help = (
        "Recompute every post's similar posts from the current tags and counts (every write "
        "already keeps them current; run this after changing the SIMILAR_* settings, after "
        "upgrading, or now and then to let old lists catch up with newer posts). Resumable: "
        "an interrupted run goes on where it stopped unless --restart is given."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=settings.SIMILAR_BATCH_SIZE, metavar="N",
            help=f"Posts per transaction (default {settings.SIMILAR_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--workers", type=int, default=2, metavar="N",
            help="Threads computing batches on their own database connections (default 2, "
            "PostgreSQL only; 0 computes on the main thread, as always on SQLite).",
        )
        parser.add_argument(
            "--restart", action="store_true",
            help="Start from the first post even if an earlier run was interrupted.",
        )

    def handle(self, *, batch_size, workers, restart, **options):
        if batch_size < 1:
            raise CommandError(f"--batch-size must be 1 or more, got {batch_size}.")
        if workers < 0:
            raise CommandError(f"--workers must be 0 or more, got {workers}.")
        if connection.vendor != "postgresql":
            workers = 0
        position = None if restart else derived.refresh_position()
        remaining = Post.objects.filter(pk__gt=position or 0).count()
        if position:
            self.stderr.write(f"Resuming after post id {position}: {remaining:,} posts to go.")
        progress = Progress(sys.stderr, remaining, label="posts")
        started = time.monotonic()
        done = derived.refresh_similar(
            batch_size=batch_size,
            workers=workers,
            restart=restart,
            on_progress=(lambda n: progress.update(n, n)) if options["verbosity"] >= 1 else None,
        )
        progress.finish()
        seconds = time.monotonic() - started
        self.stdout.write(
            f"recomputed the similar posts of {done} posts in {seconds:.1f} seconds "
            f"({done / max(seconds, 1e-9):.0f} posts/s)"
        )

