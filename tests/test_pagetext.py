import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from posts.generation import generate_records
from posts.models import Post
from posts.pagetext import PageTextError, parse_page_text
from posts.serialization import record_from_dict
from posts.services import save_posts
from tests.pagetext import page_text

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = (FIXTURES / "page-example.txt").read_text()
LABEL_LINES_EXAMPLE = (FIXTURES / "page-example-label-lines.txt").read_text()

UNSPLASH = "https://images.unsplash.com/{}?auto=format&fit=crop&w=1200&q=80"
# Every field of the example page but its sections, which are checked on their own.
EXPECTED = {
    "format_version": 1,
    "title": "django checklist: caching api responses during a traffic spike",
    "slug": "django-checklist-caching-api-responses-during-a-traffic-spike-004210",
    "status": "published",
    "published_at": "2025-12-01T00:00:00Z",
    "intro": (
        "caching api responses tends to look simple until it meets real traffic. this alphanode "
        "note collects a practical, low-risk approach for django during a traffic spike."
    ),
    "checklist": [
        "record baseline metrics",
        "write down the rollback step",
        "try the change on staging",
        "clear only the affected cache",
        "update the runbook",
    ],
    "final_notes": (
        "treat this as a starting template for django during a traffic spike. adjust the "
        "checklist to the project at hand and keep the notes close to the code they describe."
    ),
    "topic": "caching api responses / django",
    "summary": (
        "this note covers caching api responses in django and highlights measurement, small "
        "releases, and observability."
    ),
    "ai_outline": {
        "context": "during a traffic spike",
        "problem": "caching api responses",
        "stack": "django",
        "recommended_action": "set a baseline, ship behind a flag, watch the metrics",
    },
    "ai_brief": (
        "an ai-style draft that favors small verified changes, names the metrics to watch, and "
        "leaves room for a human reviewer to adjust the details."
    ),
    "stack": ["django", "backend", "python"],
    "tools": ["django orm", "gunicorn", "redis-cli", "sentry"],
    "code_language": "python",
    "difficulty": "intermediate",
    "reading_time": 7,
    "view_count": 1203,
    "score": {"quality": 81, "freshness": 47, "depth": 60, "clarity": 99},
    "revision": {"status": "in_review", "version": "2.0.1", "last_reviewed": "2025-12-01"},
    "reference": "anp-ref-004210-0042",
    "hash": "5c0ffee5c0ffee5c0ffee5c0",
    "flags": {
        "ai_generated_style": True,
        "has_images": True,
        "image_heavy": True,
        "needs_human_review": False,
    },
    "entities": [
        {"name": "django", "type": "stack"},
        {"name": "backend", "type": "area"},
        {"name": "caching api responses", "type": "problem"},
        {"name": "during a traffic spike", "type": "scenario"},
    ],
    "image_sources": [
        {
            "source": "picsum.photos",
            "url": "https://picsum.photos/seed/legacy-004210/1200/630",
            "caption": "caching api responses with django visual reference 1",
            "placement": "intro",
            "section": None,
        },
        {
            "source": "unsplash",
            "url": UNSPLASH.format("photo-1517694712202-14dd9538aa97"),
            "caption": "caching api responses with django visual reference 2",
            "placement": "intro",
            "section": None,
        },
        {
            "source": "unsplash",
            "url": UNSPLASH.format("photo-1498050108023-c5249f4df085"),
            "caption": "caching api responses with django visual reference 3",
            "placement": "checklist",
            "section": None,
        },
    ],
    "payload": {
        "source_id": "legacy-004210",
        "generator": "anp content synthesizer",
        "paragraphs": 7,
        "scenario": "during a traffic spike",
        "seed": 4210,
    },
    "notes": [
        "view count is synthetic and only meant for load testing",
        "image urls point to placeholder services and may change",
    ],
}


def line_of(text: str, start: str) -> int:
    """Return the 1-based number of the first line of `text` starting with `start`, stripped."""
    return next(
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip().startswith(start)
    )


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_example_page_gives_every_field():
    data, _ = parse_page_text(EXAMPLE)

    assert {key: value for key, value in data.items() if key != "sections"} == EXPECTED
    assert [(s["heading"], len(s["paragraphs"])) for s in data["sections"]] == [
        ("measuring the starting point", 3),
        ("a safer rollout", 2),
        ("what to automate", 1),
    ]
    # "!" ends a paragraph as "." does.
    assert data["sections"][1]["paragraphs"][1] == (
        "keep an eye on the first hour after release. a fast revert is cheaper than a long "
        "investigation!"
    )


def test_example_page_is_a_valid_record():
    data, _ = parse_page_text(EXAMPLE)

    record = record_from_dict(data)

    assert record.source_id == "legacy-004210"
    assert record.published_at == datetime(2025, 12, 1, tzinfo=UTC)
    assert [figure.placement for figure in record.figures] == ["intro", "intro", "checklist"]
    assert record.revision_status == "in_review"
    assert record.paragraph_count == 7


def test_example_page_gives_the_line_of_each_field():
    _, where = parse_page_text(EXAMPLE)

    assert where["title"] == 3
    assert where["intro"] == 5
    assert where["sections[0].heading"] == line_of(EXAMPLE, "measuring the starting point")
    assert where["sections[1].paragraphs[1]"] == line_of(EXAMPLE, "keep an eye on the first")
    assert where["final_notes"] == line_of(EXAMPLE, "final notes")
    assert where["reading_time"] == line_of(EXAMPLE, "reading time7")
    assert where["score.clarity"] == line_of(EXAMPLE, "• clarity: 99")
    assert where["revision.last_reviewed"] == line_of(EXAMPLE, "• last reviewed:")
    assert where["published_at"] == where["revision.last_reviewed"]
    assert where["entities[3].type"] == line_of(EXAMPLE, "• type: scenario")
    third_url = "• url: " + EXPECTED["image_sources"][2]["url"]
    assert where["image_sources[2].url"] == line_of(EXAMPLE, third_url)
    third_caption = EXPECTED["image_sources"][2]["caption"]
    assert where["image_sources[2].placement"] == line_of(EXAMPLE, third_caption)
    assert where["payload.source_id"] == line_of(EXAMPLE, "• source id:")
    assert where["notes[1]"] == line_of(EXAMPLE, "• image urls point")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(LABEL_LINES_EXAMPLE, id="labels-on-their-own-lines"),
        pytest.param(
            "\n".join(line for line in EXAMPLE.splitlines() if line.strip()), id="no-blank-lines"
        ),
        pytest.param(replace_once(EXAMPLE, "| | |\n", ""), id="no-breadcrumb"),
    ],
)
def test_page_variants_give_the_same_object(text):
    assert parse_page_text(text)[0] == parse_page_text(EXAMPLE)[0]


@pytest.mark.parametrize(
    ("old", "new", "field", "at"),
    [
        pytest.param(
            "alphanode post meta\n", "", "meta", "• image urls point", id="no-meta-box"
        ),
        pytest.param(
            "reading time7\n", "reading time7 minutes\n", "reading_time", "reading time7",
            id="reading-time-not-a-number",
        ),
        pytest.param(
            "quality: 81", "quality: high", "score.quality", "• quality:", id="score-not-a-number"
        ),
        pytest.param(
            "has images: 1", "has images: yes", "flags.has_images", "• has images:",
            id="flag-not-a-boolean",
        ),
        pytest.param(
            "last reviewed: 2025-12-01", "last reviewed: yesterday", "revision.last_reviewed",
            "• last reviewed:", id="review-date-not-a-date",
        ),
        pytest.param(
            "    • source: unsplash\n    • url: https://images.unsplash.com/photo-1498050108023"
            "-c5249f4df085?auto=format&fit=crop&w=1200&q=80\n    • caption: caching api responses"
            " with django visual reference 3\n",
            "", "image_sources", "image sources", id="fewer-image-sources-than-figures",
        ),
        pytest.param(
            "caching api responses with django visual reference 3\ncaching api responses with "
            "django visual reference 3. image source: unsplash\n",
            "", "image_sources", "image sources", id="fewer-figures-than-image-sources",
        ),
        pytest.param(
            "caption: caching api responses with django visual reference 2",
            "caption: a different picture", "image_sources[1].caption",
            "caching api responses with django visual reference 2", id="caption-mismatch",
        ),
        pytest.param(
            "reference 2. image source: unsplash", "reference 2. image source: pexels",
            "image_sources[1].source", "caching api responses with django visual reference 2",
            id="source-mismatch",
        ),
        pytest.param(
            "hash5c0ffee", "category: databases\nhash5c0ffee", "meta", "category: databases",
            id="unknown-label",
        ),
        pytest.param(
            "view count1203\n", "", "view_count", "• image urls point", id="missing-label"
        ),
        pytest.param(
            "hash5c0ffee5c0ffee5c0ffee5c0\n",
            "hash5c0ffee5c0ffee5c0ffee5c0\nhashbadc0ffee\n", "hash", "hashbadc0ffee",
            id="label-twice",
        ),
        pytest.param(
            "  • depth: 60\n", "", "score.depth", "score", id="missing-score-item"
        ),
        pytest.param(
            "context: during a traffic spike", "setting: during a traffic spike", "ai_outline",
            "• setting:", id="unknown-outline-item",
        ),
        pytest.param(
            "    • name: django\n    • type: stack\n", "    • type: stack\n    • name: django\n",
            "entities", "• type: stack", id="entity-without-a-name-first",
        ),
        pytest.param(
            "topiccaching api responses / django\n",
            "topiccaching api responses / django\n  • stray\n", "topic", "• stray",
            id="bullet-under-a-text-label",
        ),
        pytest.param(
            "  • update the runbook\ncaching", "  • update the wiki\ncaching", "checklist",
            "checklist", id="body-and-meta-checklists-differ",
        ),
        pytest.param(
            "during a traffic spike.\n\ncaching api responses with django visual reference 1\n",
            "during a traffic spike.\n\na second intro paragraph.\n\n"
            "caching api responses with django visual reference 1\n",
            "intro", "a second intro paragraph.", id="second-intro-paragraph",
        ),
    ],
)
def test_structural_errors_name_the_line_and_field(old, new, field, at):
    text = replace_once(EXAMPLE, old, new)

    with pytest.raises(PageTextError) as caught:
        parse_page_text(text)

    assert (caught.value.field, caught.value.line) == (field, line_of(text, at))
    assert str(caught.value).startswith(f"line {line_of(text, at)}: {field}: ")


def test_page_without_a_title_is_an_error():
    text = "| | |\n\nalphanode post meta\n"

    with pytest.raises(PageTextError) as caught:
        parse_page_text(text)

    assert (caught.value.field, caught.value.line) == ("title", 3)


def test_missing_label_message_says_what_was_expected():
    with pytest.raises(PageTextError) as caught:
        parse_page_text(replace_once(EXAMPLE, "code languagepython\n", ""))

    assert caught.value.message == (
        "missing from the meta box, expected a line starting with 'code language'"
    )


def test_page_without_a_review_date_is_a_draft():
    text = replace_once(EXAMPLE, "last reviewed: 2025-12-01", "last reviewed: never")
    text = replace_once(text, "seed: 4210", "seed:")

    data, _ = parse_page_text(text)

    assert (data["status"], data["published_at"]) == ("draft", None)
    assert data["revision"]["last_reviewed"] is None
    assert data["payload"]["seed"] is None
    record_from_dict(data)


def test_figures_after_sections_name_their_section():
    text = replace_once(
        EXAMPLE,
        "investigation!\n",
        "investigation!\n\nrollout diagram\nrollout diagram. image source: picsum.photos\n",
    )
    text = replace_once(
        text,
        "    • source: unsplash\n    • url: https://images.unsplash.com/photo-1498",
        "    • source: picsum.photos\n    • url: https://picsum.photos/seed/x/1200/630\n"
        "    • caption: rollout diagram\n"
        "    • source: unsplash\n    • url: https://images.unsplash.com/photo-1498",
    )

    data, _ = parse_page_text(text)

    assert [(image["placement"], image["section"]) for image in data["image_sources"]] == [
        ("intro", None), ("intro", None), ("section", 1), ("checklist", None),
    ]
    assert len(data["sections"][1]["paragraphs"]) == 2


@pytest.mark.django_db
def test_our_article_pages_round_trip(client):
    records = list(generate_records(30, 3))
    save_posts(records)
    shown = set(Post.objects.published().values_list("source_id", flat=True))
    records = [record for record in records if record.source_id in shown]
    # The sample must cover every placement and both publication outcomes to prove anything.
    placements = {figure.placement for record in records for figure in record.figures}
    assert placements == {"intro", "section", "checklist"}
    assert {record.last_reviewed is None for record in records} == {True, False}

    for record in records:
        url = Post.objects.only("slug").get(source_id=record.source_id).get_absolute_url()
        html = client.get(url).content.decode()

        data, _ = parse_page_text(page_text(html))
        parsed = record_from_dict(data)

        assert parsed.slug == record.slug
        assert parsed.status == ("published" if record.last_reviewed else "draft")
        if record.last_reviewed:
            assert parsed.published_at.date() == record.last_reviewed
        else:
            assert parsed.published_at is None
        unshown = {"status": record.status, "published_at": record.published_at}
        assert dataclasses.replace(parsed, **unshown) == record


def test_the_line_under_our_titles_is_not_read_as_the_intro():
    expected, _ = parse_page_text(EXAMPLE)
    lines = EXAMPLE.splitlines()
    title = next(n for n, line in enumerate(lines) if line.strip() and "|" not in line)
    for byline in ("2026-03-01 · 14 min read · beginner · python services · django",
                   "draft · 3 min read · advanced", "scheduled · 7 min read · intermediate"):
        text = "\n".join([*lines[: title + 1], "", byline, *lines[title + 1 :]])
        data, _ = parse_page_text(text)
        assert data == expected, byline
