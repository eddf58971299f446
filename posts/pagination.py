"""Keyset (seek) pagination for the post lists: every page costs the same, however deep.

A page is addressed by a cursor, the (publication date, id) of the post next to it, instead of
a page number: `?after=C` is the page of posts older than C, `?before=C` the page newer than C,
`?page=last` the oldest posts. The query seeks to the cursor in the listing index and reads one
page plus one row, so page 50,000 costs what page 1 costs. Old `?page=N` links redirect to the
cursor of the same place (one offset scan, then the CDN caches the redirect).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

NEWER, OLDER = "newer", "older"
CURSOR = re.compile(r"(?P<micros>[0-9]{1,19})-(?P<id>[0-9]{1,19})")
PAGE_NUMBER = re.compile(r"[0-9]{1,7}")
MAX_LEGACY_PAGE = 10**6
MAX_ID = 2**63 - 1  # PostgreSQL's bigint


class BadPosition(ValueError):
    """The page address in the query string cannot be read; the message says what to send."""


@dataclass(frozen=True)
class Cursor:
    """A place in a newest-first list: the publication date and id of one post."""

    at: datetime
    id: int

    @classmethod
    def of(cls, post) -> "Cursor":
        return cls(post.published_at, post.pk)

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        match = CURSOR.fullmatch(text)
        if match is None:
            raise BadPosition(
                f"{text[:40]!r} is not a page cursor; expected what the page links give, "
                "e.g. 1767225600000000-42."
            )
        micros = int(match["micros"])
        try:
            at = datetime.fromtimestamp(micros // 10**6, UTC).replace(microsecond=micros % 10**6)
        except (OverflowError, OSError, ValueError):
            raise BadPosition(f"{text[:40]!r} names a date out of range.") from None
        post_id = int(match["id"])
        if post_id > MAX_ID:
            raise BadPosition(f"{text[:40]!r} names a post id out of range.")
        return cls(at, post_id)

    def __str__(self):
        delta = self.at - datetime(1970, 1, 1, tzinfo=UTC)
        micros = (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds
        return f"{micros}-{self.id}"


@dataclass(frozen=True)
class Position:
    """Which page a request asks for: from a cursor towards older or newer posts."""

    direction: str = OLDER
    cursor: Cursor | None = None
    legacy_page: int | None = None  # ?page=N of an old link, to be redirected

    @property
    def is_first(self):
        return self.direction == OLDER and self.cursor is None

    @classmethod
    def from_query(cls, params) -> "Position":
        """Read ?after=, ?before= or ?page= (a number or "last"); raise BadPosition."""
        given = [name for name in ("after", "before", "page") if name in params]
        if len(given) > 1:
            raise BadPosition(f"Give one of after, before or page, not {' and '.join(given)}.")
        if "after" in params:
            return cls(OLDER, Cursor.parse(params["after"]))
        if "before" in params:
            return cls(NEWER, Cursor.parse(params["before"]))
        page = params.get("page")
        if page is None:
            return cls()
        if page == "last":
            return cls(NEWER)
        # Not str.isdigit(): it accepts "²", which int() refuses.
        if not PAGE_NUMBER.fullmatch(page) or not 1 <= int(page) <= MAX_LEGACY_PAGE:
            raise BadPosition(
                f"Page {page[:20]!r} does not exist; expected a page number from 1 or \"last\"."
            )
        return cls(legacy_page=int(page))


@dataclass
class Page:
    """One page of a list, newest first, with the cursors of its neighbours."""

    object_list: list
    newer: Cursor | None  # link ?before=newer, or None on the first page
    older: Cursor | None  # link ?after=older, or None on the last page
    is_first: bool

    @property
    def has_other_pages(self):
        return self.newer is not None or self.older is not None


def seek(queryset: QuerySet, fields: tuple[str, str], position: Position) -> QuerySet:
    """Return `queryset` ordered from `position`'s cursor in its direction along (date, id)."""
    date, pk = fields
    cursor = position.cursor
    if position.direction == OLDER:
        if cursor is not None:
            # The range bound (date <= at) lets the index scan start at the cursor; the OR
            # only sorts out posts published in the same microsecond.
            queryset = queryset.filter(
                Q(**{f"{date}__lt": cursor.at}) | Q(**{f"{pk}__lt": cursor.id}),
                **{f"{date}__lte": cursor.at},
            )
        return queryset.order_by(f"-{date}", f"-{pk}")
    if cursor is not None:
        queryset = queryset.filter(
            Q(**{f"{date}__gt": cursor.at}) | Q(**{f"{pk}__gt": cursor.id}),
            **{f"{date}__gte": cursor.at},
        )
    return queryset.order_by(date, pk)


Seeker = Callable[[Position, int, int], list]  # (position, offset, limit) -> posts


def page_at(seeker: Seeker, position: Position, size: int) -> Page:
    """Return the page at `position` of `size` posts (one query: size + 1 rows)."""
    rows = seeker(position, 0, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    if position.direction == NEWER:
        rows.reverse()
    if position.direction == OLDER:
        newer = Cursor.of(rows[0]) if rows and position.cursor is not None else None
        older = Cursor.of(rows[-1]) if more else None
    else:
        newer = Cursor.of(rows[0]) if more else None
        older = Cursor.of(rows[-1]) if rows and position.cursor is not None else None
    return Page(rows, newer, older, position.is_first)


def legacy_cursor(seeker: Seeker, page: int, size: int) -> Cursor | None:
    """Return the cursor after which old page number `page` starts, None if there is none."""
    rows = seeker(Position(), (page - 1) * size - 1, 1)
    return Cursor.of(rows[0]) if rows else None


class CappedCountPaginator(Paginator):
    """A paginator that counts at most COUNT_CAP + 1 rows.

    Counting every match on every load is the slow part of Django's admin and of the review
    queue at a million posts. Past the cap the page says "more than 10,000" and links the
    pages up to there; filters and search narrow the rest. One query, like a full count.
    """

    COUNT_CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list.order_by()[: self.COUNT_CAP + 1].count()

    @property
    def capped(self):
        """Whether there are more rows than the count says."""
        return self.count > self.COUNT_CAP


class LookaheadPaginator(CappedCountPaginator):
    """A CappedCountPaginator whose count stops PAGES_AHEAD pages past the page asked for.

    The review queue at a million posts has more than 10,000 flagged posts, and counting
    10,001 index entries on every load was most of its database time (1.81 ms, against 0.12
    ms for its page; docs/performance.md). Page 1 now counts at most 51 pages' worth and one
    row more, and says "page 1 of 52 or more"; a deeper page counts as far past itself, so
    every page a reviewer can reach by its links exists.
    """

    PAGES_AHEAD = 50
    DEEPEST = 1_000_000  # a page number past this counts as this one (no bigint overflow)

    def __init__(self, object_list, per_page, number):
        super().__init__(object_list, per_page)
        try:
            number = min(max(int(number), 1), self.DEEPEST)
        except (TypeError, ValueError):
            number = 1  # page() says what was wrong with it
        self.COUNT_CAP = (number + self.PAGES_AHEAD) * per_page

