"""Write every post as JSON Lines (the format import_posts reads)."""

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from posts.exporting import export_records
from posts.progress import Progress
from posts.serialization import dumps, record_to_dict


class Command(BaseCommand):
    help = (
        "Write every post as JSON Lines, one post per line, in source id order "
        "(format: docs/post-format.md). Output goes to standard output unless --output is given."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", "-o", metavar="FILE", help="File to write (default: standard output)."
        )

    def handle(self, *, output, **options):
        started = time.monotonic()
        if output is None:
            count = self.export(lambda line: self.stdout.write(line, ending=""), options)
            return
        try:
            with open(output, "w", encoding="utf-8") as stream:
                count = self.export(stream.write, options)
        except OSError as error:
            raise CommandError(f"{output}: cannot write ({error.strerror}).") from None
        seconds = time.monotonic() - started
        self.stdout.write(f"Exported {count} posts to {output} in {seconds:.1f}s.")

    def export(self, write, options) -> int:
        """Write every post as one line through `write`; return how many."""
        progress = Progress(sys.stderr) if options["verbosity"] >= 1 else None
        count = 0
        for record in export_records():
            write(dumps(record_to_dict(record)) + "\n")
            count += 1
            if progress is not None:
                progress.update(count)
        if progress is not None:
            progress.finish()
        return count
