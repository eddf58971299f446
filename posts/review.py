"""Review workflow and publishing, as set-based writes over any queryset of posts.

Every function takes a queryset (a selection in the admin, "select all" included, or one post)
and runs a constant number of statements however many posts it holds: one INSERT ... SELECT
for the history, one UPDATE per table, in one transaction. Publishing and unpublishing also
move the derived listing data (posts/derived.py); the others change only the posts' own pages
(flags, review status), whose cached copies they invalidate. Each returns how many posts it
changed.
"""

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from posts import caching, derived
from posts.models import (
    Post,
    PublicationStatus,
    ReviewAction,
    ReviewEvent,
    Revision,
    RevisionStatus,
)

REASON_MAX_LENGTH = 2000


class ReviewError(ValueError):
    """A review action was asked with bad input (e.g. a flag without a reason)."""


def clean_reason(reason: str, required: bool) -> str:
    """Return the reason stripped; raise ReviewError if it is missing or too long."""
    reason = (reason or "").strip()
    if "\x00" in reason:
        raise ReviewError("The reason contains a NUL character; send plain text.")
    if required and not reason:
        raise ReviewError("A reason is required: say what a reviewer should look at.")
    if len(reason) > REASON_MAX_LENGTH:
        raise ReviewError(
            f"The reason is {len(reason)} characters long; keep it under {REASON_MAX_LENGTH}."
        )
    return reason


def record_events(posts, action: str, actor, reason: str = "") -> None:
    """Append one history row per post of `posts` in a single INSERT ... SELECT."""
    subquery, params = posts.order_by().values("id").query.sql_with_params()
    table = connection.ops.quote_name(ReviewEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (post_id, action, reason, actor_id, created_at) "
            f"SELECT selected.id, %s, %s, %s, %s FROM ({subquery}) AS selected",
            [action, reason, getattr(actor, "pk", None), timezone.now(), *params],
        )


def selection(posts):
    """Lock the rows of `posts`; return (a filter on their ids, the ids) (1 query).

    History and updates then cover exactly these posts, even if another transaction changes
    which posts match `posts` meanwhile; call inside the action's transaction.
    """
    ids = list(posts.order_by().select_for_update(of=("self",)).values_list("pk", flat=True))
    return Post.objects.filter(pk__in=ids), ids


@transaction.atomic
def flag_posts(posts, actor, reason: str) -> int:
    """Flag `posts` as needing human review, with who, when and why."""
    reason = clean_reason(reason, required=True)
    posts, ids = selection(posts)
    record_events(posts, ReviewAction.FLAGGED, actor, reason)
    caching.invalidate([caching.INDEXABLE, *(caching.post_key(pk) for pk in ids)])
    return posts.update(
        needs_human_review=True, flagged_at=timezone.now(), flagged_by=actor, flag_reason=reason
    )


@transaction.atomic
def clear_flags(posts, actor, reason: str = "") -> int:
    """Clear the review flag of the flagged posts among `posts`."""
    reason = clean_reason(reason, required=False)
    posts, ids = selection(posts.filter(needs_human_review=True))
    record_events(posts, ReviewAction.CLEARED, actor, reason)
    caching.invalidate([caching.INDEXABLE, *(caching.post_key(pk) for pk in ids)])
    return posts.update(needs_human_review=False, flagged_at=None, flagged_by=None, flag_reason="")


@transaction.atomic
def mark_reviewed(posts, actor, reason: str = "") -> int:
    """Mark `posts` reviewed: clear their flag, set their revision reviewed as of today."""
    reason = clean_reason(reason, required=False)
    posts, ids = selection(posts)
    record_events(posts, ReviewAction.REVIEWED, actor, reason)
    caching.invalidate([caching.INDEXABLE, *(caching.post_key(pk) for pk in ids)])
    Revision.objects.filter(post__in=posts).update(
        status=RevisionStatus.REVIEWED, last_reviewed=timezone.localdate()
    )
    return posts.update(needs_human_review=False, flagged_at=None, flagged_by=None, flag_reason="")


@transaction.atomic
def publish_posts(posts, actor) -> int:
    """Publish the unpublished posts among `posts`, dated now unless already dated."""
    posts, ids = selection(posts.filter(~Q(status=PublicationStatus.PUBLISHED)))
    before = derived.contribution(ids)
    record_events(posts, ReviewAction.PUBLISHED, actor)
    changed = posts.update(
        status=PublicationStatus.PUBLISHED,
        published_at=Coalesce("published_at", timezone.now()),
    )
    derived.posts_changed(ids, before)
    return changed


@transaction.atomic
def unpublish_posts(posts, actor) -> int:
    """Return the published posts among `posts` to draft."""
    posts, ids = selection(posts.filter(status=PublicationStatus.PUBLISHED))
    before = derived.contribution(ids)
    record_events(posts, ReviewAction.UNPUBLISHED, actor)
    changed = posts.update(status=PublicationStatus.DRAFT)
    derived.posts_changed(ids, before)
    return changed
