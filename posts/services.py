"""Writes to posts: bulk saving of post records (generator, importers)."""

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from django.db import connection, transaction
from django.db.models import Q
from django.utils.text import slugify

from posts.models import ImageSource, Post, PostTag, Revision, Section, Tag, TagKind, TagRole
from posts.records import PostRecord
from posts.serialization import dumps, record_to_dict

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
DIGEST_SIZE = 16


@dataclass
class BatchOutcome:
    """What one batch did: counts, and the records refused because of other posts."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # source id -> (field, message) for records clashing with another post's slug or reference
    conflicts: dict[str, tuple[str, str]] = field(default_factory=dict)


class BatchRejected(Exception):
    """A batch holds records that clash with other posts, and nothing of it was written."""

    def __init__(self, conflicts: dict[str, tuple[str, str]]):
        super().__init__(f"{len(conflicts)} record(s) clash with other posts")
        self.conflicts = conflicts


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


def post_from_record(record: PostRecord, digest: str) -> Post:
    """Return an unsaved Post holding the record's own columns."""
    post = Post(source_id=record.source_id, **{name: getattr(record, name) for name in POST_FIELDS})
    post.checklist = list(record.checklist)
    post.notes = list(record.notes)
    post.import_digest = digest
    return post


def record_digest(record: PostRecord) -> str:
    """Return a digest of everything the record says, to skip records already written."""
    return hashlib.blake2b(
        dumps(record_to_dict(record)).encode(), digest_size=DIGEST_SIZE
    ).hexdigest()


def save_post_batch(
    records: list[PostRecord], digests: dict[str, str] | None = None, *, strict: bool = False
) -> BatchOutcome:
    """Create, update or skip the posts of `records` (distinct source ids); call in a transaction.

    Posts are keyed by source id; a record whose digest (given, or record_digest) matches the
    stored one is skipped. A record whose slug or reference belongs to another post is left out
    and reported in `conflicts`; with `strict`, such a record raises BatchRejected before
    anything is written. At most 12 queries, whatever the batch size.
    """
    if digests is None:
        digests = {record.source_id: record_digest(record) for record in records}
    rows = Post.objects.filter(
        Q(source_id__in=digests.keys())
        | Q(slug__in={record.slug for record in records})
        | Q(reference__in={record.reference for record in records})
    ).values_list("source_id", "slug", "reference", "import_digest")
    stored = {}
    owners = {}  # ("slug" | "reference", value) -> the source id of the post that has it
    for source_id, slug, reference, digest in rows:
        if source_id in digests:
            stored[source_id] = digest
        else:
            owners[("slug", slug)] = owners[("reference", reference)] = source_id

    outcome = BatchOutcome()
    changed = []
    for record in records:
        if stored.get(record.source_id) == digests[record.source_id]:
            outcome.unchanged += 1
            continue
        clash = next(
            (
                (name, value)
                for name, value in (("slug", record.slug), ("reference", record.reference))
                if (name, value) in owners
            ),
            None,
        )
        if clash:
            name, value = clash
            outcome.conflicts[record.source_id] = (
                name,
                f"{value!r} already belongs to post {owners[clash]}, expected a unique {name}",
            )
            continue
        owners[("slug", record.slug)] = owners[("reference", record.reference)] = record.source_id
        changed.append(record)
    if strict and outcome.conflicts:
        raise BatchRejected(outcome.conflicts)
    outcome.created = sum(record.source_id not in stored for record in changed)
    outcome.updated = len(changed) - outcome.created
    if changed:
        write_posts(changed, digests)
    return outcome


@transaction.atomic(savepoint=False)
def write_posts(records: list[PostRecord], digests: dict[str, str]) -> None:
    """Upsert the posts of `records` and replace their revision, tags, sections and figures.

    Children are replaced by exactly what the records say: one set-based delete and one bulk
    insert per table (11 queries).
    """
    posts = Post.objects.bulk_create(
        [post_from_record(record, digests[record.source_id]) for record in records],
        update_conflicts=True,
        unique_fields=["source_id"],
        update_fields=[*POST_FIELDS, *LIST_FIELDS, "import_digest", "updated_at"],
    )
    post_ids = [post.pk for post in posts]
    pairs = list(zip(post_ids, records, strict=True))
    links_by_post = [(post_id, record_tags(record)) for post_id, record in pairs]
    tag_ids = ensure_tags({key for _, links in links_by_post for _, _, key in links})

    for model in (Revision, PostTag, Section, ImageSource):
        model.objects.filter(post_id__in=post_ids).delete()
    insert_rows(
        Revision,
        ("post_id", "status", "version", "last_reviewed"),
        (
            (post_id, record.revision_status, record.revision_version, record.last_reviewed)
            for post_id, record in pairs
        ),
    )
    insert_rows(
        PostTag,
        ("post_id", "tag_id", "role", "position"),
        (
            (post_id, tag_ids[key], role, position)
            for post_id, links in links_by_post
            for role, position, key in links
        ),
    )
    insert_rows(
        Section,
        ("post_id", "position", "heading", "body"),
        (
            (post_id, position, section.heading, "\n\n".join(section.paragraphs))
            for post_id, record in pairs
            for position, section in enumerate(record.sections)
        ),
    )
    insert_rows(
        ImageSource,
        ("post_id", "position", "source", "url", "caption", "placement", "section_position"),
        (
            (post_id, position, figure.source, figure.url, figure.caption, figure.placement,
             figure.section_position)
            for post_id, record in pairs
            for position, figure in enumerate(record.figures)
        ),
    )


def insert_rows(model, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """Insert plain `rows` of `columns` into `model`'s table in one statement.

    On PostgreSQL this is COPY, which skips building a model instance per row (the bulk of an
    import's time); elsewhere it is bulk_create.
    """
    if connection.vendor != "postgresql":
        model.objects.bulk_create(model(**dict(zip(columns, row, strict=True))) for row in rows)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    sql = f"COPY {table} ({names}) FROM STDIN"
    started = time.monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    if connection.queries_logged:
        # COPY bypasses Django's cursor wrapper; log it so query counts and the debug
        # toolbar see it like any other statement.
        connection.queries_log.append(
            {"sql": sql, "time": f"{time.monotonic() - started:.3f}", "alias": connection.alias}
        )


def save_posts(records: Iterable[PostRecord], batch_size: int = 500, progress=None) -> BatchOutcome:
    """Save trusted `records` (distinct source ids, e.g. generated) in batches of `batch_size`.

    Returns the summed counts; `progress(records_done)` is called after every batch.
    """
    total = BatchOutcome()
    done = 0
    for batch in batched(records, batch_size):
        with transaction.atomic():
            outcome = save_post_batch(batch, strict=True)
        total.created += outcome.created
        total.updated += outcome.updated
        total.unchanged += outcome.unchanged
        done += len(batch)
        if progress is not None:
            progress(done)
    return total
