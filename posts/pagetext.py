"""Page-text: the visible text of an article page, turned into one JSON Lines post object.

A page shows, one block per line: an optional breadcrumb ("home | stack | title"), the title, the
intro, sections (a heading line, then paragraph lines), "implementation checklist" and its
bullets, "final notes" and its paragraphs, figures (the image's alt text, then
"<caption>. image source: <source>") after any of these, then "alphanode post meta" and the meta
box ("label" + value, or "label" over bullet lines). Everything from "Similar Posts" on is
ignored. Blank lines and indentation carry no meaning.

No ORM in here: the result goes through posts.serialization.record_from_dict like any other
JSON Lines object.
"""

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from posts.serialization import FORMAT_VERSION, normalize_revision_status

BULLET = "•"
SENTENCE_END = (".", "!", "?", ":", ";")
FIGURE_SEPARATOR = ". image source: "
CHECKLIST_HEADING = "implementation checklist"
FINAL_NOTES_HEADING = "final notes"
META_HEADING = "alphanode post meta"
END_HEADING = "similar posts"
SLUG_MAX_LENGTH = 200
# How the page shows a missing review date and a missing seed.
NEVER = ("never", "")
TRUE_VALUES = ("1", "true")
FALSE_VALUES = ("0", "false")

# Meta box labels followed by one line of text, and the field each fills.
TEXT_LABELS = {
    "topic": "topic",
    "summary": "summary",
    "ai brief": "ai_brief",
    "code language": "code_language",
    "difficulty": "difficulty",
    "reading time": "reading_time",
    "view count": "view_count",
    "reference": "reference",
    "hash": "hash",
}
# Meta box labels followed by bullet lines, and the field each fills.
LIST_LABELS = {
    "ai outline": "ai_outline",
    "stack": "stack",
    "tools": "tools",
    "score": "score",
    "revision": "revision",
    "flags": "flags",
    "checklist": "checklist",
    "entities": "entities",
    "image sources": "image_sources",
    "payload": "payload",
    "notes": "notes",
}
FIELDS = {**TEXT_LABELS, **LIST_LABELS}
# Longest first: the box has no separator between label and value ("reading time14").
LABELS = sorted(FIELDS, key=len, reverse=True)

# "key: value" bullets under a list label, and the sub-field each fills.
OUTLINE_KEYS = {
    "context": "context",
    "problem": "problem",
    "stack": "stack",
    "recommended action": "recommended_action",
}
SCORE_KEYS = {
    "quality": "quality",
    "freshness": "freshness",
    "depth": "depth",
    "clarity": "clarity",
}
REVISION_KEYS = {"status": "status", "version": "version", "last reviewed": "last_reviewed"}
FLAG_KEYS = {
    "ai generated style": "ai_generated_style",
    "has images": "has_images",
    "image heavy": "image_heavy",
    "needs human review": "needs_human_review",
}
PAYLOAD_KEYS = {
    "source id": "source_id",
    "generator": "generator",
    "paragraphs": "paragraphs",
    "scenario": "scenario",
    "seed": "seed",
}
# Repeated groups: the first key of each starts a new item.
ENTITY_KEYS = {"name": "name", "type": "type"}
IMAGE_KEYS = {"source": "source", "url": "url", "caption": "caption"}


class PageTextError(Exception):
    """A page's text broke the page structure at `line` (1-based) in `field`."""

    def __init__(self, line: int, field: str, message: str):
        super().__init__(f"line {line}: {field}: {message}")
        self.line = line
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, counting blank lines
    text: str  # stripped, never empty


@dataclass
class Figure:
    caption: str
    source: str
    placement: str
    section: int | None
    number: int


@dataclass
class MetaEntry:
    label: str
    number: int  # the line holding the value, or the label for a list
    value: str
    items: list[Line]


def parse_page_text(text: str) -> tuple[dict, dict[str, int]]:
    """Return the JSON Lines object for one page's visible text, and the line of each field."""
    lines = visible_lines(text)
    if not lines:
        raise PageTextError(1, "title", "the page is empty, expected a title line")
    meta_index = next(
        (i for i, line in enumerate(lines) if line.text.casefold() == META_HEADING), None
    )
    if meta_index is None:
        raise PageTextError(
            lines[-1].number, "meta",
            f"no '{META_HEADING}' line, expected it after the final notes, before the meta box",
        )
    where: dict[str, int] = {}
    body, figures = parse_body(lines[:meta_index], lines[meta_index], where)
    meta = parse_meta(lines[meta_index + 1 :], lines[meta_index], where)
    return build_object(body, figures, meta, where), where


def visible_lines(text: str) -> list[Line]:
    """Return the non-blank, stripped lines of `text` before "Similar Posts"."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.casefold() == END_HEADING:
            break
        if stripped:
            lines.append(Line(number, stripped))
    return lines


# The body: title, intro, sections, checklist, final notes and figures.


def parse_body(
    lines: list[Line], meta_heading: Line, where: dict[str, int]
) -> tuple[dict[str, Any], list[Figure]]:
    """Return the body's fields and its figures, in reading order."""
    title, intro, rest = read_title_and_intro(lines, meta_heading, where)
    sections: list[dict[str, Any]] = []
    checklist: list[str] = []
    final_notes: list[str] = []
    figures: list[Figure] = []
    block = "intro"
    index = 0
    while index < len(rest):
        line = rest[index]
        if is_figure(rest, index):
            figures.append(read_figure(rest, index, block, len(sections) - 1))
            index += 2
            continue
        index += 1
        folded = line.text.casefold()
        if folded == CHECKLIST_HEADING:
            block = "checklist"
            where["checklist"] = line.number
        elif folded == FINAL_NOTES_HEADING:
            block = "final"
            where["final_notes"] = line.number
        elif block == "checklist":
            where[f"checklist[{len(checklist)}]"] = line.number
            checklist.append(unbullet(line.text))
        elif block == "final":
            final_notes.append(line.text)
        elif is_heading(line.text):
            block = "section"
            path = f"sections[{len(sections)}]"
            where.setdefault("sections", line.number)
            where[path] = where[f"{path}.heading"] = where[f"{path}.paragraphs"] = line.number
            sections.append({"heading": line.text, "paragraphs": []})
        elif block == "section":
            paragraphs = sections[-1]["paragraphs"]
            where[f"sections[{len(sections) - 1}].paragraphs[{len(paragraphs)}]"] = line.number
            paragraphs.append(line.text)
        else:
            raise PageTextError(
                line.number, "intro",
                "a second paragraph before the first section heading, expected one intro line "
                "followed by figures or a heading (a line not ending in . ! ? : ;)",
            )
    where.setdefault("sections", where["intro"])
    where.setdefault("final_notes", meta_heading.number)
    body = {
        "title": title,
        "intro": intro,
        "sections": sections,
        "checklist": checklist,
        "final_notes": "\n\n".join(final_notes),
    }
    return body, figures


# The line under an article's title on this site (templates/posts/post_detail.html), e.g.
# "2026-03-01 · 14 min read · beginner · python services": dates and the rest repeat the meta
# box, so a page of ours read back skips it. Old-site pages have no such line.
BYLINE = re.compile(r"(?:\d{4}-\d{2}-\d{2}|draft|scheduled) · \d+ min read(?: · .*)?")


def read_title_and_intro(
    lines: list[Line], meta_heading: Line, where: dict[str, int]
) -> tuple[str, str, list[Line]]:
    """Return the title, the intro ("" when the page has none) and the lines after them."""
    if lines and "|" in lines[0].text:
        lines = lines[1:]  # the breadcrumb repeats the title and the first stack
    if not lines:
        raise PageTextError(
            meta_heading.number, "title", f"missing, expected a title line before '{META_HEADING}'"
        )
    title, rest = lines[0], lines[1:]
    if rest and BYLINE.fullmatch(rest[0].text):
        rest = rest[1:]  # our own pages' line under the title: what the meta box says again
    where["title"] = where["intro"] = title.number
    if not rest or is_figure(rest, 0) or is_fixed_heading(rest[0].text):
        return title.text, "", rest
    where["intro"] = rest[0].number
    return title.text, rest[0].text, rest[1:]


def is_figure(lines: list[Line], index: int) -> bool:
    """Return whether lines[index] is an image's alt text followed by its figure caption."""
    return index + 1 < len(lines) and lines[index + 1].text.startswith(
        lines[index].text + FIGURE_SEPARATOR
    )


def read_figure(lines: list[Line], index: int, block: str, section: int) -> Figure:
    """Return the figure at lines[index], placed after `block`."""
    caption = lines[index].text
    source = lines[index + 1].text.removeprefix(caption + FIGURE_SEPARATOR)
    number = lines[index].number
    if block == "final":
        # Our own page never shows one there, and the format has no such placement.
        raise PageTextError(
            number, "image_sources",
            f"figure {caption!r} follows the final notes, expected figures only after the "
            "intro, a section or the checklist",
        )
    return Figure(
        caption=caption,
        source=source,
        placement=block,
        section=section if block == "section" else None,
        number=number,
    )


def is_fixed_heading(text: str) -> bool:
    return text.casefold() in (CHECKLIST_HEADING, FINAL_NOTES_HEADING)


def is_heading(text: str) -> bool:
    """Return whether a body line is a section heading: headings have no closing punctuation."""
    return not text.endswith(SENTENCE_END)


def is_bullet(text: str) -> bool:
    return text.startswith(BULLET)


def unbullet(text: str) -> str:
    return text.removeprefix(BULLET).strip()


# The meta box.


def parse_meta(lines: list[Line], heading: Line, where: dict[str, int]) -> dict[str, Any]:
    """Return the meta box's values by field, each converted to its JSON type."""
    entries = meta_entries(lines)
    last = lines[-1].number if lines else heading.number
    for label in LABELS:
        if label not in entries:
            raise PageTextError(
                last, FIELDS[label],
                f"missing from the meta box, expected a line starting with '{label}'",
            )
    meta: dict[str, Any] = {}
    for label, field in TEXT_LABELS.items():
        where[field] = entries[label].number
        meta[field] = entries[label].value
    for label, field in LIST_LABELS.items():
        where[field] = entries[label].number
    for field in ("reading_time", "view_count"):
        meta[field] = to_int(meta[field], field, where)
    for field in ("stack", "tools", "checklist", "notes"):
        meta[field] = strings(entries[field].items, field, where)
    meta["ai_outline"] = keyed(entries["ai outline"], OUTLINE_KEYS, "ai_outline", where)
    meta["score"] = {
        key: to_int(value, f"score.{key}", where)
        for key, value in keyed(entries["score"], SCORE_KEYS, "score", where).items()
    }
    meta["flags"] = {
        key: to_bool(value, f"flags.{key}", where)
        for key, value in keyed(entries["flags"], FLAG_KEYS, "flags", where).items()
    }
    meta["revision"] = read_revision(entries["revision"], where)
    meta["payload"] = read_payload(entries["payload"], where)
    meta["entities"] = grouped(entries["entities"], ENTITY_KEYS, "entities", where)
    meta["image_sources"] = grouped(
        entries["image sources"], IMAGE_KEYS, "image_sources", where
    )
    return meta


def meta_entries(lines: list[Line]) -> dict[str, MetaEntry]:
    """Return the meta box's entries by label, each with its value or its bullet lines."""
    entries: dict[str, MetaEntry] = {}
    entry = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if is_bullet(line.text):
            if entry is None or entry.label not in LIST_LABELS:
                raise PageTextError(
                    line.number, field_of(entry),
                    f"unexpected bullet {line.text!r}, expected bullets only under a list label "
                    f"({', '.join(LIST_LABELS)})",
                )
            entry.items.append(Line(line.number, unbullet(line.text)))
            continue
        label = find_label(line.text)
        if label is None:
            raise PageTextError(
                line.number, "meta",
                f"unknown meta label in {line.text!r}, expected a line starting with one of "
                f"{', '.join(LABELS)}",
            )
        if label in entries:
            raise PageTextError(
                line.number, field_of(entries[label]),
                f"'{label}' appears twice, expected it once (first on line "
                f"{entries[label].number})",
            )
        value = line.text[len(label) :].strip()
        number = line.number
        if label in LIST_LABELS and value:
            raise PageTextError(
                line.number, LIST_LABELS[label],
                f"got {value!r} after '{label}', expected bullet lines below it",
            )
        if label in TEXT_LABELS and not value and index < len(lines):
            # The label stands alone: its value is the next line, unless that line is another
            # label (then the value is empty) or a bullet.
            following = lines[index]
            if not is_bullet(following.text) and find_label(following.text) is None:
                value, number = following.text, following.number
                index += 1
        entry = entries[label] = MetaEntry(label, number, value, [])
    return entries


def find_label(text: str) -> str | None:
    """Return the meta label `text` starts with, the longest that fits."""
    return next((label for label in LABELS if text.startswith(label)), None)


def field_of(entry: MetaEntry | None) -> str:
    return "meta" if entry is None else FIELDS[entry.label]


def strings(items: list[Line], field: str, where: dict[str, int]) -> list[str]:
    """Return the bullet texts of a plain list (stack, tools, checklist, notes)."""
    for position, item in enumerate(items):
        where[f"{field}[{position}]"] = item.number
    return [item.text for item in items]


def split_item(item: Line, keys: dict[str, str], field: str) -> tuple[str, str]:
    """Return (sub-field, value) of a "key: value" bullet; raise if the key is not in `keys`."""
    key, separator, value = item.text.partition(":")
    if not separator or key.strip() not in keys:
        expected = ", ".join(f"'{key}:'" for key in keys)
        raise PageTextError(
            item.number, field, f"unknown item {item.text!r}, expected one of {expected}"
        )
    return keys[key.strip()], value.strip()


def keyed(
    entry: MetaEntry, keys: dict[str, str], field: str, where: dict[str, int]
) -> dict[str, str]:
    """Return the "key: value" bullets of `entry` by sub-field; each key must appear once."""
    values: dict[str, str] = {}
    for item in entry.items:
        key, value = split_item(item, keys, field)
        if key in values:
            raise PageTextError(
                item.number, f"{field}.{key}", f"appears twice under '{entry.label}', expected once"
            )
        values[key] = value
        where[f"{field}.{key}"] = item.number
    for label, key in keys.items():
        if key not in values:
            raise PageTextError(
                entry.number, f"{field}.{key}",
                f"missing, expected a bullet starting with '{label}:' under '{entry.label}'",
            )
    return values


def grouped(
    entry: MetaEntry, keys: dict[str, str], field: str, where: dict[str, int]
) -> list[dict[str, str]]:
    """Return the repeated groups of `entry` (entities, image sources); the first key starts one."""
    first_label, first = next(iter(keys.items()))
    groups: list[dict[str, str]] = []
    for item in entry.items:
        key, value = split_item(item, keys, field)
        if key == first:
            check_complete(groups, keys, field, where)
            groups.append({})
            where[f"{field}[{len(groups) - 1}]"] = item.number
        elif not groups or key in groups[-1]:
            raise PageTextError(
                item.number, field,
                f"unexpected {item.text!r}, expected a '{first_label}:' bullet to start each item",
            )
        groups[-1][key] = value
        where[f"{field}[{len(groups) - 1}].{key}"] = item.number
    check_complete(groups, keys, field, where)
    return groups


def check_complete(
    groups: list[dict[str, str]], keys: dict[str, str], field: str, where: dict[str, int]
):
    """Raise unless the last group has every key."""
    if not groups:
        return
    path = f"{field}[{len(groups) - 1}]"
    for label, key in keys.items():
        if key not in groups[-1]:
            raise PageTextError(
                where[path], f"{path}.{key}", f"missing, expected a '{label}:' bullet in each item"
            )


def read_revision(entry: MetaEntry, where: dict[str, int]) -> dict[str, Any]:
    """Return the revision object: "in review" becomes in_review, "never" a null date.

    The page shows a known status's label, the format wants its value; any other status is an
    old-site word, kept as written (normalized as every import normalizes it).
    """
    revision: dict[str, Any] = keyed(entry, REVISION_KEYS, "revision", where)
    revision["status"] = normalize_revision_status(revision["status"])
    last_reviewed = revision["last_reviewed"]
    if last_reviewed.casefold() in NEVER:
        revision["last_reviewed"] = None
    else:
        try:
            date.fromisoformat(last_reviewed)
        except ValueError:
            raise PageTextError(
                where["revision.last_reviewed"], "revision.last_reviewed",
                f"{last_reviewed!r} is not a date, expected YYYY-MM-DD like 2026-06-30 or 'never'",
            ) from None
    return revision


def read_payload(entry: MetaEntry, where: dict[str, int]) -> dict[str, Any]:
    """Return the payload object, paragraphs and seed as numbers (an empty seed is null)."""
    payload: dict[str, Any] = keyed(entry, PAYLOAD_KEYS, "payload", where)
    payload["paragraphs"] = to_int(payload["paragraphs"], "payload.paragraphs", where)
    if payload["seed"]:
        payload["seed"] = to_int(payload["seed"], "payload.seed", where)
    else:
        payload["seed"] = None
    return payload


def to_int(value: str, field: str, where: dict[str, int]) -> int:
    """Return `value` as a whole number; raise naming `field` and its line if it is not one."""
    try:
        return int(value)
    except ValueError:
        raise PageTextError(
            where[field], field, f"{value!r} is not a whole number, expected digits like 14"
        ) from None


def to_bool(value: str, field: str, where: dict[str, int]) -> bool:
    """Return `value` (1/0/true/false) as a boolean."""
    folded = value.casefold()
    if folded in TRUE_VALUES:
        return True
    if folded in FALSE_VALUES:
        return False
    raise PageTextError(where[field], field, f"got {value!r}, expected 1, 0, true or false")


# The object.


def build_object(
    body: dict[str, Any], figures: list[Figure], meta: dict[str, Any], where: dict[str, int]
) -> dict[str, Any]:
    """Return the JSON Lines object of a page, with the values the page does not show derived."""
    source_id = meta["payload"]["source_id"]
    last_reviewed = meta["revision"]["last_reviewed"]
    where["format_version"] = where["slug"] = where["title"]
    where["status"] = where["published_at"] = where["revision.last_reviewed"]
    return {
        "format_version": FORMAT_VERSION,
        "title": body["title"],
        "slug": make_slug(body["title"], source_id),
        # A page that was public was published; the review date is the only date it shows.
        "status": "published" if last_reviewed else "draft",
        "published_at": f"{last_reviewed}T00:00:00Z" if last_reviewed else None,
        "intro": body["intro"],
        "sections": body["sections"],
        "checklist": pick_checklist(body["checklist"], meta["checklist"], where),
        "final_notes": body["final_notes"],
        "topic": meta["topic"],
        "summary": meta["summary"],
        "ai_outline": meta["ai_outline"],
        "ai_brief": meta["ai_brief"],
        "stack": meta["stack"],
        "tools": meta["tools"],
        "code_language": meta["code_language"],
        "difficulty": meta["difficulty"],
        "reading_time": meta["reading_time"],
        "view_count": meta["view_count"],
        "score": meta["score"],
        "revision": meta["revision"],
        "reference": meta["reference"],
        "hash": meta["hash"],
        "flags": meta["flags"],
        "entities": meta["entities"],
        "image_sources": place_images(figures, meta["image_sources"], where),
        "payload": meta["payload"],
        "notes": meta["notes"],
    }


def slugify(text: str) -> str:
    """Return `text` lowercased, with each run of other characters than a-z and 0-9 as one "-"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_slug(title: str, source_id: str) -> str:
    """Return the slugified title ending in the source id's number (or the slugified source id)."""
    digits = re.search(r"[0-9]+$", source_id)
    suffix = "-" + (digits.group() if digits else slugify(source_id))
    stem = slugify(title)[: max(0, SLUG_MAX_LENGTH - len(suffix))].rstrip("-")
    return stem + suffix if stem else suffix.lstrip("-")


def pick_checklist(body: list[str], meta: list[str], where: dict[str, int]) -> list[str]:
    """Return the checklist: the meta box's when it has one, else the body's; they must agree."""
    if body and meta and body != meta:
        raise PageTextError(
            where["checklist"], "checklist",
            f"the meta box lists {meta!r} but the body shows {body!r}, expected the same items",
        )
    return meta or body


def place_images(
    figures: list[Figure], sources: list[dict[str, str]], where: dict[str, int]
) -> list[dict[str, Any]]:
    """Return the image sources with the placement of the figure each belongs to, in order."""
    if len(figures) != len(sources):
        raise PageTextError(
            where["image_sources"], "image_sources",
            f"the body shows {len(figures)} figure(s) but the meta box lists {len(sources)} "
            "image source(s), expected one image source per figure, in body order",
        )
    images = []
    for position, (figure, source) in enumerate(zip(figures, sources, strict=True)):
        path = f"image_sources[{position}]"
        for key, shown in (("caption", figure.caption), ("source", figure.source)):
            if shown != source[key]:
                raise PageTextError(
                    figure.number, f"{path}.{key}",
                    f"figure {position + 1} shows {key} {shown!r} but image source "
                    f"{position + 1} has {source[key]!r}, expected the same {key}",
                )
        where[f"{path}.placement"] = where[f"{path}.section"] = figure.number
        images.append({**source, "placement": figure.placement, "section": figure.section})
    return images
