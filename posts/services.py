"""Writes to posts: bulk saving of post records (generator, importers)."""

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from posts import derived
from posts.models import (
    ImageSource,
    Post,
    PostTag,
    PublicationStatus,
    Revision,
    Section,
    Tag,
    TagKind,
    TagRole,
)
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
# Plain strings: enum members are slow as dictionary keys in the per-record hot path.
ROLE_STACK, ROLE_TOOL, ROLE_ENTITY = TagRole.STACK.value, TagRole.TOOL.value, TagRole.ENTITY.value
KIND_STACK, KIND_TOOL = TagKind.STACK.value, TagKind.TOOL.value
STATUS_PUBLISHED = PublicationStatus.PUBLISHED.value
POST_STAGE = "alphanode_post_stage"  # temporary table the PostgreSQL upsert copies into
# Columns of a post written by an import, in the order of post_row().
POST_COLUMNS = ("source_id", *POST_FIELDS, *LIST_FIELDS, "import_digest", "created_at",
                "updated_at")


@dataclass
class BatchOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


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
    """Create the missing tags among (kind, name) keys; return their ids (1 query when all
    exist, else 3, rarely 5).

    Existing tags are read first and only the missing ones inserted: an INSERT ... ON CONFLICT
    over a tag whose count another import batch has just moved waits for that batch to commit,
    which made concurrent writers take turns.
    """
    if not keys:
        return {}
    found = existing_tag_ids(keys)
    for disambiguate in (False, True):
        missing = keys - found.keys()
        if not missing:
            break
        Tag.objects.bulk_create(
            # Sorted, so concurrent import batches take the tags' locks in the same order.
            [Tag(kind=kind, name=name, slug=tag_slug(kind, name, disambiguate))
             for kind, name in sorted(missing)],
            ignore_conflicts=True,
        )
        found |= existing_tag_ids(missing)
    return {key: found[key] for key in keys}


def existing_tag_ids(keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Return the ids of the existing tags among (kind, name) keys (1 query)."""
    return {
        (kind, name): pk
        for kind, name, pk in Tag.objects.filter(
            kind__in={kind for kind, _ in keys}, name__in={name for _, name in keys}
        ).values_list("kind", "name", "id")
        if (kind, name) in keys
    }


def record_tags(record: PostRecord) -> list[tuple[str, int, tuple[str, str]]]:
    """Return the record's tag links as (role, position, (kind, name)); repeats are dropped."""
    items = [
        *((ROLE_STACK, (KIND_STACK, name)) for name in record.stack),
        *((ROLE_TOOL, (KIND_TOOL, name)) for name in record.tools),
        *((ROLE_ENTITY, (entity.type, entity.name)) for entity in record.entities),
    ]
    links = []
    seen = set()
    positions = {ROLE_STACK: 0, ROLE_TOOL: 0, ROLE_ENTITY: 0}
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


def stored_digests(source_ids) -> dict[str, str]:
    """Return the stored import digest of each existing post among `source_ids` (1 query)."""
    return dict(
        Post.objects.filter(source_id__in=source_ids).values_list("source_id", "import_digest")
    )


def save_post_batch(
    records: list[PostRecord],
    digests: dict[str, str] | None = None,
    stored: dict[str, str] | None = None,
) -> BatchOutcome:
    """Create, update or skip the posts of `records` (distinct source ids); call in a transaction.

    Posts are keyed by source id; a record whose digest (given, or record_digest) matches the
    stored one (given, or looked up) is skipped. A slug or reference that belongs to another
    post raises IntegrityError; find_clashes() then says which records. The same number of
    queries whatever the batch size (tests/test_import_export.py counts them).
    """
    if digests is None:
        digests = {record.source_id: record_digest(record) for record in records}
    if stored is None:
        stored = stored_digests(digests.keys())
    changed = [
        record for record in records if stored.get(record.source_id) != digests[record.source_id]
    ]
    existing = {record.source_id for record in changed if record.source_id in stored}
    outcome = BatchOutcome(
        created=len(changed) - len(existing),
        updated=len(existing),
        unchanged=len(records) - len(changed),
    )
    if changed:
        write_posts(changed, digests, existing)
    return outcome


def find_clashes(records: list[PostRecord]) -> dict[str, tuple[str, str]]:
    """Return source id -> (field, message) for records whose slug or reference belongs to
    another post, or to an earlier record of the list (1 query)."""
    own = {record.source_id for record in records}
    owners = {}  # ("slug" | "reference", value) -> the source id of the post that has it
    for source_id, slug, reference in (
        Post.objects.filter(
            Q(slug__in={record.slug for record in records})
            | Q(reference__in={record.reference for record in records})
        )
        .exclude(source_id__in=own)
        .values_list("source_id", "slug", "reference")
    ):
        owners[("slug", slug)] = owners[("reference", reference)] = source_id
    clashes = {}
    for record in records:
        for name, value in (("slug", record.slug), ("reference", record.reference)):
            owner = owners.setdefault((name, value), record.source_id)
            if owner != record.source_id:
                clashes[record.source_id] = (
                    name,
                    f"{value!r} already belongs to post {owner}, expected a unique {name}",
                )
                break
    return clashes


@transaction.atomic(savepoint=False)
def write_posts(
    records: list[PostRecord], digests: dict[str, str], existing: set[str] = frozenset()
) -> None:
    """Upsert the posts of `records` and replace their revision, tags, sections and figures.

    Children are replaced by exactly what the records say: one set-based delete (for the posts
    in `existing` only: new posts have no children) and one bulk insert per table (at most 14
    queries).
    """
    # What the old versions counted for, read before the upsert changes their status.
    before = (
        derived.contribution(Post.objects.filter(source_id__in=existing).values("pk"))
        if existing
        else derived.Contribution()
    )
    ids = upsert_posts(records, digests)
    pairs = [(ids[record.source_id], record) for record in records]
    links_by_post = [(post_id, record_tags(record)) for post_id, record in pairs]
    tag_ids = ensure_tags({key for _, links in links_by_post for _, _, key in links})

    replaced = [ids[source_id] for source_id in existing]
    if replaced:
        # A reviewer's flag stays until a reviewer clears it: a file can raise the flag but
        # not lower it (flagged_at is set only by the review actions).
        Post.objects.filter(pk__in=replaced, flagged_at__isnull=False).update(
            needs_human_review=True
        )
        for model in (Revision, PostTag, Section, ImageSource):
            model.objects.filter(post_id__in=replaced).delete()
    insert_rows(
        Revision,
        ("post_id", "status", "version", "last_reviewed"),
        (
            (post_id, record.revision_status, record.revision_version, record.last_reviewed)
            for post_id, record in pairs
        ),
    )
    listed_at = {
        post_id: record.published_at if record.status == STATUS_PUBLISHED else None
        for post_id, record in pairs
    }
    insert_rows(
        PostTag,
        ("post_id", "tag_id", "role", "position", "listed_at"),
        (
            (post_id, tag_ids[key], role, position, listed_at[post_id])
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
    derived.after_batch_write(ids.values(), before)
    # Lists that named a post this batch took off the site are recomputed without it.
    derived.refill_lists_holding(
        ids[record.source_id]
        for record in records
        if record.source_id in existing and record.status != STATUS_PUBLISHED
    )


def upsert_posts(records: list[PostRecord], digests: dict[str, str]) -> dict[str, int]:
    """Insert or update the post rows of `records`; return their ids by source id.

    On PostgreSQL the rows are copied into a temporary table and upserted from there in one
    INSERT ... SELECT ... ON CONFLICT, which skips a model instance per post; elsewhere this is
    bulk_create(update_conflicts=True).
    """
    if connection.vendor != "postgresql":
        posts = Post.objects.bulk_create(
            [post_from_record(record, digests[record.source_id]) for record in records],
            update_conflicts=True,
            unique_fields=["source_id"],
            update_fields=[*POST_FIELDS, *LIST_FIELDS, "import_digest", "updated_at"],
        )
        return {post.source_id: post.pk for post in posts}

    now = timezone.now()
    columns = ", ".join(connection.ops.quote_name(column) for column in POST_COLUMNS)
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}"
        for name in map(connection.ops.quote_name, POST_COLUMNS)
        if name not in ('"source_id"', '"created_at"')
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {POST_STAGE} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM {Post._meta.db_table} WITH NO DATA"
        )
    insert_rows(
        POST_STAGE,
        POST_COLUMNS,
        (
            (
                record.source_id,
                *(getattr(record, name) for name in POST_FIELDS),
                dumps(list(record.checklist)),
                dumps(list(record.notes)),
                digests[record.source_id],
                now,
                now,
            )
            for record in records
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Post._meta.db_table} ({columns}) SELECT {columns} FROM {POST_STAGE} "
            f"ON CONFLICT (source_id) DO UPDATE SET {updates} RETURNING source_id, id"
        )
        ids = dict(cursor.fetchall())
        cursor.execute(f"DELETE FROM {POST_STAGE}")
    return ids


def insert_rows(model, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """Insert plain `rows` of `columns` into `model`'s table (or a table name) in one statement.

    On PostgreSQL this is COPY, which skips building a model instance per row (the bulk of an
    import's time); elsewhere it is bulk_create.
    """
    if connection.vendor != "postgresql":
        model.objects.bulk_create(model(**dict(zip(columns, row, strict=True))) for row in rows)
        return
    table = model if isinstance(model, str) else model._meta.db_table
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    sql = f"COPY {connection.ops.quote_name(table)} ({names}) FROM STDIN"
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
            outcome = save_post_batch(batch)
        total.created += outcome.created
        total.updated += outcome.updated
        total.unchanged += outcome.unchanged
        done += len(batch)
        if progress is not None:
            progress(done)
    return total
