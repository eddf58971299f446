"""Full-text search of published posts: what /search/ reads.

On PostgreSQL each post has a weighted search vector (posts.SearchDocument: title A, summary
B, body C), its filter values as facets, its listing date and that date's band, kept current
by every write path, with a full-text index per band. A search takes the newest SEARCH_WINDOW
published posts matching the query and the filters, band by band from the newest, and ranks
only those (ts_rank), so a word found in a third of a million posts costs about what a rare
one does: readers get the best of the newest matches, and the page says when there were more.
Highlights (ts_headline) are made for the shown page only. One statement per page, planned
for its words (docs/queries.md says why and what is not flat).

The SQLite default searches titles and summaries for the words, newest first.
"""

import functools
import re
import unicodedata
from dataclasses import dataclass, fields

from django.conf import settings
from django.db import connection, connections, router
from django.db.models import Q
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from posts.derived import BANDS, SEARCH_CONFIG
from posts.filters import Filters
from posts.models import (
    CARD_FIELDS,
    Card,
    ListedTag,
    Post,
    PublicationStatus,
    SearchDocument,
    Tag,
    cards,
)

MAX_QUERY_LENGTH = 200  # characters; a longer query is cut there, and the page says so
# ts_headline marks matches with these; the text is escaped, then they become <mark>.
START, STOP = "\x02", "\x03"
NO_FILTERS = Filters()


@dataclass(frozen=True)
class Query:
    text: str  # what is searched for: cleaned, at most MAX_QUERY_LENGTH characters
    shortened: bool = False  # the reader's query was longer and was cut

    def __bool__(self):
        return bool(self.text)


@dataclass(frozen=True)
class Result:
    card: Card
    highlight: SafeString  # the summary with the matched words in <mark>


@dataclass(frozen=True)
class Results:
    results: list[Result]
    matches: int  # how many of the newest matches were ranked (at most SEARCH_WINDOW)
    more: bool  # more posts matched than were ranked
    page: int
    pages: int


def clean_query(raw: str) -> Query:
    """Return the searchable part of what a reader typed: no control characters (NUL
    included), spaces collapsed, at most MAX_QUERY_LENGTH characters."""
    text = "".join(
        " " if unicodedata.category(char).startswith("C") else char for char in raw or ""
    )
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()
    if len(text) > MAX_QUERY_LENGTH:
        return Query(text[:MAX_QUERY_LENGTH].rstrip(), shortened=True)
    return Query(text)


def search(query: Query, page: int, now, filters: Filters = NO_FILTERS) -> Results:
    """Return page `page` (from 1) of the published posts matching `query` and `filters`,
    best first."""
    size = settings.POSTS_PER_PAGE
    if connection.vendor == "postgresql":
        return _search_postgresql(query, page, size, now, filters)
    return _search_fallback(query, page, size, now, filters)


def pages_of(matches: int, size: int) -> int:
    return max(1, -(-matches // size))


@functools.cache  # built once per process and shape of filters
def _search_sql(filtered: tuple = (False,) * 4) -> str:
    """The search statement; `filtered` is Filters.signature()."""
    from posts.reading import STACK_TAGS_SQL

    columns = ", ".join(f"p.{connection.ops.quote_name(name)}" for name in CARD_FIELDS)
    # The query is written out where it is used (not a CTE) so that the planner sees its words
    # and their frequency.
    query = f"websearch_to_tsquery('{SEARCH_CONFIG}', %(q)s)"
    facets = _facets_query(filtered)
    matching = f"d.vector @@ {query}" + (f" AND d.facets @@ ({facets})" if facets else "")
    documents = SearchDocument._meta.db_table
    # The matches of each band, newest band first; a band is read only while the bands before
    # it have at most a window of matches (a one-time filter: otherwise it never runs). Every
    # document of a band is newer than every document of the next, so once a window's worth
    # (+1, to tell there were more) is found, the newest matches are among them.
    bands = []
    for band in range(1, BANDS + 1):
        before = " + ".join(f"(SELECT count(*) FROM band{n})" for n in range(1, band))
        gate = f"{before} <= %(window)s AND " if before else ""
        bands.append(f"""band{band} AS MATERIALIZED (
    SELECT d.post_id, d.listed_at FROM {documents} d
    WHERE {gate}d.band = {band} AND {matching} AND d.listed_at <= %(now)s
)""")
    found = " UNION ALL ".join(f"SELECT * FROM band{band}" for band in range(1, BANDS + 1))
    stages = ",\n".join(bands)
    return f"""
WITH {stages},
matches AS MATERIALIZED (
    SELECT * FROM ({found}) found
    ORDER BY listed_at DESC, post_id DESC LIMIT %(window)s + 1
),
ranked AS (
    -- The newest window of matches, ranked: their vectors are read here only.
    SELECT m.post_id, m.listed_at, ts_rank(d.vector, {query}) AS rank
    FROM (SELECT * FROM matches ORDER BY listed_at DESC, post_id DESC LIMIT %(window)s) m
    JOIN {documents} d ON d.post_id = m.post_id
    ORDER BY rank DESC, m.listed_at DESC, m.post_id DESC
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT {columns}, {STACK_TAGS_SQL},
       ts_headline('{SEARCH_CONFIG}', p.summary, {query},
                   'StartSel={START}, StopSel={STOP}, MaxWords=45, MinWords=20, MaxFragments=0'),
       (SELECT count(*) FROM matches)
FROM ranked r
JOIN {Post._meta.db_table} p ON p.id = r.post_id
ORDER BY r.rank DESC, r.listed_at DESC, r.post_id DESC
"""


# The filters as lexemes of the documents' facets (posts/derived.py writes them): a tag by
# its id (an unknown address name gives NULL, which nothing matches), difficulty and language
# by the md5 of their value.
FACET_QUERIES = {  # by the parameter of each Filters field
    "f_stack": f"(SELECT ('''tag ' || id || '''')::tsquery FROM {Tag._meta.db_table} "
               "WHERE slug = %(f_stack)s)",
    "f_tool": f"(SELECT ('''tag ' || id || '''')::tsquery FROM {Tag._meta.db_table} "
              "WHERE slug = %(f_tool)s)",
    "f_difficulty": "('''difficulty ' || md5(%(f_difficulty)s) || '''')::tsquery",
    "f_language": "('''language ' || md5(%(f_language)s) || '''')::tsquery",
}


def _facets_query(filtered: tuple) -> str:
    """The tsquery that the facets of a document passing the filters set in `filtered`
    (Filters.signature()) match; empty when none is set."""
    names = [f"f_{field.name}" for field in fields(Filters)]  # Filters.signature()'s order
    return " && ".join(
        FACET_QUERIES[name] for name, used in zip(names, filtered, strict=True) if used
    )


def _run_search(query: Query, now, filters: Filters, *, limit: int, offset: int) -> list[tuple]:
    """Run the search statement (`limit` results from `offset`), planned for these words.

    The statement is not prepared: psycopg prepares a statement run five times on a
    connection, and PostgreSQL may then keep one generic plan for every query, while the GIN
    step (see _search_sql) is best planned with the words' frequencies.
    """
    db = connections[router.db_for_read(Post)]  # a replica on a reader page
    with db.cursor() as cursor:
        raw = db.connection
        threshold = raw.prepare_threshold
        raw.prepare_threshold = None
        try:
            cursor.execute(_search_sql(filters.signature()), {
                "q": query.text,
                "now": now,
                "window": settings.SEARCH_WINDOW,
                "limit": limit,
                "offset": offset,
                "f_stack": filters.stack,
                "f_tool": filters.tool,
                "f_difficulty": filters.difficulty,
                "f_language": filters.language,
            })
        finally:
            raw.prepare_threshold = threshold
        return cursor.fetchall()


def _search_postgresql(query: Query, page: int, size: int, now, filters: Filters) -> Results:
    window = settings.SEARCH_WINDOW
    if not query:
        return Results([], 0, False, 1, 1)
    rows = _run_search(query, now, filters, limit=size, offset=(page - 1) * size)
    found = 0
    results = []
    for *values, stack, headline, count in rows:
        found = count
        card = Card(*values, stack_tags=[
            ListedTag(tag_id, name, slug) for tag_id, name, slug in stack or ()
        ])
        results.append(Result(card, highlight(headline)))
    if not rows and page > 1:
        found = _count_matches(query, now, filters)
    matches = min(found, window)
    return Results(results, matches, found > window, page, pages_of(matches, size))


def _count_matches(query: Query, now, filters: Filters) -> int:
    """How many of the newest window's posts match (for a page past the last)."""
    rows = _run_search(query, now, filters, limit=1, offset=0)
    return rows[0][-1] if rows else 0


def highlight(headline: str) -> SafeString:
    """Return ts_headline's text escaped, with its match markers as <mark> elements."""
    return mark_safe(
        escape(headline).replace(START, "<mark>").replace(STOP, "</mark>")
    )


def _search_fallback(query: Query, page: int, size: int, now, filters: Filters) -> Results:
    if not query:
        return Results([], 0, False, 1, 1)
    words = query.text.replace('"', " ").split()[:10]
    matching = Q()
    for word in words:
        matching &= Q(title__icontains=word) | Q(summary__icontains=word)
    posts = filters.apply(Post.objects.filter(
        matching, status=PublicationStatus.PUBLISHED, published_at__lte=now
    )).order_by("-published_at", "-id")
    window = settings.SEARCH_WINDOW
    found = posts[: window + 1].count()
    start = (page - 1) * size
    shown = cards(posts.for_listing()[start : min(start + size, window)])
    results = [Result(card, mark_safe(escape(card.summary))) for card in shown]
    matches = min(found, window)
    return Results(results, matches, found > window, page, pages_of(matches, size))
