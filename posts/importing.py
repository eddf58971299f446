"""Importing posts from JSON Lines and page-text files: streamed, batched, loud about bad input.

Every record is validated at the boundary; a bad one becomes a Problem reported as
`FILE:LINE: field: what was wrong, what was expected`, never a traceback. Good records are
written in batches, one transaction each, so an interrupted import leaves only whole posts and
running it again completes it. Inputs may be gzipped; a record over MAX_RECORD_BYTES is refused
before it is parsed, and every text field has a cap (posts.serialization.MAX_LENGTHS).
"""

import gc
import gzip
import hashlib
import io
import json
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, BinaryIO

from django.db import IntegrityError, connection, transaction

from posts.pagetext import PageTextError, parse_page_text
from posts.records import PostRecord
from posts.serialization import MAX_LENGTHS, MAX_RECORD_BYTES, RecordInvalid, record_from_dict
from posts.services import (
    DIGEST_SIZE,
    find_clashes,
    record_digest,
    save_post_batch,
    stored_digests,
)

FORMATS = ("jsonl", "page-text")
PAGE_TEXT_SUFFIXES = (".txt", ".text")
JSONL_SUFFIXES = (".jsonl",)
GZIP_SUFFIX = ".gz"
GZIP_MAGIC = b"\x1f\x8b"
# What a directory argument imports: these files, and each of them gzipped.
IMPORTABLE_SUFFIXES = tuple(
    suffix + gz for suffix in JSONL_SUFFIXES + PAGE_TEXT_SUFFIXES for gz in ("", GZIP_SUFFIX)
)
SKIP_CHUNK = 1 << 16  # bytes read at a time while skipping an over-size record
# What a damaged gzip stream raises while it is read: a bad header or data, or its end missing.
GZIP_ERRORS = (gzip.BadGzipFile, zlib.error, EOFError)


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
    blank: bool = False  # a blank line: nothing to import
    data: Any = None  # the decoded JSON object, not yet validated
    record: PostRecord | None = None
    digest: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @cached_property  # asked several times per record on the import's hot path
    def source_id(self) -> str | None:
        """The record's source id, or None when it is missing or unusable (validation says why)."""
        if self.record is not None:
            return self.record.source_id
        payload = self.data.get("payload") if isinstance(self.data, dict) else None
        source_id = payload.get("source_id") if isinstance(payload, dict) else None
        if (
            isinstance(source_id, str)
            and 0 < len(source_id) <= MAX_LENGTHS["payload.source_id"]
            and "\x00" not in source_id
        ):
            return source_id
        return None

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
    """Return the format a file name suggests: page-text for .txt (or .txt.gz), else jsonl."""
    name = name.lower().removesuffix(GZIP_SUFFIX)
    return "page-text" if name.endswith(PAGE_TEXT_SUFFIXES) else "jsonl"


def importable_files(directory: str) -> list[str]:
    """Return the paths of the files a directory argument imports, sorted by name."""
    return sorted(
        entry.path
        for entry in os.scandir(directory)
        if entry.name.lower().endswith(IMPORTABLE_SUFFIXES) and entry.is_file()
    )


def is_gzip(stream: BinaryIO, name: str) -> bool:
    """Return whether a peekable stream is gzip data: its magic bytes, or a .gz name."""
    return stream.peek(2)[:2] == GZIP_MAGIC or name.lower().endswith(GZIP_SUFFIX)


def is_gzip_file(path: str) -> bool:
    """Return whether the file at `path` is gzip data."""
    with open(path, "rb") as stream:
        return is_gzip(stream, path)


def peekable(stream: BinaryIO) -> BinaryIO:
    """Return `stream`, buffered if it cannot peek (e.g. io.BytesIO)."""
    return stream if hasattr(stream, "peek") else io.BufferedReader(stream)


def decompressed(stream: BinaryIO, name: str) -> BinaryIO:
    """Return `stream`, read through gzip when it is compressed."""
    stream = peekable(stream)
    return gzip.GzipFile(fileobj=stream, mode="rb") if is_gzip(stream, name) else stream


def damaged_gzip(location: str, error: Exception) -> Problem:
    return Problem(
        location, "file",
        f"damaged gzip data ({error or type(error).__name__}), expected a whole gzip file; "
        "what came before was read, the rest of the file was not",
    )


def too_big(location: str, field: str, size: int) -> Problem:
    return Problem(
        location, field,
        f"{size:,} bytes, expected at most {MAX_RECORD_BYTES:,} (a record's size limit); "
        "skipped unread",
    )


def bounded_lines(stream: BinaryIO) -> Iterator[tuple[bytes | None, int]]:
    """Yield (line, size) per line; the line is None when it is over MAX_RECORD_BYTES.

    Never holds more than MAX_RECORD_BYTES + 1 bytes of a line: the rest of a longer one is read
    and dropped a chunk at a time. The size is in bytes, without the newline for a long line.
    """
    limit = MAX_RECORD_BYTES + 1  # room for the newline
    while raw := stream.readline(limit):
        if len(raw) < limit or raw.endswith(b"\n"):
            yield raw, len(raw)
            continue
        size = len(raw)
        while raw := stream.readline(SKIP_CHUNK):
            if raw.endswith(b"\n"):
                size += len(raw) - 1
                break
            size += len(raw)
        yield None, size


def read_jsonl(stream: BinaryIO, name: str) -> Iterator[Parsed]:
    """Yield one Parsed per line of a JSON Lines stream; damaged gzip data ends it with one."""
    number = 0
    try:
        for number, (raw, size) in enumerate(bounded_lines(stream), start=1):
            yield parse_line(raw, size, f"{name}:{number}")
    except GZIP_ERRORS as error:
        location = f"{name}:{number + 1}"
        yield Parsed(location=location, size=0, problems=[damaged_gzip(location, error)])


def parse_line(raw: bytes | None, size: int, location: str) -> Parsed:
    """Return the Parsed of one JSON line (None: a line over the size limit, not read)."""
    if raw is None:
        return Parsed(location=location, size=size, problems=[too_big(location, "line", size)])
    parsed = Parsed(location=location, size=size, blank=raw.isspace())  # no copy, unlike strip
    if parsed.blank:
        return parsed
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
    except (ValueError, RecursionError) as error:  # a 5,000-digit number, deep nesting
        parsed.problems.append(
            Problem(location, "line", f"unreadable JSON ({error}), expected one post object")
        )
    else:
        if b"\\ud" in raw.lower() and has_lone_surrogate(data):
            parsed.problems.append(
                Problem(location, "line", "holds an unpaired \\ud800-\\udfff escape, "
                        "expected valid Unicode text")
            )
        else:
            parsed.data = data
            parsed.digest = line_digest(raw)
    return parsed


def has_lone_surrogate(data) -> bool:
    """Return whether decoded JSON holds text that cannot be written as UTF-8."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_page_text(stream: BinaryIO, name: str) -> Iterator[Parsed]:
    """Yield the one post of a page-text stream (the visible text of one article page)."""
    location = f"{name}:1"
    try:
        raw = stream.read(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            size = len(raw)
            while chunk := stream.read(SKIP_CHUNK):
                size += len(chunk)
            yield Parsed(location=location, size=size, problems=[too_big(location, "file", size)])
            return
    except GZIP_ERRORS as error:
        yield Parsed(location=location, size=0, problems=[damaged_gzip(location, error)])
        return
    parsed = Parsed(location=location, size=len(raw))
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


@contextmanager
def fewer_garbage_collections():
    """Collect garbage less often while importing.

    An import allocates millions of short-lived objects (decoded JSON, records, rows) that
    reference counting frees; the cyclic collector's frequent passes over them and over every
    long-lived object Django loaded cost about a tenth of an import's time for nothing.
    """
    thresholds = gc.get_threshold()
    gc.freeze()  # Django's own objects live for the whole process: never scan them again
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


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
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.TABLE} (source_id, location) VALUES "
                + ", ".join(["(%s, %s)"] * len(items))
                + " ON CONFLICT (source_id) DO NOTHING RETURNING source_id",
                [value for pair in items.items() for value in pair],
            )
            repeated = items.keys() - {source_id for (source_id,) in cursor.fetchall()}
            if not repeated:
                return {}
            placeholders = ", ".join(["%s"] * len(repeated))
            cursor.execute(
                f"SELECT source_id, location FROM {self.TABLE} "
                f"WHERE source_id IN ({placeholders})",
                list(repeated),
            )
            return dict(cursor.fetchall())


def duplicate_problem(location: str, source_id: str, first: str) -> Problem:
    return Problem(
        location,
        "payload.source_id",
        f"{source_id!r} already appeared at {first}, expected each source id once per file",
    )


@dataclass
class BatchResult:
    """What saving one batch did, returned from a writer thread to the main thread."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    aborted: list[Problem] | None = None  # --strict: the clashes that stopped the import


class Importer:
    """Reads sources, validates records, writes good ones in batches and reports the rest.

    The main thread reads and validates; with `workers` >= 1, batches are written by that many
    threads, each on its own database connection, so parsing overlaps with the database's work
    (0 writes on the main thread's connection). Each batch is still one transaction.
    """

    def __init__(
        self,
        *,
        batch_size: int = 500,
        dry_run: bool = False,
        strict: bool = False,
        workers: int = 0,
        on_problem: Callable[[Problem], None] = print,
        on_progress: Callable[[int, int], None] | None = None,
    ):
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.strict = strict
        # --strict promises that nothing after the first bad record is written: batches are then
        # written one after another on this thread, never ahead of the one being checked.
        self.workers = 0 if strict else workers
        self.on_problem = on_problem
        self.on_progress = on_progress
        self.report = ImportReport()
        self.bytes_read = 0
        self.in_flight: deque[Future] = deque()

    def run(self, sources: Iterable[tuple[str, BinaryIO, str]]) -> ImportReport:
        """Import every (name, binary stream, format) source, gzipped or not; return the counts."""
        started = time.monotonic()
        executor = ThreadPoolExecutor(self.workers) if self.workers > 0 else None
        with fewer_garbage_collections():
            try:
                for name, stream, file_format in sources:
                    self.import_file(name, stream, file_format, executor)
            finally:
                if executor is not None:
                    executor.shutdown(wait=True, cancel_futures=True)
                self.report.seconds = time.monotonic() - started
        return self.report

    def import_file(self, name: str, stream: BinaryIO, file_format: str, executor) -> None:
        seen = SeenSourceIds()
        batch: list[Parsed] = []
        for parsed in READERS[file_format](decompressed(stream, name), name):
            self.bytes_read += parsed.size
            if parsed.blank:
                continue
            batch.append(parsed)
            if len(batch) >= self.batch_size:
                self.write(batch, seen, executor)
                batch = []
        if batch:
            self.write(batch, seen, executor)
        while self.in_flight:
            self.collect(self.in_flight.popleft().result())

    def reject(self, problems: list[Problem]) -> None:
        """Count one rejected record and report its problems; stop here with --strict."""
        if self.strict:
            raise ImportAborted(problems)
        self.report.rejected += 1
        for problem in problems:
            self.on_problem(problem)

    def write(self, batch: list[Parsed], seen: SeenSourceIds, executor) -> None:
        """Check one batch in file order, then have its new and changed posts written.

        Bad records, duplicates and unchanged posts are dropped first (3 queries: seen source
        ids, and the stored digests).
        """
        first: dict[str, Parsed] = {}
        for parsed in batch:
            if parsed.source_id is not None:
                first.setdefault(parsed.source_id, parsed)
        earlier = seen.claim({source_id: p.location for source_id, p in first.items()})
        stored = stored_digests(first.keys() - earlier.keys())

        to_save: list[Parsed] = []
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
                    to_save.append(parsed)

        stored = {parsed.source_id: stored[parsed.source_id] for parsed in to_save
                  if parsed.source_id in stored}
        if executor is None:
            self.collect(self.save_batch(to_save, stored))
        else:
            # At most one batch per writer waits in line, so memory stays bounded.
            while len(self.in_flight) >= self.workers:
                self.collect(self.in_flight.popleft().result())
            self.in_flight.append(executor.submit(self.save_batch_in_thread, to_save, stored))
        if self.on_progress is not None:
            self.on_progress(self.report.processed, self.bytes_read)

    def collect(self, result: BatchResult) -> None:
        """Add a saved batch's counts to the report and report its problems (main thread)."""
        if result.aborted:
            raise ImportAborted(result.aborted)
        self.report.created += result.created
        self.report.updated += result.updated
        self.report.unchanged += result.unchanged
        for problem in result.problems:
            self.reject([problem])

    def save_batch_in_thread(self, items: list[Parsed], stored: dict[str, str]) -> BatchResult:
        try:
            return self.save_batch(items, stored)
        finally:
            connection.close()  # the thread's own connection, back to the pool

    def save_batch(self, items: list[Parsed], stored: dict[str, str]) -> BatchResult:
        """Save validated `items` in one transaction; if the database still refuses them (e.g.
        two posts swapping slugs), find the culprits by saving them one at a time."""
        result = BatchResult()
        try:
            self.save(items, stored, result)
        except IntegrityError:
            for parsed in items:
                try:
                    self.save([parsed], stored, result)
                except IntegrityError as error:
                    first_line = str(error).splitlines()[0]
                    result.problems.append(
                        Problem(parsed.location, "record", f"not saved: {first_line}")
                    )
        return result

    def save(self, items: list[Parsed], stored: dict[str, str], result: BatchResult) -> None:
        """Save the records of `items` in one transaction (rolled back on --dry-run).

        Records whose slug or reference belongs to another post are reported and left out (or,
        with --strict, stop the import); the rest are saved.
        """
        if not items:
            return
        records = [parsed.record for parsed in items]
        digests = {parsed.record.source_id: parsed.digest for parsed in items}
        try:
            with transaction.atomic():
                outcome = save_post_batch(records, digests, stored)
                if self.dry_run:
                    transaction.set_rollback(True)
        except IntegrityError:
            # Checked only when the database refused the batch: the common case pays nothing.
            clashes = find_clashes(records)
            if not clashes:
                raise
            problems = [
                Problem(parsed.location, *clashes[parsed.record.source_id])
                for parsed in items
                if parsed.record.source_id in clashes
            ]
            if self.strict:
                result.aborted = problems
                return
            result.problems += problems
            rest = [parsed for parsed in items if parsed.record.source_id not in clashes]
            self.save(rest, stored, result)
            return
        result.created += outcome.created
        result.updated += outcome.updated
        result.unchanged += outcome.unchanged


