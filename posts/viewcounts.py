"""View counts: counted in Redis on the request, folded into PostgreSQL in batches.

A reader's browser reports a view with a beacon (static/js/views.js -> POST
/posts/<id>/view), which adds 1 to the post's field of one Redis hash: the request touches
no database row, and the article page itself stays cacheable by Redis and the CDN.

`fold_view_counts` moves the counts into Post.view_count:

1. RENAME the hash of pending counts to a fold key of its own (atomic: views counted from
   then on go to a new hash, and two folds never take the same counts);
2. in one transaction, record the fold key in ViewCountFold and add its counts to the posts
   (a fold key already recorded was applied before: its counts are not added twice);
3. delete the fold key.

A fold interrupted after 1 or 2 leaves its fold key in Redis; the next fold finishes it first,
so re-running is always safe, and so is running two at once. Counts still waiting in Redis are
lost if Redis restarts without persistence before they are folded (at most one fold interval
of views; docs/caching.md).
"""

import secrets

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from posts.caching import guarded
from posts.models import Post, ViewCountFold

PENDING = "alphanode:views:pending"
MAX_ID = 2**63 - 1  # a post id is a bigint
FOLDING = "alphanode:views:folding:"  # + the fold's token


def redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def uses_redis() -> bool:
    return bool(settings.REDIS_URL)


def count_view(post_id: int) -> bool:
    """Count one view of post `post_id` (in Redis; without Redis, in the database directly);
    return False for an id no post can have."""
    if not 0 < post_id <= MAX_ID:
        return False
    if not uses_redis():
        Post.objects.filter(pk=post_id).update(view_count=F("view_count") + 1)
        return True
    guarded(lambda: redis().hincrby(PENDING, post_id, 1), None)
    return True


def fold_view_counts() -> tuple[int, int]:
    """Add the views counted in Redis to the posts; return (posts, views) folded."""
    if not uses_redis():
        return 0, 0
    client = redis()
    posts = views = 0
    for key in sorted(k.decode() for k in client.scan_iter(match=FOLDING + "*")):
        folded = fold(client, key)  # left by a fold that was interrupted
        posts, views = posts + folded[0], views + folded[1]
    key = FOLDING + secrets.token_hex(8)
    try:
        client.rename(PENDING, key)
    except Exception as error:  # redis.ResponseError("no such key"): nothing counted since
        if "no such key" not in str(error).lower():
            raise
        return posts, views
    folded = fold(client, key)
    return posts + folded[0], views + folded[1]


def fold(client, key: str) -> tuple[int, int]:
    """Apply the counts under fold key `key` once, then delete it; return (posts, views)."""
    counts = {}
    for post_id, n in client.hgetall(key).items():
        try:
            post_id, n = int(post_id), int(n)
        except ValueError:
            continue  # not written by count_view(): nothing to add
        if 0 < post_id <= MAX_ID and n > 0:
            counts[post_id] = n
    token = key.removeprefix(FOLDING)
    with transaction.atomic():
        _, created = ViewCountFold.objects.get_or_create(
            token=token, defaults={"posts": len(counts), "views": sum(counts.values())}
        )
        if created and counts:
            add_views(counts)
    client.delete(key)
    return (len(counts), sum(counts.values())) if created else (0, 0)


def add_views(counts: dict[int, int]) -> None:
    """Add counts to posts' view_count in one statement (posts deleted since are skipped)."""
    ids, deltas = list(counts), list(counts.values())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Post._meta.db_table} p SET view_count = p.view_count + c.delta "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS c(id, delta) WHERE p.id = c.id",
                [ids, deltas],
            )
        return
    for post_id, delta in counts.items():
        Post.objects.filter(pk=post_id).update(view_count=F("view_count") + delta)
