"""Import posts from JSON Lines or page-text files, idempotently and in bulk."""

import os
import sys
from contextlib import ExitStack

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from posts.importing import FORMATS, ImportAborted, Importer, guess_format
from posts.progress import Progress

STDIN = "-"


class Command(BaseCommand):
    help = (
        "Import posts from JSON Lines files (one post per line, see docs/post-format.md) or "
        "page-text files (the visible text of one old article page). Posts are keyed by their "
        "payload source id: re-importing a file changes nothing, a changed record updates its "
        "post. Bad records are listed as FILE:LINE: field: problem and skipped; the command "
        "then exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help="Files to import; - is stdin.")
        parser.add_argument(
            "--format",
            dest="file_format",
            choices=FORMATS,
            help="Format of every FILE (default: page-text for .txt files, jsonl otherwise).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Validate and count everything, then roll back: nothing is written.",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Stop at the first bad record, before its batch is written (batches are then "
            "written one at a time, without writer threads).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            metavar="N",
            help="Posts written per transaction (default 500).",
        )

        parser.add_argument(
            "--workers",
            type=int,
            metavar="N",
            help="Threads writing batches on their own database connections while the file is "
            "parsed (default: the IMPORT_WORKERS setting, 2; 0 writes on the main thread, "
            "as always on SQLite, which allows one writer).",
        )

    def handle(self, *, files, file_format, dry_run, strict, batch_size, workers, **options):
        if batch_size < 1:
            raise CommandError(f"--batch-size must be 1 or more, got {batch_size}.")
        workers = settings.IMPORT_WORKERS if workers is None else workers
        if workers < 0:
            raise CommandError(f"--workers must be 0 or more, got {workers}.")
        if connection.vendor == "sqlite":
            workers = 0
        if files.count(STDIN) > 1:
            raise CommandError("Standard input (-) can be read only once.")
        missing = [name for name in files if name != STDIN and not os.path.isfile(name)]
        if missing:
            raise CommandError(f"No such file: {', '.join(missing)}. Nothing was imported.")
        unreadable = [name for name in files if name != STDIN and not os.access(name, os.R_OK)]
        if unreadable:
            raise CommandError(
                f"Cannot read: {', '.join(unreadable)} (permission denied). Nothing was imported."
            )

        total_bytes = sum(os.path.getsize(name) for name in files if name != STDIN)
        progress = Progress(sys.stderr, total_bytes if STDIN not in files else None)
        importer = Importer(
            batch_size=batch_size,
            dry_run=dry_run,
            strict=strict,
            workers=workers,
            on_problem=lambda problem: self.stderr.write(str(problem)),
            on_progress=progress.update if options["verbosity"] >= 1 else None,
        )
        with ExitStack() as stack:
            sources = [
                (
                    "<stdin>" if name == STDIN else name,
                    sys.stdin.buffer if name == STDIN else stack.enter_context(open(name, "rb")),
                    file_format or ("jsonl" if name == STDIN else guess_format(name)),
                )
                for name in files
            ]
            try:
                report = importer.run(sources)
            except ImportAborted as error:
                progress.finish()
                for problem in error.problems:
                    self.stderr.write(str(problem))
                raise CommandError(
                    "Stopped at the first bad record (--strict); it and its batch were not "
                    f"written. Before it: {importer.report.summary()}."
                ) from None
        progress.finish()
        prefix = "Dry run, nothing written: " if dry_run else ""
        self.stdout.write(f"{prefix}{report.summary()}")
        if report.rejected:
            raise CommandError(
                f"{report.rejected} record(s) rejected (listed above); the others were "
                f"{'checked' if dry_run else 'imported'}. Fix them and run again: "
                "unchanged posts are skipped."
            )
