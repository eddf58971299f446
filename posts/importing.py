"""Importing posts from JSON Lines and page-text files: streamed, batched, loud about bad input.

Every record is validated at the boundary; a bad one becomes a Problem reported as
`FILE:LINE: field: what was wrong, what was expected`, never a traceback. Good records are
written in batches, one transaction each, so an interrupted import leaves only whole posts and
running it again completes it.
"""

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.db import IntegrityError, connection, transaction

from posts.models import Post
from posts.pagetext import PageTextError, parse_page_text
from posts.records import PostRecord
from posts.serialization import RecordInvalid, record_from_dict
from posts.services import DIGEST_SIZE, BatchRejected, record_digest, save_post_batch

FORMATS = ("jsonl", "page-text")
PAGE_TEXT_SUFFIXES = (".txt", ".text")


@dataclass(frozen=True)
class Problem:
    location: str  # FILE:LINE
    field: str
    message: str

    def __str__(self):
        return f"{self.location}: {self.field}: {self.message}"


@dataclass
class Parsed:
    """One record read from a file: its decoded JSON or its record, or what was wrong with it.

    JSON Lines records are validated only when their digest differs from the stored one, so
    re-importing an unchanged file costs little more than reading it.
    """

    location: str
    size: int  # bytes of input it took, for progress
    data: Any = None  # the decoded JSON object, not yet validated
    record: PostRecord | None = None
    digest: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def source_id(self) -> str | None:
        if self.record is not None:
            return self.record.source_id
        payload = self.data.get("payload") if isinstance(self.data, dict) else None
        source_id = payload.get("source_id") if isinstance(payload, dict) else None
        return source_id if isinstance(source_id, str) and source_id else None

    def validate(self) -> None:
        """Turn `data` into `record`, or into problems."""
        if self.record is not None or self.problems:
            return
        try:
            self.record = record_from_dict(self.data)
        except RecordInvalid as error:
            self.problems = [Problem(self.location, f, message) for f, message in error.errors]


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0

    @property
    def processed(self):
        return self.created + self.updated + self.unchanged + self.rejected

    @property
    def rate(self):
        return self.processed / self.seconds if self.seconds else 0.0

    def summary(self):
        return (
            f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
            f"rejected {self.rejected}, {self.seconds:.1f} seconds, {self.rate:.0f} posts/s"
        )


class ImportAborted(Exception):
    """--strict stopped the import at a bad record; its batch was not written."""

    def __init__(self, problems: list[Problem]):
        super().__init__(str(problems[0]))
        self.problems = problems


def guess_format(name: str) -> str:
    """Return the format a file name suggests: page-text for .txt, otherwise jsonl."""
    return "page-text" if name.lower().endswith(PAGE_TEXT_SUFFIXES) else "jsonl"


def read_jsonl(stream: BinaryIO, name: str) -> Iterator[Parsed]:
    """Yield one Parsed per non-blank line of a JSON Lines stream."""
    for number, raw in enumerate(stream, start=1):
        location = f"{name}:{number}"
        parsed = Parsed(location=location, size=len(raw))
        if not raw.strip():
            yield parsed
            continue
        try:
            data = json.loads(raw)
        except UnicodeDecodeError:
            parsed.problems.append(
                Problem(location, "line", "not valid UTF-8, expected UTF-8 encoded JSON")
            )
        except json.JSONDecodeError as error:
            parsed.problems.append(
                Problem(
                    location,
                    "line",
                    f"invalid JSON ({error.msg} at column {error.colno}), "
                    "expected one JSON object per line",
                )
            )
        else:
            parsed.data = data
            parsed.digest = line_digest(raw)
        yield parsed


def read_page_text(stream: BinaryIO, name: str) -> Iterator[Parsed]:
    """Yield the one post of a page-text stream (the visible text of one article page)."""
    raw = stream.read()
    parsed = Parsed(location=f"{name}:1", size=len(raw))
    try:
        data, lines = parse_page_text(raw.decode("utf-8"))
    except UnicodeDecodeError:
        parsed.problems.append(
            Problem(parsed.location, "file", "not valid UTF-8, expected UTF-8 text")
        )
    except PageTextError as error:
        parsed.problems.append(Problem(f"{name}:{error.line}", error.field, error.message))
    else:
        try:
            parsed.record = record_from_dict(data)
            parsed.digest = record_digest(parsed.record)
        except RecordInvalid as error:
            parsed.problems += [
                Problem(f"{name}:{line_of(lines, f)}", f, message) for f, message in error.errors
            ]
    yield parsed


def line_digest(raw: bytes) -> str:
    """Return the digest of one JSON line; for a line as export writes it, record_digest's."""
    return hashlib.blake2b(raw.strip(), digest_size=DIGEST_SIZE).hexdigest()


def line_of(lines: dict[str, int], field_path: str) -> int:
    """Return the page line where `field_path` (or the field holding it) was found."""
    while field_path:
        if field_path in lines:
            return lines[field_path]
        field_path = field_path.rpartition(".")[0].split("[")[0]
    return 1


READERS = {"jsonl": read_jsonl, "page-text": read_page_text}


class SeenSourceIds:
    """Where each source id of the current file was first seen.

    Kept in a temporary table rather than a Python set, so memory stays flat however long
    the file is; the table lives only as long as the database connection.
    """

    TABLE = "alphanode_import_seen"

    def __init__(self):
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.TABLE} "
                "(source_id varchar(100) PRIMARY KEY, location varchar(2000) NOT NULL)"
            )
            cursor.execute(f"DELETE FROM {self.TABLE}")

    def claim(self, items: dict[str, str]) -> dict[str, str]:
        """Record source id -> location pairs; return the earlier location of those seen before."""
        if not items:
            return {}
        placeholders = ", ".join(["%s"] * len(items))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT source_id, location FROM {self.TABLE} "
                f"WHERE source_id IN ({placeholders})",
                list(items),
            )
            earlier = dict(cursor.fetchall())
            new = [(source_id, loc) for source_id, loc in items.items() if source_id not in earlier]
            if new:
                cursor.execute(
                    f"INSERT INTO {self.TABLE} (source_id, location) VALUES "
                    + ", ".join(["(%s, %s)"] * len(new)),
                    [value for pair in new for value in pair],
                )
        return earlier


def stored_digests(source_ids) -> dict[str, str]:
    """Return the stored import digest of each existing post among `source_ids`."""
    return dict(
        Post.objects.filter(source_id__in=source_ids).values_list("source_id", "import_digest")
    )


def duplicate_problem(location: str, source_id: str, first: str) -> Problem:
    return Problem(
        location,
        "payload.source_id",
        f"{source_id!r} already appeared at {first}, expected each source id once per file",
    )


class Importer:
    """Reads sources, validates records, writes good ones in batches and reports the rest."""

    def __init__(
        self,
        *,
        batch_size: int = 500,
        dry_run: bool = False,
        strict: bool = False,
        on_problem: Callable[[Problem], None] = print,
        on_progress: Callable[[int, int], None] | None = None,
    ):
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.strict = strict
        self.on_problem = on_problem
        self.on_progress = on_progress
        self.report = ImportReport()
        self.bytes_read = 0

    def run(self, sources: Iterable[tuple[str, BinaryIO, str]]) -> ImportReport:
        """Import every (name, binary stream, format) source; return the counts."""
        started = time.monotonic()
        try:
            for name, stream, file_format in sources:
                self.import_file(name, stream, file_format)
        finally:
            self.report.seconds = time.monotonic() - started
        return self.report

    def import_file(self, name: str, stream: BinaryIO, file_format: str) -> None:
        seen = SeenSourceIds()
        batch: list[Parsed] = []
        for parsed in READERS[file_format](stream, name):
            self.bytes_read += parsed.size
            if parsed.data is None and parsed.record is None and not parsed.problems:
                continue  # a blank line
            batch.append(parsed)
            if len(batch) >= self.batch_size:
                self.write(batch, seen)
                batch = []
        if batch:
            self.write(batch, seen)

    def reject(self, problems: list[Problem]) -> None:
        """Count one rejected record and report its problems; stop here with --strict."""
        if self.strict:
            raise ImportAborted(problems)
        self.report.rejected += 1
        for problem in problems:
            self.on_problem(problem)

    def write(self, batch: list[Parsed], seen: SeenSourceIds) -> None:
        """Check one batch in file order, then write its new and changed posts in one transaction.

        Bad records, duplicates and unchanged posts are dropped first (3 queries: seen source
        ids, and the stored digests).
        """
        first: dict[str, Parsed] = {}
        for parsed in batch:
            if parsed.source_id is not None:
                first.setdefault(parsed.source_id, parsed)
        earlier = seen.claim({source_id: p.location for source_id, p in first.items()})
        stored = stored_digests(first.keys() - earlier.keys())

        to_save: dict[str, Parsed] = {}
        for parsed in batch:
            source_id = parsed.source_id
            if source_id is None or parsed.problems:
                parsed.validate()
                self.reject(parsed.problems)
            elif source_id in earlier or first[source_id] is not parsed:
                where = earlier.get(source_id) or first[source_id].location
                self.reject([duplicate_problem(parsed.location, source_id, where)])
            elif stored.get(source_id) == parsed.digest:
                self.report.unchanged += 1
            else:
                parsed.validate()
                if parsed.problems:
                    self.reject(parsed.problems)
                else:
                    to_save[source_id] = parsed

        try:
            self.save(list(to_save.values()), to_save)
        except IntegrityError:
            # A clash the pre-checks could not see (e.g. two posts swapping slugs): find the
            # culprits by saving the batch's records one at a time.
            for parsed in to_save.values():
                try:
                    self.save([parsed], to_save)
                except IntegrityError as error:
                    first_line = str(error).splitlines()[0]
                    self.reject([Problem(parsed.location, "record", f"not saved: {first_line}")])
        if self.on_progress is not None:
            self.on_progress(self.report.processed, self.bytes_read)

    def save(self, items: list[Parsed], by_source_id: dict[str, Parsed]) -> None:
        """Save the validated records of `items` in one transaction (rolled back on --dry-run)."""
        if not items:
            return
        records = [parsed.record for parsed in items]
        digests = {parsed.record.source_id: parsed.digest for parsed in items}
        try:
            with transaction.atomic():
                outcome = save_post_batch(records, digests, strict=self.strict)
                if self.dry_run:
                    transaction.set_rollback(True)
        except BatchRejected as error:
            raise ImportAborted(self.conflict_problems(error.conflicts, by_source_id)) from None
        self.report.created += outcome.created
        self.report.updated += outcome.updated
        self.report.unchanged += outcome.unchanged
        for problem in self.conflict_problems(outcome.conflicts, by_source_id):
            self.reject([problem])

    @staticmethod
    def conflict_problems(conflicts, by_source_id) -> list[Problem]:
        return [
            Problem(by_source_id[source_id].location, name, message)
            for source_id, (name, message) in conflicts.items()
        ]
