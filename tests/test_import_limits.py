"""Import limits: every text field has a cap, a record has a size limit, and a record over one
is refused with a FILE:LINE: field: message while the others are imported."""

import copy
import io
import tracemalloc
from pathlib import Path

import pytest
from django.core.management import call_command

from posts.generation import generate_records
from posts.importing import read_jsonl
from posts.models import ImageSource, Post, Revision, Section, Tag
from posts.serialization import (
    MAX_LENGTHS,
    MAX_RECORD_BYTES,
    WORD_MAX_LENGTHS,
    dumps,
    record_to_dict,
)
from tests.test_import_export import article_text, run_import, schema_validator, write

pytestmark = pytest.mark.django_db

# What a field path of MAX_LENGTHS names in a record: the first item of each list on the way.
LISTS = {"sections", "sections.paragraphs", "checklist", "stack", "tools", "entities",
         "image_sources", "notes"}
# The column each capped field is stored in, where the column has a length.
COLUMNS = {
    "title": (Post, "title"), "slug": (Post, "slug"), "sections.heading": (Section, "heading"),
    "topic": (Post, "topic"), "ai_outline.context": (Post, "outline_context"),
    "ai_outline.problem": (Post, "outline_problem"), "ai_outline.stack": (Post, "outline_stack"),
    "ai_outline.recommended_action": (Post, "outline_action"), "stack": (Tag, "name"),
    "tools": (Tag, "name"), "code_language": (Post, "code_language"),
    "revision.version": (Revision, "version"), "reference": (Post, "reference"),
    "hash": (Post, "content_hash"), "entities.name": (Tag, "name"),
    "image_sources.source": (ImageSource, "source"), "image_sources.url": (ImageSource, "url"),
    "image_sources.caption": (ImageSource, "caption"), "payload.source_id": (Post, "source_id"),
    "payload.generator": (Post, "generator"), "payload.scenario": (Post, "scenario"),
}


def full_records(count):
    """Return `count` generated records as dicts, each with every list non-empty."""
    return copy.deepcopy(FULL_RECORDS[:count])


FULL_RECORDS = [
    data for data in map(record_to_dict, generate_records(200, 41))
    if all(data[name] for name in ("checklist", "stack", "tools", "entities", "image_sources",
                                   "notes"))
][:3]


def set_field(data, field_path, value):
    """Set the field at `field_path` (its first item, in lists); return the path a message names."""
    *parents, key = field_path.split(".")
    target, named, walked = data, [], []
    for part in parents:
        walked.append(part)
        target = target[part]
        named.append(part)
        if ".".join(walked) in LISTS:
            target = target[0]
            named[-1] += "[0]"
    if field_path in LISTS:
        target[key][0] = value
        return ".".join([*named, f"{key}[0]"])
    target[key] = value
    return ".".join([*named, key])


def text_of_length(field_path, length):
    """Return a valid value of `field_path` that is `length` characters long."""
    if field_path == "image_sources.url":
        prefix = "https://images.example/"
        return prefix + "a" * (length - len(prefix))
    return "a" * length


def test_every_text_field_has_a_cap_matching_its_column():
    text_fields = {
        "title", "slug", "intro", "final_notes", "topic", "summary", "ai_brief",
        "code_language", "reference", "hash", "checklist", "stack", "tools", "notes",
    }
    # Every string the format has, by field path: the JSON Schema's, which export checks.
    schema = schema_validator().schema
    strings = set()

    def walk(node, path):
        kind = node.get("type")
        if node.get("items"):
            walk(node["items"], path)
        elif kind == "object":
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}" if path else key)
        elif kind == "string":
            strings.add(path)

    walk(schema, "")

    assert text_fields <= strings
    assert strings == MAX_LENGTHS.keys() | WORD_MAX_LENGTHS.keys()
    for field_path, (model, name) in COLUMNS.items():
        assert MAX_LENGTHS[field_path] == model._meta.get_field(name).max_length, field_path
    assert WORD_MAX_LENGTHS["revision.status"] == Revision._meta.get_field("status").max_length
    assert WORD_MAX_LENGTHS["entities.type"] == Tag._meta.get_field("kind").max_length


def test_the_schema_states_each_cap():
    properties = schema_validator().schema["properties"]
    for field_path, cap in MAX_LENGTHS.items():
        node = {"properties": properties}
        for part in field_path.split("."):
            node = node["properties"][part]
            node = node.get("items", node)
        assert node["maxLength"] == cap, field_path


@pytest.mark.parametrize("field_path", list(MAX_LENGTHS))
def test_a_field_over_its_cap_is_refused_and_one_at_it_imported(tmp_path, field_path):
    cap = MAX_LENGTHS[field_path]
    at_cap, over, other = full_records(3)
    set_field(at_cap, field_path, text_of_length(field_path, cap))
    named = set_field(over, field_path, text_of_length(field_path, cap + 1))
    path = write(tmp_path, "\n".join(dumps(data) for data in (at_cap, over, other)) + "\n")

    stdout, stderr, error = run_import(path)

    assert f"{path}:2: {named}: {cap + 1:,} characters, expected at most {cap:,}" in stderr
    assert "created 2, updated 0, unchanged 0, rejected 1" in stdout, stderr
    assert "1 record(s) rejected" in error
    assert set(Post.objects.values_list("source_id", flat=True)) == {
        at_cap["payload"]["source_id"], other["payload"]["source_id"]
    }


# What was accepted before there were limits: a 50 MB intro, a 10 MB summary. Each makes the
# record larger than a record may be, which is checked first, before the line is parsed.
@pytest.mark.parametrize(("field", "length"), [("intro", 50 << 20), ("summary", 10 << 20)])
def test_the_oversized_texts_once_accepted_are_refused(tmp_path, field, length):
    first, huge, last = full_records(3)
    huge[field] = "s" * length
    size = len(dumps(huge).encode())
    path = write(tmp_path, "\n".join(dumps(data) for data in (first, huge, last)) + "\n")

    stdout, stderr, _ = run_import(path)

    assert f"{path}:2: line: {size:,} bytes, expected at most 1,048,576" in stderr
    assert "created 2, updated 0, unchanged 0, rejected 1" in stdout
    assert not Post.objects.filter(source_id=huge["payload"]["source_id"]).exists()


def big_line_file(tmp_path, intro_bytes, name="posts.jsonl"):
    """Write good record, a record whose intro is `intro_bytes` long, good record."""
    first, big, last = full_records(3)
    big["intro"] = "i" * intro_bytes
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as out:
        for data in (first, big, last):
            out.write(dumps(data) + "\n")
    return path, len(dumps(big).encode())


def test_a_line_over_the_record_size_limit_is_refused_unparsed(tmp_path):
    path, size = big_line_file(tmp_path, 50 * 1024 * 1024)

    tracemalloc.start()
    try:
        stdout, stderr, _ = run_import(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (
        f"{path}:2: line: {size:,} bytes, expected at most {MAX_RECORD_BYTES:,} "
        "(a record's size limit); skipped unread"
    ) in stderr
    assert "created 2, updated 0, unchanged 0, rejected 1" in stdout
    # Reading the whole line alone would take 50 MB, decoding it several times that.
    assert peak < 8 * 1024 * 1024, f"the import peaked at {peak:,} bytes"


@pytest.mark.parametrize("newline", [True, False], ids=["newline", "at-the-end"])
def test_reading_lines_holds_at_most_the_limit(tmp_path, newline):
    first, last = (dumps(data).encode() for data in full_records(2))
    path = tmp_path / "posts.jsonl"
    long_line = b"x" * (8 * MAX_RECORD_BYTES + 5)
    lines = [first, b"y" * MAX_RECORD_BYTES, long_line, last] if newline else [first, long_line]
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline else b""))

    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            parsed = list(read_jsonl(stream, "f"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    problems = [[str(problem) for problem in p.problems] for p in parsed]
    too_big = (f"f:{2 + newline}: line: {len(long_line):,} bytes, expected at most "
               f"{MAX_RECORD_BYTES:,} (a record's size limit); skipped unread")
    if newline:
        # A line exactly at the limit is read (and is not JSON); the next one is not.
        assert problems[0] == [] and problems[3] == []
        assert problems[1][0].startswith("f:2: line: invalid JSON")
        assert problems[2] == [too_big]
        assert sum(p.size for p in parsed) == path.stat().st_size - 1  # one newline not counted
    else:
        assert problems == [[], [too_big]]
    # A few times the limit (a line, its decoded text, the reader's buffers); reading the long
    # line whole would take 8 MB.
    assert peak < 4 * MAX_RECORD_BYTES


def page_of(tmp_path, intro, name="old-page.txt"):
    """Write the example page with another intro; return its path and the intro's line."""
    example = (Path(__file__).parent / "fixtures" / "page-example.txt").read_text()
    old_intro = example.splitlines()[4]
    path = tmp_path / name
    path.write_text(example.replace(old_intro, intro), encoding="utf-8")
    return path


def test_a_page_text_field_over_its_cap_names_its_line(tmp_path):
    path = page_of(tmp_path, "a" * 20_000 + ".")

    _, stderr, error = run_import(path)

    assert f"{path}:5: intro: 20,001 characters, expected at most 20,000" in stderr
    assert "1 record(s) rejected" in error


def test_a_page_text_file_over_the_record_size_limit_is_refused_unread(tmp_path):
    big = page_of(tmp_path, "x." * MAX_RECORD_BYTES, "big.txt")
    fine = page_of(tmp_path, "a short intro.", "fine.txt")

    stdout, stderr, _ = run_import(big, fine)

    size = big.stat().st_size
    assert (
        f"{big}:1: file: {size:,} bytes, expected at most {MAX_RECORD_BYTES:,} "
        "(a record's size limit); skipped unread"
    ) in stderr
    assert "created 1, updated 0, unchanged 0, rejected 1" in stdout


def test_content_at_the_caps_renders(client, tmp_path):
    (data,) = full_records(1)
    data["status"], data["published_at"] = "published", "2026-01-01T00:00:00Z"
    data["intro"] = "i" * MAX_LENGTHS["intro"]
    data["summary"] = "s" * MAX_LENGTHS["summary"]
    run_import(write(tmp_path, dumps(data) + "\n"))

    lines = article_text(client, data["payload"]["source_id"])

    assert data["intro"] in lines
    assert f"summary{data['summary']}" in lines
    out = io.StringIO()
    call_command("export_posts", stdout=out, stderr=io.StringIO())
    assert out.getvalue() == dumps(data) + "\n"
