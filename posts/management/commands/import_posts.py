"""Import posts from JSON Lines or page-text files (gzipped or not, or a directory of them),
idempotently and in bulk."""

import os
import sys
from collections.abc import Iterator
from contextlib import closing
from typing import BinaryIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from posts import derived
from posts.importing import (
    FORMATS,
    IMPORTABLE_SUFFIXES,
    ImportAborted,
    Importer,
    guess_format,
    importable_files,
    is_gzip_file,
)
from posts.progress import Progress

STDIN = "-"


class Command(BaseCommand):
    help = (
        "Import posts from JSON Lines files (one post per line, see docs/post-format.md) or "
        "page-text files (the visible text of one old article page), gzipped or not; a "
        "directory imports its .jsonl and .txt files (and .gz of those). Posts are keyed by their "
        "payload source id: re-importing a file changes nothing, a changed record updates its "
        "post. Bad records are listed as FILE:LINE: field: problem and skipped; the command "
        "then exits with status 1."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "files", nargs="+", metavar="FILE",
            help="Files or directories to import; - is stdin.",
        )
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
        files = expand_directories(files)
        missing = [name for name in files if name != STDIN and not os.path.isfile(name)]
        if missing:
            raise CommandError(f"No such file: {', '.join(missing)}. Nothing was imported.")
        unreadable = [name for name in files if name != STDIN and not os.access(name, os.R_OK)]
        if unreadable:
            raise CommandError(
                f"Cannot read: {', '.join(unreadable)} (permission denied). Nothing was imported."
            )

        progress = Progress(sys.stderr, input_size(files))
        importer = Importer(
            batch_size=batch_size,
            dry_run=dry_run,
            strict=strict,
            workers=workers,
            on_problem=lambda problem: self.stderr.write(str(problem)),
            on_progress=progress.update if options["verbosity"] >= 1 else None,
        )
        with closing(sources(files, file_format)) as opened:
            try:
                report = importer.run(opened)
            except ImportAborted as error:
                progress.finish()
                for problem in error.problems:
                    self.stderr.write(str(problem))
                raise CommandError(
                    "Stopped at the first bad record (--strict); it and its batch were not "
                    f"written. Before it: {importer.report.summary()}."
                ) from None
        progress.finish()
        if not dry_run and (report.created or report.updated):
            derived.refresh_search_bands()  # the new posts' dates may have moved the bands
        prefix = "Dry run, nothing written: " if dry_run else ""
        self.stdout.write(f"{prefix}{report.summary()}")
        if report.rejected:
            raise CommandError(
                f"{report.rejected} record(s) rejected (listed above); the others were "
                f"{'checked' if dry_run else 'imported'}. Fix them and run again: "
                "unchanged posts are skipped."
            )


def expand_directories(files: list[str]) -> list[str]:
    """Return `files` with each directory replaced by the files in it to import, sorted."""
    expanded = []
    for name in files:
        if name == STDIN or not os.path.isdir(name):
            expanded.append(name)
            continue
        try:
            found = importable_files(name)
        except OSError as error:
            raise CommandError(
                f"Cannot list directory {name} ({error.strerror}). Nothing was imported."
            ) from error
        if not found:
            raise CommandError(
                f"{name} is a directory with no files to import in it (expected "
                f"{', '.join(f'*{suffix}' for suffix in IMPORTABLE_SUFFIXES)}). "
                "Nothing was imported."
            )
        expanded += found
    return expanded


def sources(files: list[str], file_format: str | None) -> Iterator[tuple[str, BinaryIO, str]]:
    """Yield (name, binary stream, format) per file, each open only while it is imported (a
    directory may hold more files than a process may open at once)."""
    for name in files:
        if name == STDIN:
            yield "<stdin>", sys.stdin.buffer, file_format or "jsonl"
            continue
        with open(name, "rb") as stream:
            yield name, stream, file_format or guess_format(name)


def input_size(files: list[str]) -> int | None:
    """Return the bytes of input to read, or None when that is unknown: standard input, and
    gzipped files, whose size says little of how much they hold."""
    if STDIN in files or any(is_gzip_file(name) for name in files):
        return None
    return sum(os.path.getsize(name) for name in files)
