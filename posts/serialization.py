"""The JSON Lines post format: PostRecord to and from one JSON object, with validation.

One object per line; the format is documented in docs/post-format.md and described by the JSON
Schema in posts/schemas/post.schema.json. No ORM in here.
"""

import json
import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from django.utils.text import slugify

from posts.records import EntityRecord, FigureRecord, PostRecord, SectionRecord

FORMAT_VERSION = 1

DIFFICULTIES = ("beginner", "intermediate", "advanced")
PUBLICATION_STATUSES = ("draft", "published")
PLACEMENTS = ("intro", "section", "checklist")
# Open vocabularies: the old site's revision statuses and entity types are sets learned from
# its content, so any other word is imported too (normalize_revision_status,
# normalize_entity_type). These are the values the code knows; only "reviewed" lets search
# engines index a post.
REVISION_STATUSES = ("draft", "in_review", "reviewed", "outdated")
TAG_KINDS = ("stack", "tool", "area", "problem", "language", "scenario", "other")

# Import limits. The most bytes one record may take before it is parsed (a JSON line without
# its newline, or a page-text file), and the most characters of each text field (by field path,
# list indexes left out). Where a column has a max_length the cap is that; the long texts' caps
# are far above real posts (the generator's longest paragraph is ~340 characters, its longest
# record ~9 kB) and keep one record from bloating an import's memory, its article page or every
# list page that shows its summary.
MAX_RECORD_BYTES = 1_048_576
MAX_LENGTHS = {
    "title": 300,
    "slug": 255,
    "intro": 20_000,
    "sections.heading": 300,
    "sections.paragraphs": 20_000,
    "checklist": 1_000,
    "final_notes": 20_000,
    "topic": 200,
    "summary": 2_000,
    "ai_outline.context": 300,
    "ai_outline.problem": 300,
    "ai_outline.stack": 300,
    "ai_outline.recommended_action": 300,
    "ai_brief": 5_000,
    "stack": 100,
    "tools": 100,
    "code_language": 50,
    "revision.version": 30,
    "reference": 64,
    "hash": 64,
    "entities.name": 100,
    "image_sources.source": 200,
    "image_sources.url": 1_000,
    "image_sources.caption": 500,
    "payload.source_id": 100,
    "payload.generator": 100,
    "payload.scenario": 200,
    "notes": 2_000,
}
# Vocabulary words longer than their column are cut to it rather than refused.
WORD_MAX_LENGTHS = {"revision.status": 30, "entities.type": 20}
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
WHITESPACE = re.compile(r"\s")
SMALLINT_MAX = 32_767
MISSING = object()  # a key absent from the object, unlike one that is null
INT_MAX = 2_147_483_647


class RecordInvalid(Exception):
    """A record broke the format; `errors` holds (field path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors


def format_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_to_dict(record: PostRecord) -> dict[str, Any]:
    """Return the JSON Lines object of `record`, keys in meta-box order."""
    return {
        "format_version": FORMAT_VERSION,
        "title": record.title,
        "slug": record.slug,
        "status": record.status,
        "published_at": format_datetime(record.published_at),
        "intro": record.intro,
        "sections": [
            {"heading": section.heading, "paragraphs": list(section.paragraphs)}
            for section in record.sections
        ],
        "checklist": list(record.checklist),
        "final_notes": record.final_notes,
        "topic": record.topic,
        "summary": record.summary,
        "ai_outline": {
            "context": record.outline_context,
            "problem": record.outline_problem,
            "stack": record.outline_stack,
            "recommended_action": record.outline_action,
        },
        "ai_brief": record.ai_brief,
        "stack": list(record.stack),
        "tools": list(record.tools),
        "code_language": record.code_language,
        "difficulty": record.difficulty,
        "reading_time": record.reading_time,
        "view_count": record.view_count,
        "score": {
            "quality": record.quality_score,
            "freshness": record.freshness_score,
            "depth": record.depth_score,
            "clarity": record.clarity_score,
        },
        "revision": {
            "status": record.revision_status,
            "version": record.revision_version,
            "last_reviewed": record.last_reviewed.isoformat() if record.last_reviewed else None,
        },
        "reference": record.reference,
        "hash": record.content_hash,
        "flags": {
            "ai_generated_style": record.ai_generated_style,
            "has_images": record.has_images,
            "image_heavy": record.image_heavy,
            "needs_human_review": record.needs_human_review,
        },
        "entities": [{"name": entity.name, "type": entity.type} for entity in record.entities],
        "image_sources": [
            {
                "source": figure.source,
                "url": figure.url,
                "caption": figure.caption,
                "placement": figure.placement,
                "section": figure.section_position,
            }
            for figure in record.figures
        ],
        "payload": {
            "source_id": record.source_id,
            "generator": record.generator,
            "paragraphs": record.paragraph_count,
            "scenario": record.scenario,
            "seed": record.seed,
        },
        "notes": list(record.notes),
    }


def dumps(data: dict[str, Any]) -> str:
    """Return `data` as one canonical JSON line (no newline): same data, same bytes."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Reader:
    """Pulls typed values out of one decoded JSON object, collecting every error."""

    def __init__(self):
        self.errors: list[tuple[str, str]] = []

    def fail(self, path: str, key: str, message: str):
        # The dotted path is built only here: the hot path of valid records never needs it.
        self.errors.append((join(path, key) or "record", message))

    def object(self, value: Any, path: str, keys: tuple[str, ...]) -> dict:
        if value is MISSING:
            return {}  # already reported by get()
        if not isinstance(value, dict):
            self.fail(path, "", f"got {type_name(value)}, expected an object")
            return {}
        unknown = [key for key in value if key not in keys]
        if unknown:
            self.fail(
                path, "",
                f"unknown field(s) {', '.join(sorted(unknown))}, expected only {', '.join(keys)}",
            )
        return value

    def get(self, obj: dict, key: str, path: str) -> Any:
        value = obj.get(key, MISSING)
        if value is MISSING:
            self.fail(path, key, "missing, expected a value")
        return value

    def text(self, obj, key, path="", max_length=None, required=False, check=None, expect=""):
        value = obj.get(key, MISSING)
        # Fast path: a valid value costs a few comparisons (imports call this ~35 times a post).
        if (
            type(value) is str
            and "\x00" not in value
            and (max_length is None or len(value) <= max_length)
            and (not required or value.strip())
            and (check is None or not value or check(value))
        ):
            return value
        if value is MISSING:
            self.fail(path, key, "missing, expected a value")
            return ""
        if not isinstance(value, str):
            self.fail(path, key, f"got {type_name(value)}, expected a string")
            return ""
        if "\x00" in value:
            self.fail(path, key, "contains a NUL character (\\u0000), expected plain text")
        if required and not value.strip():
            self.fail(path, key, "empty, expected a non-empty string")
        if max_length is not None and len(value) > max_length:
            self.fail(path, key, too_long(value, max_length))
        if check is not None and value and not check(value):
            self.fail(path, key, f"{value!r} is not valid, expected {expect}")
        return value

    def choice(self, obj, key, choices, path=""):
        value = self.get(obj, key, path)
        if value is MISSING:
            return choices[0]
        if value not in choices:
            self.fail(path, key, f"{value!r} is not allowed, expected one of {', '.join(choices)}")
            return choices[0]
        return value

    def word(self, obj, key, known, normalize, path=""):
        """Return a word of an open vocabulary: any text `normalize` leaves something of."""
        value = obj.get(key, MISSING)
        if type(value) is str and value in known:
            return value
        if value is MISSING:
            self.fail(path, key, "missing, expected a value")
            return known[0]
        if not isinstance(value, str):
            self.fail(path, key, f"got {type_name(value)}, expected a string")
            return known[0]
        if "\x00" in value:
            self.fail(path, key, "contains a NUL character (\\u0000), expected plain text")
            return known[0]
        normalized = normalize(value)
        if not normalized:
            what = f"{value!r} has no letter or digit (a-z, 0-9)" if value.strip() else "empty"
            self.fail(
                path, key,
                f"{what}, expected a word such as {', '.join(known)} (any other word is kept)",
            )
            return known[0]
        return normalized

    def integer(self, obj, key, path="", low=0, high=INT_MAX, nullable=False):
        value = obj.get(key, MISSING)
        if type(value) is int and low <= value <= high:
            return value
        if value is MISSING:
            self.fail(path, key, "missing, expected a value")
            return None if nullable else low
        if value is None:
            if not nullable:
                self.fail(path, key, f"got null, expected a whole number from {low} to {high}")
            return None if nullable else low
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, key, f"got {type_name(value)}, expected a whole number")
            return low
        if not low <= value <= high:
            self.fail(path, key, f"{value} is out of range, expected {low} to {high}")
            return low
        return value

    def boolean(self, obj, key, path=""):
        value = self.get(obj, key, path)
        if value is True or value is False:
            return value
        if value is not MISSING:
            self.fail(path, key, f"got {type_name(value)}, expected true or false")
        return False

    def strings(self, obj, key, path="", max_length=None):
        value = self.get(obj, key, path)
        if not isinstance(value, list):
            if value is not MISSING:
                self.fail(path, key, f"got {type_name(value)}, expected a list of strings")
            return ()
        limit = max_length or INT_MAX
        if all(
            type(item) is str and item.strip() and len(item) <= limit and "\x00" not in item
            for item in value
        ):
            return tuple(value)
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.fail(
                    path, f"{key}[{index}]", f"got {type_name(item)}, expected a non-empty string"
                )
            elif "\x00" in item:
                message = "contains a NUL character (\\u0000), expected plain text"
                self.fail(path, f"{key}[{index}]", message)
            elif len(item) > limit:
                self.fail(path, f"{key}[{index}]", too_long(item, limit))
        return ()

    def objects(self, obj, key, path=""):
        value = self.get(obj, key, path)
        if not isinstance(value, list):
            if value is not MISSING:
                self.fail(path, key, f"got {type_name(value)}, expected a list of objects")
            return []
        full = join(path, key)
        return [(f"{full}[{index}]", item) for index, item in enumerate(value)]

    def timestamp(self, obj, key, path="", required=False):
        value = self.get(obj, key, path)
        if value is MISSING:
            return None
        if value is None:
            if required:
                self.fail(path, key, "got null, expected a date-time like 2026-06-30T12:00:00Z")
            return None
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
            parsed = parsed.astimezone(UTC) if parsed and parsed.tzinfo else None
        except (ValueError, OverflowError):  # OverflowError: e.g. year 1 east of UTC
            parsed = None
        if parsed is None:
            self.fail(
                path, key,
                f"{value!r} is not a date-time with a time zone, "
                "expected ISO 8601 like 2026-06-30T12:00:00Z",
            )
        return parsed

    def day(self, obj, key, path=""):
        value = self.get(obj, key, path)
        if value is MISSING or value is None:
            return None
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(path, key, f"{value!r} is not a date, expected YYYY-MM-DD like 2026-06-30")
        return None


def is_http_url(value: str) -> bool:
    """Return whether `value` is an absolute http(s) URL with a host and no whitespace."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not WHITESPACE.search(
        value
    )


def normalize_revision_status(value: str) -> str:
    """Return a revision status as it is stored: lowercased, trimmed, each run of whitespace one
    space, cut to its column ("" if nothing is left); a known status written as its label, as
    pages show it ("In Review"), is that status (in_review)."""
    normalized = " ".join(value.lower().split())
    underscored = normalized.replace(" ", "_")
    if underscored in REVISION_STATUSES:
        return underscored
    return normalized[: WORD_MAX_LENGTHS["revision.status"]].rstrip()


def normalize_entity_type(value: str) -> str:
    """Return an entity type as its tag's kind is stored: lowercased, trimmed, each run of
    whitespace or hyphens one hyphen, other characters than a-z, 0-9 and _ dropped (accents
    folded first), cut to its column; "" if nothing is left.

    A kind starts its tag's URL slug ("<kind>-<name>", services.tag_slug), so it must be made
    of the characters a slug may hold.
    """
    return slugify(value)[: WORD_MAX_LENGTHS["entities.type"]].rstrip("-_")


def too_long(value: str, max_length: int) -> str:
    return f"{len(value):,} characters, expected at most {max_length:,}"


def join(path: str, key: str) -> str:
    """Return the dotted field path of `key` inside `path`."""
    if not key:
        return path
    return f"{path}.{key}" if path else key


def type_name(value: Any) -> str:
    return {
        type(None): "null", bool: "a boolean", int: "a number", float: "a number",
        str: "a string", list: "a list", dict: "an object",
    }.get(type(value), type(value).__name__)


TOP_KEYS = (
    "format_version", "title", "slug", "status", "published_at", "intro", "sections",
    "checklist", "final_notes", "topic", "summary", "ai_outline", "ai_brief", "stack", "tools",
    "code_language", "difficulty", "reading_time", "view_count", "score", "revision",
    "reference", "hash", "flags", "entities", "image_sources", "payload", "notes",
)


def record_from_dict(data: Any) -> PostRecord:
    """Return the PostRecord in `data` (one decoded JSON line); raise RecordInvalid if it breaks
    the format, naming every bad field."""
    cap = MAX_LENGTHS
    r = Reader()
    top = r.object(data, "", TOP_KEYS)
    if not top:
        raise RecordInvalid(r.errors or [("record", "empty, expected a post object")])
    version = top.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # not True, which == 1
        r.fail("", "format_version", f"got {version!r}, expected {FORMAT_VERSION}")

    sections = []
    for path, item in r.objects(top, "sections"):
        section = r.object(item, path, ("heading", "paragraphs"))
        sections.append(
            SectionRecord(
                heading=r.text(
                    section, "heading", path, max_length=cap["sections.heading"], required=True
                ),
                paragraphs=r.strings(
                    section, "paragraphs", path, max_length=cap["sections.paragraphs"]
                ),
            )
        )
    figures = []
    for path, item in r.objects(top, "image_sources"):
        figure = r.object(item, path, ("source", "url", "caption", "placement", "section"))
        placement = r.choice(figure, "placement", PLACEMENTS, path)
        section = r.integer(figure, "section", path, high=SMALLINT_MAX, nullable=True)
        if placement == "section" and (section is None or section >= len(sections)):
            r.fail(
                path,
                "section",
                f"got {section!r}, expected the index (0 to {len(sections) - 1}) of the section "
                "the figure follows",
            )
        elif placement != "section" and section is not None:
            r.fail(path, "section", f"got {section!r}, expected null unless placement is section")
        figures.append(
            FigureRecord(
                source=r.text(
                    figure, "source", path, max_length=cap["image_sources.source"], required=True
                ),
                url=r.text(
                    figure, "url", path, max_length=cap["image_sources.url"], required=True,
                    check=is_http_url, expect="an http:// or https:// URL",
                ),
                caption=r.text(
                    figure, "caption", path, max_length=cap["image_sources.caption"],
                    required=True,
                ),
                placement=placement,
                section_position=section,
            )
        )
    entities = []
    for path, item in r.objects(top, "entities"):
        entity = r.object(item, path, ("name", "type"))
        entities.append(
            EntityRecord(
                name=r.text(entity, "name", path, max_length=cap["entities.name"], required=True),
                type=r.word(entity, "type", TAG_KINDS, normalize_entity_type, path),
            )
        )
    outline = r.object(
        r.get(top, "ai_outline", ""), "ai_outline",
        ("context", "problem", "stack", "recommended_action"),
    )
    score = r.object(
        r.get(top, "score", ""), "score", ("quality", "freshness", "depth", "clarity")
    )
    revision = r.object(
        r.get(top, "revision", ""), "revision", ("status", "version", "last_reviewed")
    )
    flags = r.object(
        r.get(top, "flags", ""), "flags",
        ("ai_generated_style", "has_images", "image_heavy", "needs_human_review"),
    )
    payload = r.object(
        r.get(top, "payload", ""), "payload",
        ("source_id", "generator", "paragraphs", "scenario", "seed"),
    )
    status = r.choice(top, "status", PUBLICATION_STATUSES)
    record = PostRecord(
        source_id=r.text(
            payload, "source_id", "payload", max_length=cap["payload.source_id"], required=True
        ),
        title=r.text(top, "title", max_length=cap["title"], required=True),
        slug=r.text(
            top, "slug", max_length=cap["slug"], required=True, check=SLUG.fullmatch,
            expect="letters, digits, hyphens and underscores",
        ),
        status=status,
        published_at=r.timestamp(top, "published_at", required=status == "published"),
        intro=r.text(top, "intro", max_length=cap["intro"]),
        sections=tuple(sections),
        checklist=r.strings(top, "checklist", max_length=cap["checklist"]),
        final_notes=r.text(top, "final_notes", max_length=cap["final_notes"]),
        figures=tuple(figures),
        topic=r.text(top, "topic", max_length=cap["topic"]),
        summary=r.text(top, "summary", max_length=cap["summary"]),
        outline_context=r.text(
            outline, "context", "ai_outline", max_length=cap["ai_outline.context"]
        ),
        outline_problem=r.text(
            outline, "problem", "ai_outline", max_length=cap["ai_outline.problem"]
        ),
        outline_stack=r.text(outline, "stack", "ai_outline", max_length=cap["ai_outline.stack"]),
        outline_action=r.text(
            outline, "recommended_action", "ai_outline",
            max_length=cap["ai_outline.recommended_action"],
        ),
        ai_brief=r.text(top, "ai_brief", max_length=cap["ai_brief"]),
        stack=r.strings(top, "stack", max_length=cap["stack"]),
        tools=r.strings(top, "tools", max_length=cap["tools"]),
        code_language=r.text(top, "code_language", max_length=cap["code_language"]),
        difficulty=r.choice(top, "difficulty", DIFFICULTIES),
        reading_time=r.integer(top, "reading_time", high=SMALLINT_MAX),
        view_count=r.integer(top, "view_count"),
        quality_score=r.integer(score, "quality", "score", high=100),
        freshness_score=r.integer(score, "freshness", "score", high=100),
        depth_score=r.integer(score, "depth", "score", high=100),
        clarity_score=r.integer(score, "clarity", "score", high=100),
        revision_status=r.word(
            revision, "status", REVISION_STATUSES, normalize_revision_status, "revision"
        ),
        revision_version=r.text(
            revision, "version", "revision", max_length=cap["revision.version"], required=True
        ),
        last_reviewed=r.day(revision, "last_reviewed", "revision"),
        reference=r.text(top, "reference", max_length=cap["reference"], required=True),
        content_hash=r.text(top, "hash", max_length=cap["hash"]),
        ai_generated_style=r.boolean(flags, "ai_generated_style", "flags"),
        has_images=r.boolean(flags, "has_images", "flags"),
        image_heavy=r.boolean(flags, "image_heavy", "flags"),
        needs_human_review=r.boolean(flags, "needs_human_review", "flags"),
        entities=tuple(entities),
        notes=r.strings(top, "notes", max_length=cap["notes"]),
        generator=r.text(payload, "generator", "payload", max_length=cap["payload.generator"]),
        paragraph_count=r.integer(payload, "paragraphs", "payload", high=SMALLINT_MAX),
        scenario=r.text(payload, "scenario", "payload", max_length=cap["payload.scenario"]),
        seed=r.integer(payload, "seed", "payload", low=-(2**63), high=2**63 - 1, nullable=True),
    )
    if r.errors:
        raise RecordInvalid(r.errors)
    return record
