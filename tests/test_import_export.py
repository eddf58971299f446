import dataclasses
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from posts.exporting import export_records
from posts.generation import generate_records
from posts.importing import Importer
from posts.models import ImageSource, Post, PostTag, Section, Tag
from posts.pagetext import BYLINE
from posts.progress import Progress
from posts.serialization import dumps, record_to_dict
from tests.pagetext import page_text
from tests.test_generation import snapshot

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def jsonl(records) -> str:
    return "".join(dumps(record_to_dict(record)) + "\n" for record in records)


def generated(count=20, seed=11):
    return list(generate_records(count, seed))


def write(tmp_path, text, name="posts.jsonl"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_import(*args, **options):
    """Run import_posts; return (stdout, stderr, error message or None)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_posts", *map(str, args), stdout=out, stderr=err, **options)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), str(error)
    return out.getvalue(), err.getvalue(), None


def export_text() -> str:
    out = io.StringIO()
    call_command("export_posts", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def delete_everything():
    Post.objects.all().delete()
    Tag.objects.all().delete()


def test_export_import_export_gives_the_same_bytes(tmp_path):
    call_command("generate_posts", count=40, seed=4, stdout=io.StringIO())
    first = export_text()
    assert first.count("\n") == 40
    delete_everything()

    stdout, stderr, error = run_import(write(tmp_path, first))

    assert error is None, stderr
    assert "created 40, updated 0, unchanged 0, rejected 0" in stdout
    assert export_text() == first


def test_export_to_a_file(tmp_path):
    call_command("generate_posts", count=3, seed=4, stdout=io.StringIO())
    target = tmp_path / "out.jsonl"
    call_command("export_posts", output=str(target), stdout=io.StringIO(), stderr=io.StringIO())
    assert target.read_text(encoding="utf-8") == export_text()


def test_generate_output_imports_to_the_same_database_as_generating(tmp_path):
    target = tmp_path / "generated.jsonl"
    call_command("generate_posts", count=25, seed=6, output=str(target), stdout=io.StringIO())
    assert Post.objects.count() == 0
    run_import(target)
    imported = snapshot()
    delete_everything()

    call_command("generate_posts", count=25, seed=6, stdout=io.StringIO())

    assert snapshot() == imported


def test_reimporting_the_same_file_changes_nothing(tmp_path):
    path = write(tmp_path, jsonl(generated()))
    run_import(path)
    before = snapshot()

    stdout, _, error = run_import(path)

    assert error is None
    assert "created 0, updated 0, unchanged 20, rejected 0" in stdout
    assert snapshot() == before


def test_a_changed_record_updates_its_post_to_exactly_what_the_file_says(tmp_path):
    records = generated(3)
    run_import(write(tmp_path, jsonl(records)))
    changed = record_to_dict(records[1])
    changed["title"] = "a new title"
    changed["stack"] = ["rust cli tools"]
    changed["tools"] = []
    changed["entities"] = [{"name": "cli", "type": "area"}]
    changed["checklist"] = ["only this"]
    changed["notes"] = ["one note", "two notes"]
    changed["sections"] = [{"heading": "just one", "paragraphs": ["a.", "b."]}]
    changed["image_sources"] = [
        {"source": "unsplash", "url": "https://images.unsplash.com/photo-1", "caption": "c",
         "placement": "section", "section": 0}
    ]
    lines = jsonl(records).splitlines()
    lines[1] = dumps(changed)

    stdout, _, _ = run_import(write(tmp_path, "\n".join(lines) + "\n"))

    assert "created 0, updated 1, unchanged 2" in stdout
    post = Post.objects.get(source_id=records[1].source_id)
    assert post.title == "a new title"
    assert post.checklist == ["only this"]
    assert post.notes == ["one note", "two notes"]
    links = PostTag.objects.filter(post=post).order_by("role", "position")
    assert [(link.role, link.tag.name) for link in links.select_related("tag")] == [
        ("entity", "cli"),
        ("stack", "rust cli tools"),
    ]
    assert list(Section.objects.filter(post=post).values_list("heading", "body")) == [
        ("just one", "a.\n\nb.")
    ]
    figures = ImageSource.objects.filter(post=post)
    assert list(figures.values_list("placement", "section_position")) == [("section", 0)]
    # The other posts are untouched.
    delete_everything()
    run_import(write(tmp_path, "\n".join(lines) + "\n"))
    assert [record_to_dict(r) for r in export_records()] == [json.loads(line) for line in lines]


def good_line(number=0, **changes):
    data = record_to_dict(generated(1, seed=20 + number)[0])
    for path, value in changes.items():
        target = data
        *parents, key = path.split("__")
        for parent in parents:
            target = target[parent]
        target[key] = value
    return dumps(data)


BAD_RECORDS = [
    ("missing title", lambda: good_line().replace('"title":', '"headline":'),
     "title: missing, expected a value"),
    ("unknown field", lambda: good_line().replace('"title":', '"headline":'),
     "record: unknown field(s) headline, expected only format_version, title"),
    ("empty title", lambda: good_line(title=""), "title: empty, expected a non-empty string"),
    ("score out of range", lambda: good_line(score__quality=101),
     "score.quality: 101 is out of range, expected 0 to 100"),
    ("unknown difficulty", lambda: good_line(difficulty="expert"),
     "difficulty: 'expert' is not allowed, expected one of beginner, intermediate, advanced"),
    ("malformed date", lambda: good_line(published_at="2026-13-45"),
     "published_at: '2026-13-45' is not a date-time"),
    ("malformed review date", lambda: good_line(revision__last_reviewed="yesterday"),
     "revision.last_reviewed: 'yesterday' is not a date, expected YYYY-MM-DD"),
    ("non-http url", lambda: good_line(image_sources=[{
        "source": "x", "url": "javascript:alert(1)", "caption": "c", "placement": "intro",
        "section": None}]),
     "image_sources[0].url: 'javascript:alert(1)' is not valid, expected an http"),
    ("figure after a missing section", lambda: good_line(image_sources=[{
        "source": "x", "url": "https://x.example/1.jpg", "caption": "c", "placement": "section",
        "section": 99}]),
     "image_sources[0].section: got 99, expected the index"),
    ("wrong type", lambda: good_line(reading_time="14"),
     "reading_time: got a string, expected a whole number"),
    ("wrong type in list", lambda: good_line(tools=["git", 3]),
     "tools[1]: got a number, expected a non-empty string"),
    ("invalid json", lambda: good_line()[:-5], "line: invalid JSON"),
    ("not an object", lambda: "[1, 2]", "record: got a list, expected an object"),
    ("null", lambda: "null", "record: got null, expected an object"),
    ("NUL character", lambda: good_line(summary="a\u0000b"),
     "summary: contains a NUL character"),
    ("NUL character in a list", lambda: good_line(notes=["ok", "a\u0000b"]),
     "notes[1]: contains a NUL character"),
    ("slug with a newline", lambda: good_line(slug="abc\n"), "slug: 'abc\\n' is not valid"),
    ("over-long source id", lambda: good_line(payload__source_id="x" * 101),
     "payload.source_id: 101 characters, expected at most 100"),
    ("format version true", lambda: good_line(format_version=True),
     "format_version: got True, expected 1"),
    ("huge number", lambda: good_line()[:-1] + ',"view":' + "1" * 5000 + "}",
     "line: unreadable JSON"),
    ("deep nesting", lambda: "[" * 100_000, "line: unreadable JSON"),
    ("year 1 east of UTC", lambda: good_line(published_at="0001-01-01T00:00:00+01:00"),
     "published_at: '0001-01-01T00:00:00+01:00' is not a date-time"),
    ("lone surrogate", lambda: good_line().replace('"title":"', '"title":"\\ud800', 1),
     "line: holds an unpaired"),
    ("over-long field", lambda: good_line(title="x" * 301),
     "title: 301 characters, expected at most 300"),
    ("wrong format version", lambda: good_line(format_version=2),
     "format_version: got 2, expected 1"),
    ("over-long summary", lambda: good_line(summary="s" * 2001),
     "summary: 2,001 characters, expected at most 2,000"),
    ("over-long paragraph", lambda: good_line(sections=[
        {"heading": "h", "paragraphs": ["ok.", "p" * 20_001]}]),
     "sections[0].paragraphs[1]: 20,001 characters, expected at most 20,000"),
    ("blank revision status", lambda: good_line(revision__status="  "),
     "revision.status: empty, expected a word such as draft, in_review, reviewed, outdated"),
    ("entity type of no letters", lambda: good_line(entities=[{"name": "x", "type": "?!"}]),
     "entities[0].type: '?!' has no letter or digit (a-z, 0-9), expected a word such as stack"),
    ("revision status not a string", lambda: good_line(revision__status=3),
     "revision.status: got a number, expected a string"),
]


@pytest.mark.parametrize(
    ("case", "make_line", "message"), BAD_RECORDS, ids=[case[0] for case in BAD_RECORDS]
)
def test_each_bad_record_is_reported_and_the_good_ones_imported(
    tmp_path, case, make_line, message
):
    path = write(tmp_path, "\n".join([good_line(1), make_line(), good_line(2)]) + "\n")

    stdout, stderr, error = run_import(path)

    assert f"{path}:2: {message}" in stderr
    assert "Traceback" not in stderr
    assert "created 2, updated 0, unchanged 0, rejected 1" in stdout
    assert error is not None and "1 record(s) rejected" in error
    assert Post.objects.count() == 2


def test_export_matches_the_shipped_json_schema():
    call_command("generate_posts", count=30, seed=4, stdout=io.StringIO())
    validator = schema_validator()
    for line in export_text().splitlines():
        validator.validate(json.loads(line))


# The schema cannot express calendar validity ("2026-13-45"), an index into another list,
# text that PostgreSQL cannot store, or that the line is JSON at all; and the slug pattern's "$"
# means end of text in JSON Schema's ECMA-262 regexes but also "before a final newline" in the
# Python ones the jsonschema package runs.
SCHEMA_CHECKABLE = [
    case for case in BAD_RECORDS if case[0] not in {
        "malformed date", "malformed review date", "figure after a missing section",
        "invalid json", "NUL character", "NUL character in a list", "huge number",
        "deep nesting", "year 1 east of UTC", "lone surrogate", "slug with a newline",
        "entity type of no letters",
    }
]


@pytest.mark.parametrize(
    ("case", "make_line", "message"), SCHEMA_CHECKABLE, ids=[case[0] for case in SCHEMA_CHECKABLE]
)
def test_the_schema_rejects_what_the_importer_rejects(case, make_line, message):
    assert not schema_validator().is_valid(json.loads(make_line()))


def schema_validator():
    schema = json.loads((ROOT / "posts/schemas/post-v1.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("batch_size", [1, 500])
def test_duplicate_source_ids_in_one_file_are_rejected(tmp_path, batch_size):
    first = good_line(1)
    path = write(tmp_path, "\n".join([first, good_line(2), good_line(1, title="again")]) + "\n")

    stdout, stderr, _ = run_import(path, batch_size=batch_size)

    assert (
        f"{path}:3: payload.source_id: 'alphanode-2100000' already appeared at {path}:1"
    ) in stderr
    assert "created 2, updated 0, unchanged 0, rejected 1" in stdout
    assert Post.objects.get(source_id="alphanode-2100000").title != "again"


def test_a_slug_taken_by_another_post_is_rejected(tmp_path):
    run_import(write(tmp_path, good_line(1) + "\n"))
    taken = json.loads(good_line(1))["slug"]

    _, stderr, _ = run_import(write(tmp_path, good_line(2, slug=taken) + "\n", "b.jsonl"))

    assert f"slug: '{taken}' already belongs to post alphanode-2100000" in stderr
    assert Post.objects.count() == 1


def test_strict_stops_at_the_first_bad_record_before_its_batch_is_written(tmp_path):
    lines = [good_line(n) for n in range(1, 4)] + [good_line(9, difficulty="x"), good_line(5)]
    path = write(tmp_path, "\n".join(lines) + "\n")

    _, stderr, error = run_import(path, strict=True, batch_size=2)

    assert f"{path}:4: difficulty: 'x' is not allowed" in stderr
    assert "Stopped at the first bad record" in error
    # The first batch (lines 1-2) was written; line 3 shared its batch with the bad line 4.
    assert Post.objects.count() == 2


def test_dry_run_writes_nothing(tmp_path):
    stdout, _, error = run_import(write(tmp_path, jsonl(generated(5))), dry_run=True)
    assert error is None
    assert "Dry run, nothing written: created 5" in stdout
    assert Post.objects.count() == 0


def test_standard_input_is_read_with_a_dash(monkeypatch):
    text = "\n" + jsonl(generated(3)) + "  \n\n"  # blank lines are skipped, not rejected
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    stdout, _, error = run_import("-")
    assert error is None
    assert "created 3, updated 0, unchanged 0, rejected 0" in stdout


def test_a_missing_file_is_a_clear_error(tmp_path):
    _, _, error = run_import(tmp_path / "nope.jsonl")
    assert error == f"No such file: {tmp_path / 'nope.jsonl'}. Nothing was imported."


# Once per file: 2 temporary table of seen source ids (create, clear). Per batch: 1 seen
# source ids (insert; a second query reads where repeated ones were first seen), 1 stored
# digests, 2 savepoint and release of the batch transaction, 4 posts (create staging table,
# COPY into it, upsert from it, clear it), 3 tags
# (select ids; insert the missing ones and select theirs), 4 COPY of revisions, tag links,
# sections, figures, then the derived data (posts/derived.py): 2 the batch's counts (per tag,
# total), 3 similar lists (rank, clear, store), 2 search documents (the band starts locked,
# then the documents), 2 lock (deferred checks
# first), 2 move tag counts and the total, 2 enter other lists and trim them. For updated
# posts only, 2 what
# they counted for before, 1 UPDATE keeping reviewers' flags and 4 deletes of their old
# children. Clashing slugs are looked up
# only on a refusal.
QUERIES_CREATING = 2 + 1 + 1 + 2 + 4 + 3 + 4 + 2 + 3 + 2 + 2 + 2 + 2
QUERIES_UPDATING = QUERIES_CREATING + 2 + 1 + 4


@pytest.mark.parametrize("batch_size", [10, 500])
@pytest.mark.parametrize(
    ("existing", "queries"), [(False, QUERIES_CREATING), (True, QUERIES_UPDATING)],
    ids=["create", "update"],
)
def test_queries_per_batch_are_constant(
    django_assert_max_num_queries, batch_size, existing, queries
):
    records = generated(batch_size, seed=30)
    if existing:  # every record then differs from what is stored: a batch of updates
        Importer().run([("f", io.BytesIO(jsonl(records).encode()), "jsonl")])
        records = [dataclasses.replace(record, title="changed") for record in records]
    data = io.BytesIO(jsonl(records).encode())

    with django_assert_max_num_queries(queries):
        report = Importer(batch_size=batch_size).run([("f", data, "jsonl")])

    assert (report.created, report.updated) == ((0, batch_size) if existing else (batch_size, 0))


@pytest.mark.django_db(transaction=True)
def test_writer_threads_import_the_same_posts_as_one_writer(tmp_path, settings):
    settings.IMPORT_WORKERS = 3
    lines = jsonl(generated(60)).splitlines(keepends=True)
    path = write(tmp_path, "".join([*lines, lines[7]]))  # line 61 repeats line 8

    stdout, stderr, _ = run_import(path, batch_size=7)

    assert "created 60, updated 0, unchanged 0, rejected 1" in stdout
    assert f"{path}:61: payload.source_id:" in stderr
    assert export_text() == "".join(lines)
    assert run_import(path, batch_size=7)[0].startswith("created 0, updated 0, unchanged 60")


def wait_for_other_connections_to_close(timeout=30):
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                # Idle ones are this process's own pooled connections.
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError("the killed import's connections did not close")


@pytest.mark.django_db(transaction=True)
def test_an_import_killed_midway_leaves_whole_posts_and_a_rerun_completes_it(tmp_path):
    text = jsonl(generate_records(3000, 8))
    path = write(tmp_path, text)
    settings = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
        ),
        "DEBUG": "1",
        "DEBUG_TOOLBAR": "0",
    }
    command = [sys.executable, "manage.py", "import_posts", str(path), "--batch-size", "100"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while Post.objects.count() < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # A COMMIT the killed client had sent still completes on the server: wait for its
    # connections to go before counting.
    wait_for_other_connections_to_close()

    written = Post.objects.count()
    assert 0 < written < 3000, "the import was not interrupted midway"
    assert written % 100 == 0, "a batch was half written"
    expected = {json.loads(line)["payload"]["source_id"]: line for line in text.splitlines()}
    for record in export_records():  # every written post is whole: exactly its line
        assert dumps(record_to_dict(record)) == expected[record.source_id]

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    assert f"created {3000 - written}, updated 0, unchanged {written}" in rerun.stdout
    assert export_text() == text  # generated in source id order, as export writes


def article_text(client, source_id):
    """Return the page-text of a post's article page, up to (not including) Similar Posts."""
    html = client.get(Post.objects.get(source_id=source_id).get_absolute_url()).content.decode()
    text = page_text(html)
    # Not the line under the title: its date is the publication date, which page-text does
    # not carry (an imported page is dated by its last review), and the rest is the meta box's.
    return [line for line in text[: text.index("Similar Posts")].splitlines()
            if not BYLINE.fullmatch(line)]


def test_importing_a_page_text_file_renders_the_same_lines(client, tmp_path):
    records = [r for r in generate_records(30, 12) if r.status == "published" and r.last_reviewed]
    call_command("generate_posts", count=30, seed=12, stdout=io.StringIO())
    pages = {}
    for record in records[:4]:
        pages[record.source_id] = article_text(client, record.source_id)
        write(tmp_path, "\n".join(pages[record.source_id]) + "\n", f"{record.source_id}.txt")
    delete_everything()

    stdout, stderr, error = run_import(*sorted(tmp_path.glob("*.txt")))

    assert error is None, stderr
    assert "created 4, updated 0, unchanged 0, rejected 0" in stdout
    for source_id, lines in pages.items():
        assert article_text(client, source_id) == lines
    assert run_import(*sorted(tmp_path.glob("*.txt")))[0].startswith("created 0, updated 0, unch")


def test_a_bad_page_text_file_names_its_line(tmp_path):
    path = write(tmp_path, "| | |\n\nsome title\n\nan intro.\n", "old-page.txt")

    _, stderr, error = run_import(path)

    assert f"{path}:" in stderr and "alphanode post meta" in stderr
    assert "1 record(s) rejected" in error


def test_the_commands_work_on_sqlite(tmp_path):
    env = {
        "PATH": os.environ["PATH"], "DEBUG": "1", "DEBUG_TOOLBAR": "0",
        "SQLITE_PATH": str(tmp_path / "a.sqlite3"),
    }

    def manage(*args, database="a.sqlite3"):
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
            env={**env, "SQLITE_PATH": str(tmp_path / database)}, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    for database in ("a.sqlite3", "b.sqlite3"):
        manage("migrate", "--noinput", database=database)
    manage("generate_posts", "--count", "25", "--seed", "3")
    exported = manage("export_posts")
    (tmp_path / "posts.jsonl").write_text(exported)

    first = manage("import_posts", str(tmp_path / "posts.jsonl"), database="b.sqlite3")
    again = manage("import_posts", str(tmp_path / "posts.jsonl"), database="b.sqlite3")

    assert "created 25, updated 0, unchanged 0, rejected 0" in first
    assert "created 0, updated 0, unchanged 25, rejected 0" in again
    assert manage("export_posts", database="b.sqlite3") == exported


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    ("stream", "expected"), [(FakeTerminal(), "\r["), (io.StringIO(), "progress: ")]
)
def test_progress_draws_a_bar_on_a_terminal_and_log_lines_otherwise(stream, expected):
    progress = Progress(stream, total_bytes=1000)
    progress.show(250, 500, now=progress.started + 1)
    progress.finish()
    assert stream.getvalue().startswith(expected)
    assert "50%" in stream.getvalue() and "250 posts, 250/s" in stream.getvalue()


@pytest.mark.django_db(transaction=True)
def test_strict_writes_nothing_after_the_first_bad_record_even_with_writer_threads(
    tmp_path, settings
):
    settings.IMPORT_WORKERS = 2
    lines = jsonl(generated(200)).splitlines()
    lines[150] = good_line(7, difficulty="expert")
    path = write(tmp_path, "\n".join(lines) + "\n")

    _, _, error = run_import(path, strict=True, batch_size=10)

    assert "Before it: created 150," in error
    assert Post.objects.count() == 150


# Compressed inputs and directories ------------------------------------------------------


@pytest.mark.parametrize("name", ["posts.jsonl.gz", "posts.data"], ids=["suffix", "magic-bytes"])
def test_a_gzipped_file_is_read_as_the_file_it_holds(tmp_path, name):
    text = jsonl(generated(5))
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))

    stdout, stderr, error = run_import(path)

    assert error is None, stderr
    assert "created 5, updated 0, unchanged 0, rejected 0" in stdout
    assert export_text() == text


def test_gzipped_standard_input_is_read(monkeypatch):
    data = gzip.compress(jsonl(generated(3)).encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    stdout, _, error = run_import("-")

    assert error is None
    assert "created 3, updated 0, unchanged 0, rejected 0" in stdout


def test_a_gzipped_page_text_file_is_read_as_page_text(tmp_path):
    page = (ROOT / "tests/fixtures/page-example.txt").read_bytes()
    path = tmp_path / "old-page.txt.gz"
    path.write_bytes(gzip.compress(page))

    stdout, stderr, error = run_import(path)

    assert error is None, stderr
    assert "created 1, updated 0, unchanged 0, rejected 0" in stdout
    assert Post.objects.filter(source_id="legacy-004210").exists()


def truncated(data):
    return data[: len(data) // 2]


def flipped(data):
    """Return `data` with 64 bytes in its middle inverted."""
    middle = len(data) // 2
    damaged = bytes(byte ^ 0xFF for byte in data[middle : middle + 64])
    return data[:middle] + damaged + data[middle + 64 :]


def test_a_truncated_gzip_file_is_reported_after_the_records_before_it(tmp_path):
    path = tmp_path / "posts.jsonl.gz"
    path.write_bytes(truncated(gzip.compress(jsonl(generated(40)).encode())))

    _, stderr, error = run_import(path)

    assert "Traceback" not in stderr
    assert "1 record(s) rejected" in error
    read = Post.objects.count()
    assert 0 < read < 40
    assert stderr.strip().endswith(
        f"{path}:{read + 1}: file: damaged gzip data (Compressed file ended before the "
        "end-of-stream marker was reached), expected a whole gzip file; what came before was "
        "read, the rest of the file was not"
    )


def test_corrupt_gzip_data_is_reported_without_a_traceback(tmp_path):
    path = tmp_path / "posts.jsonl.gz"
    path.write_bytes(flipped(gzip.compress(jsonl(generated(40)).encode())))

    _, stderr, error = run_import(path)

    # Corrupt data may decompress to some garbage lines before the damage is noticed.
    assert f"{path}:" in stderr and ": file: damaged gzip data (" in stderr
    assert "Traceback" not in stderr
    assert "record(s) rejected" in error


def test_a_gz_file_that_is_not_gzip_says_so(tmp_path):
    path = write(tmp_path, jsonl(generated(2)), "posts.jsonl.gz")

    _, stderr, error = run_import(path)

    assert f"{path}:1: file: damaged gzip data (Not a gzipped file" in stderr
    assert "not valid UTF-8" not in stderr
    assert "1 record(s) rejected" in error


def test_a_directory_imports_its_files_in_name_order(tmp_path):
    directory = tmp_path / "in"
    (directory / "older").mkdir(parents=True)
    records = generated(6)
    first = dataclasses.replace(records[0], title="as file a says")
    last = dataclasses.replace(records[0], title="as file b says")
    (directory / "a.jsonl.gz").write_bytes(gzip.compress(jsonl([first, *records[1:3]]).encode()))
    write(directory, jsonl([last, *records[3:]]), "b.jsonl")
    write(directory, (ROOT / "tests/fixtures/page-example.txt").read_text(), "c.txt")
    write(directory, "not a post", "README.md")
    write(directory / "older", "not read either", "d.jsonl")

    stdout, stderr, error = run_import(directory)

    assert error is None, stderr
    assert "created 7, updated 1, unchanged 0, rejected 0" in stdout
    assert Post.objects.get(source_id=records[0].source_id).title == "as file b says"
    assert Post.objects.filter(source_id="legacy-004210").exists()


def test_a_directory_with_nothing_to_import_says_so(tmp_path):
    write(tmp_path, "notes", "README.md")

    _, _, error = run_import(tmp_path)

    assert error == (
        f"{tmp_path} is a directory with no files to import in it (expected *.jsonl, "
        "*.jsonl.gz, *.txt, *.txt.gz, *.text, *.text.gz). Nothing was imported."
    )


# Open vocabularies ------------------------------------------------------------------------


def published_line(number=0, **changes):
    return good_line(number, status="published", published_at="2026-01-01T00:00:00Z",
                     flags__needs_human_review=False, **changes)


def test_unknown_revision_statuses_and_entity_types_are_imported_and_shown(
    client, admin_user, tmp_path
):
    line = published_line(
        1, revision__status="  Awaiting   Legal Review ",
        entities=[{"name": "pgvector", "type": " Vector  Store"}, {"name": "orm", "type": "stack"}],
    )

    _, stderr, error = run_import(write(tmp_path, line + "\n"))

    assert error is None, stderr
    post = Post.objects.select_related("revision").get()
    assert post.revision.status == "awaiting legal review"
    entities = {(tag.name, tag.kind) for tag in Tag.objects.filter(post_links__role="entity")}
    assert entities == {("pgvector", "vector-store"), ("orm", "stack")}
    response = client.get(post.get_absolute_url())
    lines = page_text(response.content.decode()).splitlines()
    assert "  • status: awaiting legal review" in lines
    assert "    • type: vector-store" in lines
    assert response.headers["X-Robots-Tag"] == "noindex"  # only "reviewed" is indexable
    tag = Tag.objects.get(kind="vector-store")
    assert client.get(tag.get_absolute_url()).status_code == 200
    assert client.get(reverse("posts:tags")).status_code == 200
    assert tag.get_absolute_url() in client.get(reverse("sitemap_tags")).content.decode()
    client.force_login(admin_user)
    assert "awaiting legal review" in client.get(reverse("admin:posts_post_changelist")).text
    assert client.get(reverse("admin:posts_tag_change", args=[tag.pk])).status_code == 200

    exported = export_text()
    delete_everything()
    run_import(write(tmp_path, exported, "exported.jsonl"))
    assert export_text() == exported


@pytest.mark.parametrize(
    ("written", "stored", "indexable"),
    [
        ("reviewed", "reviewed", True),
        (" Reviewed ", "reviewed", True),
        ("In  Review", "in_review", False),
        ("outdated", "outdated", False),
        ("approved", "approved", False),
        ("x" * 40, "x" * 30, False),
    ],
)
def test_known_revision_statuses_keep_their_meaning(tmp_path, written, stored, indexable):
    run_import(write(tmp_path, published_line(2, revision__status=written) + "\n"))

    post = Post.objects.select_related("revision").get()

    assert post.revision.status == stored
    assert Post.objects.indexable().filter(pk=post.pk).exists() is indexable
    assert (post.noindex_reasons() == []) is indexable


@pytest.mark.parametrize(
    ("written", "stored"),
    [("Tool", "tool"), ("Time  Window", "time-window"), ("Données", "donnees"),
     ("c++ library", "c-library"), ("y" * 30, "y" * 20)],
)
def test_entity_types_are_stored_as_tag_kinds(tmp_path, written, stored):
    line = published_line(3, entities=[{"name": "thing", "type": written}])

    run_import(write(tmp_path, line + "\n"))

    assert Tag.objects.get(name="thing").kind == stored


def test_an_old_site_page_with_an_unknown_revision_status_is_imported(client, tmp_path):
    page = (ROOT / "tests/fixtures/page-example.txt").read_text()
    assert "• status: in review" in page and "• type: scenario" in page
    page = page.replace("• status: in review", "• status: Superseded")
    page = page.replace("• type: scenario", "• type: Time Window")
    path = write(tmp_path, page, "old-page.txt")

    stdout, stderr, error = run_import(path)

    assert error is None, stderr
    assert "created 1, updated 0, unchanged 0, rejected 0" in stdout
    post = Post.objects.select_related("revision").get(source_id="legacy-004210")
    assert post.revision.status == "superseded"
    assert Tag.objects.filter(kind="time-window", name="during a traffic spike").exists()
    # Its page, read back as page-text, imports to the same post.
    lines = article_text(client, "legacy-004210")
    assert "  • status: superseded" in lines
    write(tmp_path, "\n".join(lines) + "\n", "old-page.txt")
    assert run_import(path)[0].startswith("created 0, updated 0, unchanged 1")
