import io

import pytest
from django.core.management import CommandError, call_command

from posts.generation import generate_records
from posts.models import ImageSource, Post, PostTag, PublicationStatus, Section, Tag
from posts.services import save_posts
from tests.pagetext import visible_lines

pytestmark = pytest.mark.django_db

META_LABELS = [
    "topic", "summary", "ai outline", "ai brief", "stack", "tools", "code language",
    "difficulty", "reading time", "view count", "score", "revision", "reference", "hash",
    "flags", "checklist", "entities", "image sources", "payload", "notes",
]


def expected_page_lines(record):
    """Return the lines the example page shows for `record`, in the example's order."""

    def figure_lines(placement, section=None):
        return [
            line
            for figure in record.figures
            if figure.placement == placement and figure.section_position == section
            for line in (figure.caption, f"{figure.caption}. image source: {figure.source}")
        ]

    # Under the title, our pages add a line the example (an old-site page) does not have: the
    # date, reading time, difficulty and stacks (posts/pagetext.py BYLINE).
    byline = " · ".join([
        f"{record.published_at:%Y-%m-%d}", f"{record.reading_time} min read", record.difficulty,
        *record.stack,
    ])
    lines = [record.title, byline, record.intro, *figure_lines("intro")]
    for position, section in enumerate(record.sections):
        lines += [section.heading, *section.paragraphs, *figure_lines("section", position)]
    lines += ["implementation checklist", *record.checklist, *figure_lines("checklist")]
    lines += ["final notes", record.final_notes, "alphanode post meta"]
    return lines


def expected_meta_lines(record):
    """Return the meta box as label and value lines, in the example's order."""
    return [
        "topic", record.topic,
        "summary", record.summary,
        "ai outline",
        f"context: {record.outline_context}",
        f"problem: {record.outline_problem}",
        f"stack: {record.outline_stack}",
        f"recommended action: {record.outline_action}",
        "ai brief", record.ai_brief,
        "stack", *record.stack,
        "tools", *record.tools,
        "code language", record.code_language,
        "difficulty", record.difficulty,
        "reading time", str(record.reading_time),
        "view count", str(record.view_count),
        "score",
        f"quality: {record.quality_score}",
        f"freshness: {record.freshness_score}",
        f"depth: {record.depth_score}",
        f"clarity: {record.clarity_score}",
        "revision",
        f"status: {record.revision_status.replace('_', ' ')}",
        f"version: {record.revision_version}",
        "last reviewed: "
        + (record.last_reviewed.isoformat() if record.last_reviewed else "never"),
        "reference", record.reference,
        "hash", record.content_hash,
        "flags",
        f"ai generated style: {int(record.ai_generated_style)}",
        f"has images: {int(record.has_images)}",
        f"image heavy: {int(record.image_heavy)}",
        f"needs human review: {int(record.needs_human_review)}",
        "checklist", *record.checklist,
        "entities",
        *(line for e in record.entities for line in (f"name: {e.name}", f"type: {e.type}")),
        "image sources",
        *(
            line
            for f in record.figures
            for line in (f"source: {f.source}", f"url: {f.url}", f"caption: {f.caption}")
        ),
        "payload",
        f"source id: {record.source_id}",
        f"generator: {record.generator}",
        f"paragraphs: {record.paragraph_count}",
        f"scenario: {record.scenario}",
        f"seed: {record.seed}",
        "notes", *record.notes,
        "Similar Posts",
    ]


def published_records_with_figures(count=40, seed=3):
    records = list(generate_records(count, seed))
    return records, [
        record
        for record in records
        if record.status == PublicationStatus.PUBLISHED
        and {figure.placement for figure in record.figures} >= {"intro", "section"}
    ]


def test_generated_article_page_shows_every_section_and_meta_field_in_order(client):
    records, candidates = published_records_with_figures()
    save_posts(records)

    for record in candidates[:3]:
        response = client.get(Post.objects.get(source_id=record.source_id).get_absolute_url())
        lines = visible_lines(response.content.decode())

        start = lines.index(record.title)
        body = expected_page_lines(record)
        assert lines[start : start + len(body)] == body
        meta_start = start + len(body)
        meta = expected_meta_lines(record)
        assert lines[meta_start : meta_start + len(meta)] == meta
        assert [label for label in META_LABELS if label in lines[meta_start:]] == META_LABELS


def test_same_seed_gives_the_same_posts():
    assert list(generate_records(50, 7)) == list(generate_records(50, 7))
    assert list(generate_records(50, 7)) != list(generate_records(50, 8))


def test_generated_content_has_a_realistic_mix():
    records = list(generate_records(400, 1))
    share = lambda predicate: sum(map(predicate, records)) / len(records)  # noqa: E731

    assert 0.05 < share(lambda r: r.status == PublicationStatus.DRAFT) < 0.3
    assert 0.05 < share(lambda r: r.needs_human_review) < 0.3
    assert 0.4 < share(lambda r: r.revision_status == "reviewed") < 0.8
    assert len({r.source_id for r in records}) == len({r.slug for r in records}) == 400
    # A skew: the most common stack appears in many more posts than the rarest.
    stacks = [r.stack[0] for r in records]
    counts = sorted(stacks.count(stack) for stack in set(stacks))
    assert counts[-1] >= 4 * counts[0]


def snapshot():
    """Return every post with its relations as plain values, for comparing databases."""
    posts = list(Post.objects.order_by("source_id").values())
    for post in posts:
        post.pop("id"), post.pop("created_at"), post.pop("updated_at")
    return {
        "posts": posts,
        "tags": list(Tag.objects.order_by("slug").values_list("kind", "name", "slug")),
        "links": list(
            PostTag.objects.order_by("post__source_id", "role", "position").values_list(
                "post__source_id", "role", "position", "tag__slug"
            )
        ),
        "sections": list(
            Section.objects.order_by("post__source_id", "position").values_list(
                "post__source_id", "position", "heading", "body"
            )
        ),
        "figures": list(
            ImageSource.objects.order_by("post__source_id", "position").values_list(
                "post__source_id", "position", "source", "url", "caption", "placement",
                "section_position",
            )
        ),
    }


def test_generate_posts_command_is_deterministic_and_rerunnable():
    out = io.StringIO()
    call_command("generate_posts", count=30, seed=5, batch_size=7, stdout=out)
    assert "Saved 30 posts" in out.getvalue()
    first = snapshot()

    call_command("generate_posts", count=30, seed=5, stdout=io.StringIO())

    assert Post.objects.count() == 30
    assert snapshot() == first


def test_generate_posts_if_empty_leaves_existing_posts_alone():
    call_command("generate_posts", count=3, seed=1, stdout=io.StringIO())
    out = io.StringIO()
    call_command("generate_posts", count=10, seed=2, if_empty=True, stdout=out)
    assert Post.objects.count() == 3
    assert "nothing generated" in out.getvalue()


@pytest.mark.parametrize(("option", "value"), [("count", -1), ("seed", -1), ("batch_size", 0)])
def test_generate_posts_rejects_bad_numbers(option, value):
    with pytest.raises(CommandError, match="must be"):
        call_command("generate_posts", **{option: value}, stdout=io.StringIO())
