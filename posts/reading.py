"""What the reader pages read on PostgreSQL: one statement per page.

The article page needs the post, its revision, tag links, sections, figures and similar posts.
Through the ORM (PostQuerySet.for_article_page() and similar_to()) that is five queries, and
building and compiling them cost more than PostgreSQL spent running them
(docs/queries.md). Here one statement reads the post and its revision as columns and each list
as a JSON array from its own index range, and the lists are turned into the same model
instances the ORM would give, in the attributes for_article_page() fills. Templates and Post's
helpers cannot tell the two apart; the tests run both and compare (tests/test_pages.py).

A list page (list_page) reads one keyset page of cards with each card's stack tag ids, the
page's distinct stack tags once, and the list's stored total or its tag, in one statement; the
ORM path (PostQuerySet.for_listing() and cards()) takes two, and one more for the total or the
tag.

Other databases (the SQLite default) use the ORM paths, which are also the tests' reference.
"""

import datetime
import functools
from dataclasses import dataclass

from django.db import connection, connections, router
from django.db.models import query as django_query

from posts.filters import Filters
from posts.models import (
    CARD_FIELDS,
    Card,
    Counter,
    ImageSource,
    ListedTag,
    Post,
    PostTag,
    PublicationStatus,
    Revision,
    Section,
    SimilarPost,
    Tag,
    TagRole,
)
from posts.pagination import OLDER, Position

NO_FILTERS = Filters()

# Each list is a JSON array of arrays in the column order below.
LINK_COLUMNS = ("id", "role", "position", "listed_at", "tag_id")
TAG_COLUMNS = ("id", "name", "kind", "slug", "post_count")
SECTION_COLUMNS = ("id", "position", "heading", "body")
FIGURE_COLUMNS = ("id", "position", "source", "url", "caption", "placement", "section_position")
SIMILAR_COLUMNS = (
    "id", "title", "slug", "published_at", "code_language", "difficulty", "reading_time",
)
REVISION_COLUMNS = ("status", "version", "last_reviewed")


def reader_connection():
    """Return the connection reader pages read from: a replica on a reader page, else the
    primary (alphanode/routers.py)."""
    return connections[router.db_for_read(Post)]


def _columns(alias, names):
    return ", ".join(f"{alias}.{connection.ops.quote_name(name)}" for name in names)


def _constant(value: str) -> str:
    """One of our own enum values as an SQL string literal, written into a statement.

    Passed as a parameter, a constant is an unknown value to the generic plan of a prepared
    statement, which then looks costlier than planning each execution with the values: the
    list pages were planned again on every request (see _list_sql).
    """
    if not value.isidentifier():
        raise ValueError(f"{value!r} is not a plain name; pass it as a parameter")
    return f"'{value}'"


PUBLISHED = _constant(PublicationStatus.PUBLISHED.value)
STACK = _constant(TagRole.STACK.value)


def _published(alias: str) -> str:
    """What readers may see, as PostQuerySet.published(): published, its date come."""
    return f"{alias}.status = {PUBLISHED} AND {alias}.published_at <= %(now)s"


@functools.cache  # built once per process
def _article_sql(readers_only: bool) -> str:
    post_columns = [field.column for field in Post._meta.concrete_fields]
    return f"""
SELECT {_columns("p", post_columns)},
       r.post_id IS NOT NULL AS has_revision,
       {", ".join(f"r.{name} AS revision_{name}" for name in REVISION_COLUMNS)},
       (SELECT json_agg(json_build_array({_columns("l", LINK_COLUMNS)},
                                         (SELECT json_build_array({_columns("t", TAG_COLUMNS[1:])})
                                            FROM {Tag._meta.db_table} t WHERE t.id = l.tag_id))
                        ORDER BY l.role, l.position)
          FROM {PostTag._meta.db_table} l
         WHERE l.post_id = p.id) AS link_rows,
       (SELECT json_agg(json_build_array({_columns("s", SECTION_COLUMNS)}) ORDER BY s.position)
          FROM {Section._meta.db_table} s WHERE s.post_id = p.id) AS section_rows,
       (SELECT json_agg(json_build_array({_columns("f", FIGURE_COLUMNS)}) ORDER BY f.position)
          FROM {ImageSource._meta.db_table} f WHERE f.post_id = p.id) AS figure_rows,
       (SELECT json_agg(json_build_array({_columns("o", SIMILAR_COLUMNS)})
                        ORDER BY o.score DESC, o.published_at DESC, o.id DESC)
          FROM (SELECT o.*, e.score
                  FROM {SimilarPost._meta.db_table} e
                  JOIN {Post._meta.db_table} o ON o.id = e.similar_id
                 WHERE e.post_id = p.id AND {_published("o")}
                 ORDER BY e.score DESC, o.published_at DESC, o.id DESC
                 LIMIT %(similar)s) o) AS similar_rows
FROM {Post._meta.db_table} p
LEFT JOIN {Revision._meta.db_table} r ON r.post_id = p.id
WHERE p.slug = %(slug)s {"AND " + _published("p") if readers_only else ""}
"""




def article(slug: str, *, readers_only: bool, similar: int, now) -> tuple[Post, list[Post]] | None:
    """Return (post, its similar posts) for the article page of `slug`, or None (1 query).

    The post carries what for_article_page() loads (revision, all_tag_links with their tags,
    section_list, figure_list); `readers_only` limits it to published posts whose date has come.
    Similar posts are published ones only, at most `similar`, best first.
    """
    params = {
        "slug": slug,
        "now": now,
        "similar": similar,
    }
    db = reader_connection()
    with db.cursor() as cursor:
        cursor.execute(_article_sql(readers_only), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return _build(row, db)


_POST_CONVERTERS = {}


def _post_converters(db):
    """The from_db_value of each Post column that has one (JSON lists), by position."""
    if db.alias not in _POST_CONVERTERS:
        found = {}
        for index, field in enumerate(Post._meta.concrete_fields):
            functions = field.get_db_converters(db) + db.ops.get_db_converters(field)
            if functions:
                found[index] = (field, functions)
        _POST_CONVERTERS[db.alias] = found
    return _POST_CONVERTERS[db.alias]


_FIELD_ORDER = {}


def _instance(db, model, names: tuple[str, ...], values):
    """Return model.from_db() of `values` named `names` (from_db wants the model's order),
    as read from connection `db`.

    With the fetch mode a queryset would give it, so a lazy load fails in tests as it would
    on an ORM-loaded instance.
    """
    key = (model, names)
    if key not in _FIELD_ORDER:
        fields = model._meta.concrete_fields
        attnames = [field.attname for field in fields if field.attname in names]
        _FIELD_ORDER[key] = (attnames, [names.index(name) for name in attnames])
    attnames, order = _FIELD_ORDER[key]
    return model.from_db(
        db.alias,
        attnames,
        [values[index] for index in order],
        fetch_mode=django_query.DEFAULT_FETCH_MODE,
    )


def _datetime(text):
    """A timestamp from a JSON array (PostgreSQL writes them in ISO 8601)."""
    return None if text is None else datetime.datetime.fromisoformat(text)


def _build(row, db) -> tuple[Post, list[Post]]:
    fields = Post._meta.concrete_fields
    count = len(fields)
    values = list(row[:count])
    for index, (field, functions) in _post_converters(db).items():
        for function in functions:
            values[index] = function(values[index], field, db)
    post = Post.from_db(
        db.alias,
        [field.attname for field in fields],
        values,
        fetch_mode=django_query.DEFAULT_FETCH_MODE,
    )
    has_revision, *revision_values = row[count : count + 1 + len(REVISION_COLUMNS)]
    link_rows, section_rows, figure_rows, similar_rows = row[count + 1 + len(REVISION_COLUMNS) :]

    revision = None
    if has_revision:
        revision = _instance(
            db, Revision, ("post_id", *REVISION_COLUMNS), [post.pk, *revision_values]
        )
        revision._state.fields_cache["post"] = post
    post._state.fields_cache["revision"] = revision

    tags = {}
    post.all_tag_links = []
    for link_id, role, position, listed_at, tag_id, tag_values in link_rows or ():
        if tag_id not in tags:
            tags[tag_id] = _instance(db, Tag, TAG_COLUMNS, [tag_id, *tag_values])
        link = _instance(
            db,
            PostTag,
            ("post_id", *LINK_COLUMNS),
            [post.pk, link_id, role, position, _datetime(listed_at), tag_id],
        )
        link._state.fields_cache["tag"] = tags[tag_id]
        post.all_tag_links.append(link)
    post.section_list = [
        _instance(db, Section, ("post_id", *SECTION_COLUMNS), [post.pk, *values])
        for values in section_rows or ()
    ]
    post.figure_list = [
        _instance(db, ImageSource, ("post_id", *FIGURE_COLUMNS), [post.pk, *values])
        for values in figure_rows or ()
    ]
    for child in (*post.all_tag_links, *post.section_list, *post.figure_list):
        child._state.fields_cache["post"] = post
    similar = []
    for values in similar_rows or ():
        other = _instance(db, Post, SIMILAR_COLUMNS, values)
        other.published_at = _datetime(other.published_at)
        similar.append(other)
    return post, similar


# A search result's stack tags as [[id, name, slug], ...], each tag read by its primary key (a
# join let the planner hash the whole tag table once per card); list pages read each distinct
# tag once per page instead (STACK_IDS_SQL, PAGE_TAGS_SQL).
STACK_TAGS_SQL = f"""(
    SELECT json_agg(
        (SELECT json_build_array(t.id, t.name, t.slug)
         FROM {Tag._meta.db_table} t WHERE t.id = l.tag_id)
        ORDER BY l.position
    )
    FROM {PostTag._meta.db_table} l
    WHERE l.post_id = p.id AND l.role = {STACK}
)"""


# A list card's stack tags as their ids in order: one index range of the card's links. The
# tags themselves are read once per page (PAGE_TAGS_SQL), not once per card and link: on a
# page of 21 cards that was 63 primary-key lookups, two thirds of the page's buffers.
STACK_IDS_SQL = f"""ARRAY(
    SELECT l.tag_id FROM {PostTag._meta.db_table} l
    WHERE l.post_id = p.id AND l.role = {STACK} ORDER BY l.position
)"""

# The distinct stack tags of the cards in the CTE `card`, as [[id, name, slug], ...].
PAGE_TAGS_SQL = f"""(
    SELECT json_agg(json_build_array(t.id, t.name, t.slug))
    FROM {Tag._meta.db_table} t
    WHERE t.id = ANY (ARRAY(SELECT DISTINCT unnest(c.stack_ids) FROM card c))
)"""


def _seek(date: str, pk: str, direction: str) -> str:
    """The condition that starts a list at the cursor (%(at)s, %(id)s) in `direction`.

    As pagination.seek(): the range bound lets the index scan start at the cursor; the OR
    only sorts out posts published in the same microsecond.
    """
    sign = "<" if direction == OLDER else ">"
    return f"AND {date} {sign}= %(at)s AND ({date} {sign} %(at)s OR {pk} {sign} %(id)s)"


# What a list page says about the whole list, read in the statement of its page of cards: the
# stored total of published posts (home), or the tag with its stored count (a tag page).
HEAD_SQL = {
    False: f"SELECT COALESCE((SELECT value FROM {Counter._meta.db_table} "
           f"WHERE name = {_constant(Counter.LISTED_POSTS)}), 0) AS total",
    # Named apart from the cards' columns (read by position, not by name).
    True: "SELECT " + ", ".join(f"t.{name} AS tag_{name}" for name in TAG_COLUMNS)
          + f" FROM {Tag._meta.db_table} t WHERE t.slug = %(slug)s",
}


def _filter_tag(name: str) -> str:
    return f"(SELECT id FROM {Tag._meta.db_table} WHERE slug = %({name})s)"


@functools.cache  # built once per process and shape
def _list_sql(
    direction: str, has_cursor: bool, of_tag: bool, filtered: tuple, limit: int | None,
) -> str:
    """The statement of a list page: see list_page(). `filtered` is Filters.signature().

    A page from its cursor (`limit` given) has its LIMIT written into the statement; only an
    old ?page=N link, which skips rows, passes %(limit)s and %(offset)s. A LIMIT that is a
    parameter is a tenth of the rows to PostgreSQL's generic plan, which then looks costlier
    than planning each execution, so every list page was planned again: at a million posts
    1.0 -> 0.65 ms per home statement (docs/queries.md).
    """
    order = "DESC" if direction == OLDER else "ASC"
    if limit is None:
        links, window = "%(links)s", "LIMIT %(limit)s OFFSET %(offset)s"
    else:
        links, window = int(limit), f"LIMIT {int(limit)}"
    has_stack, has_tool, has_difficulty, has_language = filtered
    # The tags the posts must carry: the tag page's own, then the filters'.
    tags = [tag for tag, used in (("head.tag_id", of_tag), (_filter_tag("f_stack"), has_stack),
                                  (_filter_tag("f_tool"), has_tool)) if used]
    conditions = [condition for condition, used in (
        ("p.difficulty = %(f_difficulty)s", has_difficulty),
        ("p.code_language = %(f_language)s", has_language),
    ) if used]
    cards = f"{_columns('p', CARD_FIELDS)}, {STACK_IDS_SQL} AS stack_ids"
    if len(tags) == 1 and not conditions:
        # A tag page: the first distinct (listed_at, post) pairs of the tag's links from the
        # cursor, one bounded index range however popular the tag (a post in two roles is
        # one pair), then those posts by primary key.
        cards_sql = f"""
    SELECT {cards}
    FROM {Post._meta.db_table} p
    WHERE {_published("p")}
          AND p.id IN (
              SELECT post_id FROM (
                  SELECT DISTINCT l.listed_at, l.post_id FROM {PostTag._meta.db_table} l
                  WHERE l.tag_id = {tags[0]} AND l.listed_at <= %(now)s
                        {_seek("l.listed_at", "l.post_id", direction) if has_cursor else ""}
                  ORDER BY l.listed_at {order}, l.post_id {order}
                  LIMIT {links}
              ) links
          )
    ORDER BY p.published_at {order}, p.id {order}
    {window}"""
    elif tags:
        # Filtered by tags: walk the first tag's links in date order from the cursor and keep
        # the posts that pass every other filter (each a primary-key or (post, tag) probe),
        # until the page is full.
        driving, *others = tags
        checks = conditions + [
            f"EXISTS (SELECT 1 FROM {PostTag._meta.db_table} o "
            f"WHERE o.post_id = l.post_id AND o.tag_id = {tag})"
            for tag in others
        ]
        cards_sql = f"""
    SELECT {cards}
    FROM (
        SELECT DISTINCT ON (l.listed_at, l.post_id) l.listed_at, l.post_id
        FROM {PostTag._meta.db_table} l
        JOIN {Post._meta.db_table} p ON p.id = l.post_id
        WHERE l.tag_id = {driving} AND l.listed_at <= %(now)s
              AND p.status = {PUBLISHED}
              {_seek("l.listed_at", "l.post_id", direction) if has_cursor else ""}
              {"".join(f" AND {check}" for check in checks)}
        ORDER BY l.listed_at {order}, l.post_id {order}
        {window}
    ) found
    JOIN {Post._meta.db_table} p ON p.id = found.post_id
    ORDER BY p.published_at {order}, p.id {order}"""
    else:
        # All posts, or filtered by their own columns: the listing index from the cursor.
        cards_sql = f"""
    SELECT {cards}
    FROM {Post._meta.db_table} p
    WHERE {_published("p")}
          {"".join(f" AND {condition}" for condition in conditions)}
          {_seek("p.published_at", "p.id", direction) if has_cursor else ""}
    ORDER BY p.published_at {order}, p.id {order}
    {window}"""
    # One row per card after the head's columns, the first also with the page's stack tags; a
    # head without cards is one row whose card columns are NULL, and no row at all means no
    # such tag. The cards are a LATERAL subquery of the head (the tag page's tag id comes from
    # it): a parameter from an outer row keeps PostgreSQL from planning them in parallel. As
    # a CTE of their own, the cards of a tag page filtered by a tool were planned with two
    # workers at a million posts: 22 ms, for a statement that runs in 0.4 ms without them.
    first = f"row_number() OVER (ORDER BY card.published_at {order}, card.id {order}) = 1"
    return f"""
WITH card AS (
    SELECT head.*, card.*
    FROM ({HEAD_SQL[of_tag]}) head
    LEFT JOIN LATERAL ({cards_sql}
    ) card ON true
)
SELECT card.*, CASE WHEN {first} THEN {PAGE_TAGS_SQL} END AS page_tags
FROM card
ORDER BY card.published_at {order}, card.id {order}
"""


@dataclass
class ListPage:
    """A keyset page of cards with what the page says about its whole list."""

    cards: list[Card]
    total: int | None = None  # published posts in all: the home list
    tag: Tag | None = None  # the tag of a tag page, with its stored count


def list_page(
    position: Position, offset: int, limit: int, *, now, tag_slug: str | None = None,
    filters: Filters = NO_FILTERS,
) -> ListPage | None:
    """Return `limit` Cards of published posts (of the tag of `tag_slug`, if given, and
    passing `filters`) from `position`, skipping `offset`, with the list's total or its tag
    (1 query); None when no tag has that slug."""
    of_tag = tag_slug is not None
    key = (
        position.direction, position.cursor is not None, of_tag, filters.signature(),
        limit if offset == 0 else None,
    )
    params = {
        "slug": tag_slug,
        "f_stack": filters.stack,
        "f_tool": filters.tool,
        "f_difficulty": filters.difficulty,
        "f_language": filters.language,
        "now": now,
        "links": offset + limit,
        "limit": limit,
        "offset": offset,
    }
    if position.cursor is not None:
        params |= {"at": position.cursor.at, "id": position.cursor.id}
    db = reader_connection()
    with db.cursor() as cursor:
        cursor.execute(_list_sql(*key), params)
        rows = cursor.fetchall()
    if not rows:
        return None
    width = len(TAG_COLUMNS) if of_tag else 1
    page_tags = next((row[-1] for row in rows if row[-1] is not None), ())
    stack_tags = {tag_id: ListedTag(tag_id, name, slug) for tag_id, name, slug in page_tags}
    cards = [
        Card(*values, stack_tags=[stack_tags[tag_id] for tag_id in stack_ids])
        for *values, stack_ids, _ in (row[width:] for row in rows)
        if values[0] is not None
    ]
    if of_tag:
        return ListPage(cards, tag=_instance(db, Tag, TAG_COLUMNS, rows[0][:width]))
    return ListPage(cards, total=rows[0][0])


def tag(slug: str) -> Tag | None:
    """Return the tag of `slug` with its stored count, or None (1 query, no queryset built)."""
    db = reader_connection()
    with db.cursor() as cursor:
        cursor.execute(HEAD_SQL[True], {"slug": slug})
        row = cursor.fetchone()
    return None if row is None else _instance(db, Tag, TAG_COLUMNS, row)
