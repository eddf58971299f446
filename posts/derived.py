"""Data derived from posts, kept current by every write path, set-based.

- Each tag link carries its post's publication date while the post is published
  (`PostTag.listed_at`), so a tag page reads one index range of the tag.
- Post counts: published posts per tag (`Tag.post_count`) and in total (`Counter`), moved by
  deltas: what the written posts contributed before a write is subtracted, what they
  contribute after it is added.
- Similar posts (`SimilarPost`): each post's best few by the sum of the rarity weights of the
  tags both carry (docs/queries.md explains the rule), ties broken by newest.
- Search documents (`SearchDocument`, PostgreSQL): each post's weighted full-text vector, its
  filter values as facets, and the band of its date (`refresh_search_bands()` moves the
  bands' starts; docs/queries.md, "Search").

Imports and the generator call `after_batch_write()` from the same transaction as the batch;
the admin and the review actions call `posts_changed()` (which queues the refill of other
posts' lists as a task, posts/tasks.py) and `deleting_posts()`; the
`refresh_similar` and `recount_posts` commands recompute everything. Every function runs a
constant number of statements however many posts it is given.
"""

import datetime
import math
from collections import Counter as Tally
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from posts import caching
from posts.models import (
    Counter,
    Post,
    PostTag,
    PublicationStatus,
    SearchBand,
    SearchDocument,
    Section,
    SimilarPost,
    Tag,
)

# Taken by every writer before it moves counts or other posts' similar lists, and held to
# commit: two import writers updating the same tag counts or the same lists would otherwise
# deadlock on row locks taken in different orders.
LOCK_KEY = 0x616E_6F64  # "anod"
SIMILAR_TABLE = SimilarPost._meta.db_table
LINK_TABLE = PostTag._meta.db_table
TAG_TABLE = Tag._meta.db_table
POST_TABLE = Post._meta.db_table
COUNTER_TABLE = Counter._meta.db_table
SCORE_DIGITS = 6  # scores are rounded so that equal tag sets tie exactly


@dataclass
class Contribution:
    """What a set of posts adds to the counts and the lists: published posts per tag, and
    the publication date of each published one."""

    tags: Tally = field(default_factory=Tally)
    listed: dict[int, datetime.datetime] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.listed)


def listed_post_count() -> int:
    """Return the number of published posts (1 query).

    Plain SQL: the home page reads it on every request, and building the queryset cost more
    than running it.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {COUNTER_TABLE} WHERE name = %s", [Counter.LISTED_POSTS])
        row = cursor.fetchone()
    return row[0] if row else 0


def contribution(post_ids) -> Contribution:
    """Return what the posts of `post_ids` (ids, or a queryset of them) contribute to the
    counts now (2 queries)."""
    if not isinstance(post_ids, QuerySet):
        post_ids = list(post_ids)
        if not post_ids:
            return Contribution()
    tags = Tally(
        dict(
            PostTag.objects.filter(post_id__in=post_ids, listed_at__isnull=False)
            .order_by()  # the model's ordering would join posts and group by it
            .values("tag_id")
            .annotate(posts=Count("post_id", distinct=True))
            .values_list("tag_id", "posts")
        )
    )
    listed = dict(
        Post.objects.filter(pk__in=post_ids, status=PublicationStatus.PUBLISHED)
        .order_by()
        .values_list("pk", "published_at")
    )
    return Contribution(tags, listed)


def take_lock() -> None:
    """Serialize count and shared-list updates with other writers until this transaction ends.

    Deferred foreign-key checks run first, so the lock is not held while they do.
    """
    if connection.vendor != "postgresql":
        return  # SQLite has one writer at a time anyway
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


@dataclass
class CountChange:
    """How a write moves the counts: published posts per tag, and in total (after - before)."""

    tags: dict[int, int] = field(default_factory=dict)
    total: int = 0

    @classmethod
    def between(cls, before: Contribution, after: Contribution) -> "CountChange":
        deltas = {tag_id: after.tags[tag_id] - before.tags[tag_id]
                  for tag_id in before.tags.keys() | after.tags.keys()}
        return cls({tag_id: delta for tag_id, delta in deltas.items() if delta},
                   after.total - before.total)


APPLY_COUNTS_SQL = f"""
UPDATE {TAG_TABLE} tag SET post_count = tag.post_count + change.delta
FROM unnest(%s::bigint[], %s::bigint[]) AS change(id, delta)
WHERE tag.id = change.id
"""


def apply_counts(change: CountChange) -> None:
    """Move the stored counts by `change` (2 queries, none when nothing changed)."""
    deltas = change.tags
    if deltas and connection.vendor == "postgresql":
        # The deltas joined to the tags. The ORM's CASE with a WHEN per tag took 35-40 ms of
        # Python to build for an import batch's 150 tags, under the writers' lock (1.3 ms
        # now, measured at 10,000 posts).
        with connection.cursor() as cursor:
            cursor.execute(APPLY_COUNTS_SQL, [list(deltas), list(deltas.values())])
    elif deltas:
        Tag.objects.filter(pk__in=deltas).update(
            post_count=F("post_count")
            + Case(*(When(pk=tag_id, then=Value(delta)) for tag_id, delta in deltas.items()),
                   default=Value(0))
        )
    if change.total:
        updated = Counter.objects.filter(name=Counter.LISTED_POSTS).update(
            value=F("value") + change.total
        )
        if not updated:
            Counter.objects.create(name=Counter.LISTED_POSTS, value=change.total)


def sync_listed_at(rows) -> None:
    """Copy each post's publication date onto `rows` (tag links or search documents) while it
    is published, else NULL (1 query)."""
    rows.update(
        listed_at=Subquery(
            Post.objects.filter(pk=OuterRef("post_id"), status=PublicationStatus.PUBLISHED)
            .values("published_at")[:1]
        )
    )


def after_batch_write(post_ids, before: Contribution) -> None:
    """Bring counts and similar lists up to date after a batch of posts was (re)written.

    `before` is what the batch's posts contributed before the write (nothing for new posts);
    their tag links must already carry listed_at. Call inside the batch's transaction.
    """
    post_ids = list(post_ids)
    after = contribution(post_ids)
    # Ranking is most of the work and only reads, so it runs before the lock, other writers
    # meanwhile going on. The rarity weights must include the batch itself (a first import
    # would otherwise weigh every tag 0), whose counts move only under the lock: the change
    # is passed in. The lists' rows are replaced under the lock, so no other writer's
    # enter/trim waits on them while this one waits for the lock.
    change = CountChange.between(before, after)
    ranked = rank_lists(post_ids, change)
    index_for_search(post_ids)
    take_lock()
    apply_counts(change)
    store_lists(post_ids, ranked)
    holders = enter_lists(post_ids)
    caching.invalidate(changed_keys(post_ids, before, after, change, holders))


def changed_keys(post_ids, before: Contribution, after: Contribution, change: CountChange,
                 holders) -> set[str]:
    """Return the content keys (posts/caching.py) of a write to `post_ids`: the posts and their
    cards, the lists of `holders` (which they entered), and the list pages whose posts or order
    moved (1 query when a listed post's date moved, else none)."""
    keys = {caching.SEARCH, caching.INDEXABLE,
            *(caching.post_key(pk) for pk in (*post_ids, *holders))}
    keys |= {caching.card_key(pk) for pk in post_ids}
    keys |= {caching.tag_list_key(tag_id) for tag_id in change.tags}
    if change.tags:
        keys.add(caching.TAG_INDEX)
    if before.listed != after.listed:
        keys.add(caching.HOME_LIST)
        moved = [pk for pk, published_at in after.listed.items()
                 if before.listed.get(pk, published_at) != published_at]
        if moved:
            tags = PostTag.objects.filter(post_id__in=moved).values_list("tag_id", flat=True)
            keys |= {caching.tag_list_key(tag_id) for tag_id in tags}
    return keys


def posts_changed(post_ids, before: Contribution) -> None:
    """Bring derived data up to date after posts changed in place (admin save, publishing).

    `before` is contribution(post_ids) taken before the change.
    """
    from posts.tasks import refill_similar_lists  # which imports this module

    post_ids = list(post_ids)
    sync_listed_at(PostTag.objects.filter(post_id__in=post_ids))
    after_batch_write(post_ids, before)
    # The lists naming posts taken off the site may be many (a bulk unpublish): a task, queued
    # in this transaction. Until it runs they show one post fewer (readers see published posts
    # only, and each list stores more than it shows).
    if taken_off := list(unlisted(post_ids)):
        refill_similar_lists.enqueue(taken_off)


@contextmanager
def deleting_posts(post_ids):
    """Around deleting posts: take back their counts, then refill lists that named them."""
    post_ids = list(post_ids)
    before = contribution(post_ids)
    holders = set(
        SimilarPost.objects.filter(similar_id__in=post_ids)
        .exclude(post_id__in=post_ids)
        .values_list("post_id", flat=True)
    )
    yield
    take_lock()
    change = CountChange.between(before, Contribution())
    apply_counts(change)
    compute_similar(holders)
    caching.invalidate(changed_keys(post_ids, before, Contribution(), change, holders=()))


def unlisted(post_ids) -> QuerySet:
    """Return the ids of the posts of `post_ids` that are not published (a subquery)."""
    return (
        Post.objects.filter(pk__in=list(post_ids))
        .exclude(status=PublicationStatus.PUBLISHED)
        .values_list("pk", flat=True)
    )


def refill_lists_holding(post_ids, *, lock=False) -> None:
    """Recompute the similar lists that name any of `post_ids` (e.g. they were unpublished);
    with `lock`, take the writers' lock first if there are any (call in a transaction)."""
    if not isinstance(post_ids, QuerySet):
        post_ids = list(post_ids)
        if not post_ids:
            return
    holders = list(
        SimilarPost.objects.filter(similar_id__in=post_ids)
        .exclude(post_id__in=post_ids)
        .values_list("post_id", flat=True)
        .distinct()
    )
    if holders and lock:
        take_lock()
    for start in range(0, len(holders), settings.SIMILAR_BATCH_SIZE):
        compute_similar(holders[start : start + settings.SIMILAR_BATCH_SIZE])


# Search documents.

SEARCH_CONFIG = "english"
SEARCH_TABLE = SearchDocument._meta.db_table
BAND_TABLE = SearchBand._meta.db_table
BANDS = 4  # the migration 0010 made one full-text index per band

# The band of a document listed at `{listed}`: the first whose start it is not before (each
# band's start from the `band` CTE below; an empty band, NULL, takes nothing), the last band
# for older ones, none while unlisted.
BAND_OF = """CASE WHEN {listed} IS NULL THEN NULL
            WHEN {listed} >= (SELECT since FROM band WHERE number = 1) THEN 1
            WHEN {listed} >= (SELECT since FROM band WHERE number = 2) THEN 2
            WHEN {listed} >= (SELECT since FROM band WHERE number = 3) THEN 3
            ELSE 4 END"""

# Title A, summary B, body (intro, sections in order, final notes) C; the post's filter values
# as facets (posts/searching.py); the date the post is listed under while it is published, as
# on its tag links; and that date's band by the starts LOCK_BANDS_SQL has locked.
SEARCH_DOCUMENTS_SQL = f"""
WITH band AS MATERIALIZED (SELECT number, since FROM {BAND_TABLE}),
written AS (
    SELECT p.id,
           setweight(to_tsvector('{SEARCH_CONFIG}', p.title), 'A')
           || setweight(to_tsvector('{SEARCH_CONFIG}', p.summary), 'B')
           || setweight(to_tsvector('{SEARCH_CONFIG}', concat_ws(' ', p.intro,
                  (SELECT string_agg(s.heading || ' ' || s.body, ' ' ORDER BY s.position)
                   FROM {Section._meta.db_table} s WHERE s.post_id = p.id),
                  p.final_notes)), 'C') AS vector,
           array_to_tsvector(ARRAY(
               SELECT DISTINCT 'tag ' || l.tag_id FROM {LINK_TABLE} l WHERE l.post_id = p.id
           ) || ARRAY['difficulty ' || md5(p.difficulty),
                      'language ' || md5(p.code_language)]) AS facets,
           CASE WHEN p.status = '{PublicationStatus.PUBLISHED.value}' THEN p.published_at END
               AS listed_at
    FROM {POST_TABLE} p WHERE p.id = ANY(%s)
)
INSERT INTO {SEARCH_TABLE} (post_id, vector, facets, listed_at, band)
SELECT id, vector, facets, listed_at, {BAND_OF.format(listed="listed_at")} FROM written
ON CONFLICT (post_id) DO UPDATE SET vector = EXCLUDED.vector, facets = EXCLUDED.facets,
    listed_at = EXCLUDED.listed_at, band = EXCLUDED.band
"""


# The band starts, locked until the transaction ends: FOR SHARE by writers of documents, so
# that refresh_search_bands() (FOR UPDATE) never moves them while a write gives bands by them;
# always first, before any document row is locked, and in one order, so that neither side
# can hold what the other waits for.
LOCK_BANDS_SQL = f"SELECT number FROM {BAND_TABLE} ORDER BY number FOR {{mode}}"


def lock_bands(mode: str = "SHARE") -> None:
    with connection.cursor() as cursor:
        cursor.execute(LOCK_BANDS_SQL.format(mode=mode))


def index_for_search(post_ids) -> None:
    """Write the search documents of `post_ids` from their text (2 statements, PostgreSQL:
    the band starts locked, then the documents)."""
    post_ids = list(post_ids)
    if post_ids and connection.vendor == "postgresql":
        lock_bands()
        with connection.cursor() as cursor:
            cursor.execute(SEARCH_DOCUMENTS_SQL, [post_ids])


# Where each band starts: the date of its last document when the newest documents are cut
# after settings.SEARCH_BANDS of them; with fewer documents than that, the oldest date (the
# band holds all that is left); with none, NULL.
BAND_STARTS_SQL = f"""
SELECT COALESCE(
    (SELECT listed_at FROM {SEARCH_TABLE} WHERE listed_at IS NOT NULL
     ORDER BY listed_at DESC, post_id DESC OFFSET %(size)s - 1 LIMIT 1),
    (SELECT listed_at FROM {SEARCH_TABLE} WHERE listed_at IS NOT NULL
     ORDER BY listed_at, post_id LIMIT 1))
"""
# Give the documents of band {number} whose date lies between a band's old and new start
# that band; the others keep theirs: no start moved past them. One statement per band, so that
# the new row versions of a band are written together: a search visits one heap page per
# match, and a band's documents scattered among the others' (as one statement for all bands
# wrote them, in table order) cost a million-post site eight times the pages of a small one.
REBAND_SQL = f"""
WITH band AS MATERIALIZED (SELECT number, since FROM {BAND_TABLE})
UPDATE {SEARCH_TABLE} d SET band = %(number)s
WHERE d.listed_at IS NOT NULL AND ({{ranges}})
  AND d.band IS DISTINCT FROM %(number)s
  AND {BAND_OF.format(listed="d.listed_at")} = %(number)s
"""


FULL_BATCH = 5000  # documents written per statement by refresh_search_bands(full=True)


@transaction.atomic
def refresh_search_bands(full: bool = False) -> int:
    """Move each band's start to where settings.SEARCH_BANDS puts it now, and the documents
    between its old and new start to their new band (all documents with `full`); return how
    many documents moved.

    Writes of search documents wait while the starts move (they lock them FOR SHARE, this FOR
    UPDATE), so every document's band is always that of its date: what a search relies on to
    stop at the newest band with enough matches. The new starts are found before the lock
    (about 1 s at a million posts), so writes wait only for the documents' move. A band grows
    with the posts published into it until this runs again, which costs searches time but
    never a wrong result.

    `full` also writes again the documents without facets (written by code older than
    migration 0010 while it ran) and gives every document its band.
    """
    if connection.vendor != "postgresql":
        return 0
    SearchBand.objects.bulk_create(  # the migration made them; a flushed database has none
        [SearchBand(number=number) for number in range(1, BANDS)], ignore_conflicts=True
    )
    new = {}
    with connection.cursor() as cursor:
        for number, size in enumerate(settings.SEARCH_BANDS, start=1):
            cursor.execute(BAND_STARTS_SQL, {"size": size})
            new[number] = cursor.fetchone()[0]
    lock_bands("UPDATE")
    old = dict(SearchBand.objects.values_list("number", "since"))
    for number, since in new.items():
        SearchBand.objects.filter(number=number).update(since=since)
    if full:
        unfaceted = list(
            SearchDocument.objects.filter(facets__isnull=True).values_list("post_id", flat=True)
        )
        for start in range(0, len(unfaceted), FULL_BATCH):
            index_for_search(unfaceted[start : start + FULL_BATCH])
        ranges = "true"
        params = {}
    else:
        # A band whose start did not move changes no document. NULL (an empty band) is later
        # than any date.
        changed = [(old[n], new[n]) for n in new if old[n] != new[n]]
        if not changed:
            return 0
        ranges = " OR ".join(
            f"d.listed_at >= least(COALESCE(%(before{i})s::timestamptz, 'infinity'), "
            f"COALESCE(%(after{i})s::timestamptz, 'infinity')) "
            f"AND d.listed_at < greatest(COALESCE(%(before{i})s::timestamptz, 'infinity'), "
            f"COALESCE(%(after{i})s::timestamptz, 'infinity'))"
            for i in range(len(changed))
        )
        params = {}
        for i, (before, after) in enumerate(changed):
            params |= {f"before{i}": before, f"after{i}": after}
    moved = 0
    with connection.cursor() as cursor:
        for number in range(1, BANDS + 1):
            cursor.execute(REBAND_SQL.format(ranges=ranges), params | {"number": number})
            moved += cursor.rowcount
    return moved  # what searches find is the same: no page to refresh


# Similar posts.

RANK_LISTS_SQL = f"""
WITH total AS (
    SELECT COALESCE(
        (SELECT value FROM {COUNTER_TABLE} WHERE name = %(counter)s), 0
    )::float8 + %(pending_total)s AS n
),
pending AS (
    -- The count change of the batch being written (not stored yet).
    SELECT * FROM unnest(%(pending_tags)s::bigint[], %(pending_deltas)s::bigint[]) AS d(id, delta)
),
links AS MATERIALIZED (
    SELECT DISTINCT post_id, tag_id, listed_at IS NOT NULL AS listed
    FROM {LINK_TABLE} WHERE post_id = ANY(%(ids)s)
),
counts AS (
    -- Each of the batch's tags with its published posts after the change: the change joined
    -- by hash. (Looked up per link, it was scanned whole for each of the batch's links, which
    -- was more than half of the statement's time in an import batch.)
    SELECT tag.id, tag.post_count + COALESCE(pending.delta, 0) AS post_count
    FROM (SELECT DISTINCT tag_id FROM links) batch
    JOIN {TAG_TABLE} tag ON tag.id = batch.tag_id
    LEFT JOIN pending ON pending.id = batch.tag_id
),
own AS (
    -- The distinct tags of each post, with their rarity weight and rank: rarest first, but
    -- after them the tags no other published post carries (they find no candidates).
    SELECT l.post_id, l.tag_id,
           ln(1 + total.n / greatest(c.post_count, 1)) AS weight,
           row_number() OVER (
               PARTITION BY l.post_id
               ORDER BY c.post_count <= l.listed::int, c.post_count, c.id
           ) AS rarity
    FROM links l JOIN counts c ON c.id = l.tag_id CROSS JOIN total
),
candidates AS (
    -- The newest published posts of each post's rarest tags: one short index range each.
    SELECT DISTINCT o.post_id, c.post_id AS similar_id, c.listed_at
    FROM own o
    CROSS JOIN LATERAL (
        SELECT l.post_id, l.listed_at FROM {LINK_TABLE} l
        WHERE l.tag_id = o.tag_id AND l.listed_at IS NOT NULL
        ORDER BY l.listed_at DESC, l.post_id DESC
        LIMIT %(per_tag)s
    ) c
    WHERE o.rarity <= %(rarest)s AND c.post_id <> o.post_id
),
own_tags AS (
    SELECT post_id, array_agg(tag_id) AS tag_ids, array_agg(weight) AS weights
    FROM own GROUP BY post_id
),
candidate_tags AS MATERIALIZED (
    -- The tags of each distinct candidate, read once: the posts of a batch share their rare
    -- tags, so they mostly share candidates too (one index range of the candidate's links).
    SELECT d.similar_id,
           ARRAY(SELECT l.tag_id FROM {LINK_TABLE} l WHERE l.post_id = d.similar_id) AS tag_ids
    FROM (SELECT DISTINCT similar_id FROM candidates) d
),
ranked AS (
    -- Each candidate scored by every tag the post carries that it carries too.
    SELECT c.post_id, c.similar_id, s.score,
           row_number() OVER (
               PARTITION BY c.post_id ORDER BY s.score DESC, c.listed_at DESC, c.similar_id DESC
           ) AS rank
    FROM candidates c
    JOIN own_tags a ON a.post_id = c.post_id
    JOIN candidate_tags ct ON ct.similar_id = c.similar_id
    CROSS JOIN LATERAL (
        -- Rounded: equal tag sets must tie exactly, whatever order the sum was taken in.
        SELECT round(sum(w.weight)::numeric, %(digits)s)::float8 AS score
        FROM unnest(a.tag_ids, a.weights) AS w(tag_id, weight)
        WHERE w.tag_id = ANY (ct.tag_ids)
    ) s
)
SELECT post_id, similar_id, score FROM ranked WHERE rank <= %(stored)s
"""

STORE_LISTS_SQL = f"""
INSERT INTO {SIMILAR_TABLE} (post_id, similar_id, score)
SELECT * FROM unnest(%(posts)s::bigint[], %(similar)s::bigint[], %(scores)s::float8[])
"""

# A listed post enters the lists of the posts on its own list (the score is symmetric), and
# each of those lists keeps its best entries.
ENTER_LISTS_SQL = f"""
INSERT INTO {SIMILAR_TABLE} (post_id, similar_id, score)
SELECT s.similar_id, s.post_id, s.score
FROM {SIMILAR_TABLE} s
WHERE s.post_id = ANY (
    ARRAY(SELECT id FROM {POST_TABLE} WHERE id = ANY(%(ids)s) AND status = %(published)s)
)
ORDER BY s.similar_id, s.post_id
ON CONFLICT (post_id, similar_id) DO UPDATE SET score = EXCLUDED.score
RETURNING post_id
"""

TRIM_LISTS_SQL = f"""
DELETE FROM {SIMILAR_TABLE} d
USING (
    SELECT s.post_id, s.similar_id,
           row_number() OVER (
               PARTITION BY s.post_id ORDER BY s.score DESC, p.published_at DESC, p.id DESC
           ) AS rank
    FROM {SIMILAR_TABLE} s
    JOIN {POST_TABLE} p ON p.id = s.similar_id
    WHERE s.post_id = ANY (
        ARRAY(SELECT DISTINCT similar_id FROM {SIMILAR_TABLE} WHERE post_id = ANY(%(ids)s))
    )
) r
WHERE d.post_id = r.post_id AND d.similar_id = r.similar_id AND r.rank > %(stored)s
"""


def similar_parameters() -> dict:
    return {
        "counter": Counter.LISTED_POSTS,
        "per_tag": settings.SIMILAR_CANDIDATES_PER_TAG,
        "rarest": settings.SIMILAR_RAREST_TAGS,
        "stored": settings.SIMILAR_POSTS_STORED,
        "published": PublicationStatus.PUBLISHED.value,
        "digits": SCORE_DIGITS,
    }


def compute_similar(post_ids) -> None:
    """Replace the similar lists of `post_ids` with freshly ranked ones (3 queries)."""
    post_ids = list(post_ids)
    store_lists(post_ids, rank_lists(post_ids))
    caching.invalidate(caching.post_key(pk) for pk in post_ids)


def rank_lists(post_ids, pending: CountChange | None = None) -> list[tuple[int, int, float]]:
    """Return the best similar posts of each of `post_ids` as (post, similar, score) rows.

    `pending` is a change to the counts not stored yet (the batch being written), which the
    rarity weights include. Reads only (1 query on PostgreSQL).
    """
    post_ids = list(post_ids)
    if not post_ids:
        return []
    pending = pending or CountChange()
    if connection.vendor != "postgresql":
        return [
            (post_id, similar_id, score)
            for post_id, ranked in rank_similar(post_ids, pending).items()
            for similar_id, score in ranked
        ]
    with connection.cursor() as cursor:
        cursor.execute(RANK_LISTS_SQL, {
            "ids": post_ids,
            "pending_total": pending.total,
            "pending_tags": list(pending.tags),
            "pending_deltas": list(pending.tags.values()),
            **similar_parameters(),
        })
        return cursor.fetchall()


def store_lists(post_ids, rows) -> None:
    """Replace the similar lists of `post_ids` by `rows` from rank_lists() (2 queries)."""
    post_ids = list(post_ids)
    if not post_ids:
        return
    SimilarPost.objects.filter(post_id__in=post_ids).delete()
    if not rows:
        return
    if connection.vendor != "postgresql":
        SimilarPost.objects.bulk_create(
            SimilarPost(post_id=post_id, similar_id=similar_id, score=score)
            for post_id, similar_id, score in rows
        )
        return
    posts, similar, scores = zip(*rows, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            STORE_LISTS_SQL,
            {"posts": list(posts), "similar": list(similar), "scores": list(scores)},
        )


def enter_lists(post_ids) -> set[int]:
    """Put each listed post of `post_ids` on the lists of the posts on its own list; return
    the posts whose lists that changed (2 queries)."""
    post_ids = list(post_ids)
    if not post_ids:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(ENTER_LISTS_SQL, {"ids": post_ids, **similar_parameters()})
            holders = {holder for (holder,) in cursor.fetchall()}
            cursor.execute(TRIM_LISTS_SQL, {"ids": post_ids, **similar_parameters()})
        return holders
    entering = SimilarPost.objects.filter(
        post_id__in=post_ids, post__status=PublicationStatus.PUBLISHED
    ).values_list("similar_id", "post_id", "score")
    SimilarPost.objects.bulk_create(
        [SimilarPost(post_id=p, similar_id=s, score=score) for p, s, score in entering],
        update_conflicts=True, unique_fields=["post", "similar"], update_fields=["score"],
    )
    holders = {p for p, _, _ in entering}
    ranked = SimilarPost.objects.filter(post_id__in=holders).annotate(
        rank=Window(
            RowNumber(),
            partition_by=[F("post_id")],
            order_by=[F("score").desc(), F("similar__published_at").desc(),
                      F("similar_id").desc()],
        )
    )
    extra = ranked.filter(rank__gt=settings.SIMILAR_POSTS_STORED).values_list(
        "post_id", "similar_id"
    )
    SimilarPost.objects.filter(pk__in=list(extra)).delete()
    return holders


def rank_similar(
    post_ids, pending: CountChange | None = None
) -> dict[int, list[tuple[int, float]]]:
    """Return each post's best similar posts as (id, score), by the rule RANK_LISTS_SQL follows,
    with the counts moved by `pending` (not stored yet).

    The plain-Python statement of the rule: the SQLite fallback, and what tests compare the
    PostgreSQL query against.
    """
    pending = pending or CountChange()
    total = listed_post_count() + pending.total
    own = defaultdict(set)
    listed = set()
    for post_id, tag_id, listed_at in PostTag.objects.filter(
        post_id__in=list(post_ids)
    ).values_list("post_id", "tag_id", "listed_at"):
        own[post_id].add(tag_id)
        if listed_at is not None:
            listed.add(post_id)
    counts = {
        tag_id: count + pending.tags.get(tag_id, 0)
        for tag_id, count in Tag.objects.filter(
            pk__in={t for tags in own.values() for t in tags}
        ).values_list("id", "post_count")
    }
    weight = {tag_id: math.log(1 + total / max(n, 1)) for tag_id, n in counts.items()}
    rarest = {
        post_id: sorted(
            tags, key=lambda t: (counts[t] <= (post_id in listed), counts[t], t)
        )[: settings.SIMILAR_RAREST_TAGS]
        for post_id, tags in own.items()
    }
    newest = defaultdict(list)  # tag id -> [(listed_at, post id)], newest first
    for tag_id, listed_at, other in (
        PostTag.objects.filter(
            tag_id__in={t for tags in rarest.values() for t in tags}, listed_at__isnull=False
        )
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("tag_id")],
                order_by=[F("listed_at").desc(), F("post_id").desc()],
            )
        )
        .filter(rank__lte=settings.SIMILAR_CANDIDATES_PER_TAG)
        .values_list("tag_id", "listed_at", "post_id")
    ):
        newest[tag_id].append((listed_at, other))
    candidates = defaultdict(dict)  # post id -> candidate id -> its listed_at
    for post_id, tags in rarest.items():
        for tag_id in tags:
            for listed_at, other in newest[tag_id]:
                if other != post_id:
                    candidates[post_id][other] = listed_at
    their_tags = defaultdict(set)
    for post_id, tag_id in PostTag.objects.filter(
        post_id__in={c for found in candidates.values() for c in found}
    ).values_list("post_id", "tag_id"):
        their_tags[post_id].add(tag_id)
    result = {}
    for post_id, found in candidates.items():
        scored = [
            (round(sum(weight[t] for t in own[post_id] & their_tags[other]), SCORE_DIGITS),
             listed_at, other)
            for other, listed_at in found.items()
        ]
        scored.sort(reverse=True)
        result[post_id] = [
            (other, score) for score, _, other in scored[: settings.SIMILAR_POSTS_STORED]
        ]
    return result


@transaction.atomic
def recount_posts() -> None:
    """Recompute every listing date, tag count and the total from the posts (a repair tool:
    full scans)."""
    sync_listed_at(PostTag.objects.all())
    if connection.vendor == "postgresql":
        lock_bands("UPDATE")  # before the documents' rows, as refresh_search_bands() takes them
    sync_listed_at(SearchDocument.objects.all())
    refresh_search_bands(full=True)  # the dates moved: so may every document's band
    take_lock()
    counts = (
        PostTag.objects.filter(tag_id=OuterRef("pk"), listed_at__isnull=False)
        .order_by()
        .values("tag_id")
        .annotate(posts=Count("post_id", distinct=True))
        .values("posts")
    )
    Tag.objects.update(post_count=Coalesce(Subquery(counts), 0))
    total = Post.objects.filter(status=PublicationStatus.PUBLISHED).count()
    Counter.objects.update_or_create(name=Counter.LISTED_POSTS, defaults={"value": total})
    tag_ids = Tag.objects.values_list("pk", flat=True)
    caching.invalidate([caching.HOME_LIST, caching.TAG_INDEX, caching.SEARCH, caching.INDEXABLE,
                       *(caching.tag_list_key(pk) for pk in tag_ids)])


REFRESH_POSITION = "refresh_similar_position"  # Counter: the last post id a refresh finished
RELEASED_UNTIL = "scheduled_released_until"  # Counter: unix time release_scheduled reached


@transaction.atomic
def release_scheduled(now: datetime.datetime | None = None) -> list[int]:
    """Refresh the cached pages that posts dated for later join once their time has come;
    return the ids of those posts (a constant number of queries, however many).

    Nothing is written when a scheduled post's date passes, so no write invalidates its list
    pages, tag pages, or the similar lists that were keeping it hidden: this does, for every
    post dated after the previous run and up to `now`. Run it every minute (cron); a first run
    looks back as far as a cached page can be old.
    """
    now = now or timezone.now()
    stored = Counter.objects.filter(name=RELEASED_UNTIL).values_list("value", flat=True).first()
    if stored is None:
        oldest = max(settings.PAGE_CACHE_TIMEOUT, settings.CACHE_S_MAXAGE)
        since = now - datetime.timedelta(seconds=oldest)
    else:
        since = datetime.datetime.fromtimestamp(stored, datetime.UTC)
    released = list(
        Post.objects.filter(
            status=PublicationStatus.PUBLISHED, published_at__gt=since, published_at__lte=now
        ).values_list("pk", flat=True)
    )
    if released:
        tags = PostTag.objects.filter(post_id__in=released).values_list("tag_id", flat=True)
        holders = SimilarPost.objects.filter(similar_id__in=released).values_list(
            "post_id", flat=True
        )
        caching.invalidate({
            caching.HOME_LIST,
            caching.SEARCH,
            caching.INDEXABLE,
            caching.TAG_INDEX,
            *(caching.post_key(pk) for pk in (*released, *holders)),
            *(caching.card_key(pk) for pk in released),
            *(caching.tag_list_key(pk) for pk in tags),
        })
    Counter.objects.update_or_create(
        name=RELEASED_UNTIL, defaults={"value": int(now.timestamp())}
    )
    return released


def refresh_position() -> int | None:
    """Return the post id an interrupted refresh_similar got to, or None."""
    return (
        Counter.objects.filter(name=REFRESH_POSITION).values_list("value", flat=True).first()
    )


def refresh_similar(
    *, batch_size: int, workers: int, restart: bool = False, on_progress=None
) -> int:
    """Recompute every post's similar list in id order, `batch_size` posts per transaction.

    Resumable: the last id of every finished stretch is stored, and a later call without
    `restart` goes on from there. With `workers` >= 1 (PostgreSQL), that many threads compute
    batches on their own connections. Memory holds one batch of ids per thread. Returns the
    number of posts whose lists were recomputed.
    """
    start = None if restart else refresh_position()
    position = start or 0
    done = 0
    executor = ThreadPoolExecutor(workers) if workers > 0 else None
    in_flight: deque[tuple[Future, int, int]] = deque()

    def finished(last_id: int, count: int) -> None:
        nonlocal done
        Counter.objects.update_or_create(name=REFRESH_POSITION, defaults={"value": last_id})
        done += count
        if on_progress is not None:
            on_progress(done)

    try:
        while ids := list(
            Post.objects.filter(pk__gt=position).order_by("pk").values_list("pk", flat=True)[
                :batch_size
            ]
        ):
            position = ids[-1]
            if executor is None:
                with transaction.atomic():
                    compute_similar(ids)
                finished(position, len(ids))
                continue
            while len(in_flight) >= workers:
                future, last_id, count = in_flight.popleft()
                future.result()
                finished(last_id, count)
            in_flight.append((executor.submit(compute_similar_in_thread, ids), position, len(ids)))
        while in_flight:
            future, last_id, count = in_flight.popleft()
            future.result()
            finished(last_id, count)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    # Rows naming a post deleted behind Django's back (the table has no foreign keys).
    SimilarPost.objects.exclude(Exists(Post.objects.filter(pk=OuterRef("post_id")))).delete()
    SimilarPost.objects.exclude(Exists(Post.objects.filter(pk=OuterRef("similar_id")))).delete()
    Counter.objects.filter(name=REFRESH_POSITION).delete()
    return done


def compute_similar_in_thread(ids) -> None:
    try:
        with transaction.atomic():
            compute_similar(ids)
    finally:
        connection.close()  # the thread's own connection, back to the pool
