"""Writes to posts: bulk saving of post records (generator, importers)."""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from django.db import transaction
from django.utils.text import slugify

from posts.models import ImageSource, Post, PostTag, Revision, Section, Tag, TagKind, TagRole
from posts.records import PostRecord

# Post columns copied from a record as they are; created_at is kept on update.
POST_FIELDS = (
    "title", "slug", "status", "published_at", "intro", "final_notes", "topic", "summary",
    "outline_context", "outline_problem", "outline_stack", "outline_action", "ai_brief",
    "code_language", "difficulty", "reading_time", "view_count", "quality_score",
    "freshness_score", "depth_score", "clarity_score", "reference", "content_hash",
    "ai_generated_style", "has_images", "image_heavy", "needs_human_review", "generator",
    "paragraph_count", "scenario", "seed",
)
LIST_FIELDS = ("checklist", "notes")


@dataclass
class SaveResult:
    saved: int = 0


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Yield lists of at most `size` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def tag_slug(kind: str, name: str, disambiguate: bool = False) -> str:
    """Return the URL slug of tag (kind, name), e.g. "stack-python-services".

    slugify is lossy ("c++" and "c" both give "c"); `disambiguate` adds a digest of the name
    for the rare tag whose readable slug is already taken.
    """
    slug = f"{kind}-{slugify(name)[:100] or 'tag'}"
    if disambiguate:
        slug = f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return slug


def ensure_tags(keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Create the missing tags among (kind, name) keys; return their ids (2 queries, rarely 4)."""
    if not keys:
        return {}
    found = {}
    for disambiguate in (False, True):
        missing = keys - found.keys()
        if not missing:
            break
        Tag.objects.bulk_create(
            [Tag(kind=kind, name=name, slug=tag_slug(kind, name, disambiguate))
             for kind, name in missing],
            ignore_conflicts=True,
        )
        found |= {
            (kind, name): pk
            for kind, name, pk in Tag.objects.filter(
                kind__in={kind for kind, _ in missing}, name__in={name for _, name in missing}
            ).values_list("kind", "name", "id")
        }
    return {key: found[key] for key in keys}


def record_tags(record: PostRecord) -> list[tuple[str, int, tuple[str, str]]]:
    """Return the record's tag links as (role, position, (kind, name)); repeats are dropped."""
    items = [
        *((TagRole.STACK, (TagKind.STACK.value, name)) for name in record.stack),
        *((TagRole.TOOL, (TagKind.TOOL.value, name)) for name in record.tools),
        *((TagRole.ENTITY, (entity.type, entity.name)) for entity in record.entities),
    ]
    links = []
    seen = set()
    positions = dict.fromkeys(TagRole.values, 0)
    for role, key in items:
        if (role, key) not in seen:
            seen.add((role, key))
            links.append((role, positions[role], key))
            positions[role] += 1
    return links


def post_from_record(record: PostRecord) -> Post:
    """Return an unsaved Post holding the record's own columns."""
    post = Post(source_id=record.source_id, **{name: getattr(record, name) for name in POST_FIELDS})
    post.checklist = list(record.checklist)
    post.notes = list(record.notes)
    return post


@transaction.atomic
def save_post_batch(records: list[PostRecord]) -> None:
    """Create or update the posts of `records`, keyed by source id, in a constant 10 queries.

    Children (tag links, sections, figures) are replaced by exactly what the records say.
    """
    posts = Post.objects.bulk_create(
        [post_from_record(record) for record in records],
        update_conflicts=True,
        unique_fields=["source_id"],
        update_fields=[*POST_FIELDS, *LIST_FIELDS, "updated_at"],
    )
    post_ids = [post.pk for post in posts]
    Revision.objects.bulk_create(
        [
            Revision(
                post_id=post.pk,
                status=record.revision_status,
                version=record.revision_version,
                last_reviewed=record.last_reviewed,
            )
            for post, record in zip(posts, records, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["post"],
        update_fields=["status", "version", "last_reviewed"],
    )

    links_by_post = [record_tags(record) for record in records]
    tag_ids = ensure_tags({key for links in links_by_post for _, _, key in links})

    PostTag.objects.filter(post_id__in=post_ids).delete()
    Section.objects.filter(post_id__in=post_ids).delete()
    ImageSource.objects.filter(post_id__in=post_ids).delete()
    PostTag.objects.bulk_create(
        PostTag(post_id=post.pk, tag_id=tag_ids[key], role=role, position=position)
        for post, links in zip(posts, links_by_post, strict=True)
        for role, position, key in links
    )
    Section.objects.bulk_create(
        Section(
            post_id=post.pk,
            position=position,
            heading=section.heading,
            body="\n\n".join(section.paragraphs),
        )
        for post, record in zip(posts, records, strict=True)
        for position, section in enumerate(record.sections)
    )
    ImageSource.objects.bulk_create(
        ImageSource(
            post_id=post.pk,
            position=position,
            source=figure.source,
            url=figure.url,
            caption=figure.caption,
            placement=figure.placement,
            section_position=figure.section_position,
        )
        for post, record in zip(posts, records, strict=True)
        for position, figure in enumerate(record.figures)
    )


def save_posts(records: Iterable[PostRecord], batch_size: int = 500, progress=None) -> SaveResult:
    """Save `records` in batches of `batch_size`, one transaction per batch."""
    result = SaveResult()
    for batch in batched(records, batch_size):
        save_post_batch(batch)
        result.saved += len(batch)
        if progress is not None:
            progress(result.saved)
    return result
