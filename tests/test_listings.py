"""Derived listing data kept current by every write path: keyset pages, counts, similar posts."""

import dataclasses
import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from posts import derived, views
from posts.generation import generate_records
from posts.importing import Importer
from posts.models import (
    Counter,
    Post,
    PostTag,
    PublicationStatus,
    SimilarPost,
    Tag,
    TagKind,
    TagRole,
)
from posts.pagination import NEWER, OLDER, Cursor, Position
from posts.review import publish_posts, unpublish_posts
from posts.serialization import dumps, record_to_dict
from posts.services import save_posts
from tests.factories import PostFactory, PostTagFactory, TagFactory

pytestmark = pytest.mark.django_db


def jsonl(records):
    return "".join(dumps(record_to_dict(record)) + "\n" for record in records)


def import_records(records, batch_size=50):
    return Importer(batch_size=batch_size).run(
        [("f", io.BytesIO(jsonl(records).encode()), "jsonl")]
    )


def stored_counts():
    """Return (total, {tag id: count}) as stored."""
    return derived.listed_post_count(), dict(Tag.objects.values_list("id", "post_count"))


def true_counts():
    """Return (total, {tag id: count}) counted from the posts themselves."""
    published = Post.objects.filter(status=PublicationStatus.PUBLISHED)
    counts = {
        tag.pk: published.filter(tag_links__tag=tag).distinct().count()
        for tag in Tag.objects.all()
    }
    return published.count(), counts


def stored_lists():
    """Return {post id: [similar ids, best first]} as stored."""
    lists = {}
    for post_id, similar_id in SimilarPost.objects.order_by(
        "post_id", "-score", "-similar__published_at", "-similar_id"
    ).values_list("post_id", "similar_id"):
        lists.setdefault(post_id, []).append(similar_id)
    return lists


def links_listed_at_agree_with_posts():
    for link in PostTag.objects.select_related("post"):
        expected = (link.post.published_at
                    if link.post.status == PublicationStatus.PUBLISHED else None)
        assert link.listed_at == expected, link


# Keyset pages.


def listing_urls(client, url):
    """Follow "older posts" from `url` to the end; return the titles of every page."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = response.context["page"]
        pages.append([post.title for post in page.object_list])
        url = f"{response.request['PATH_INFO']}?after={page.older}" if page.older else None
    return pages


@pytest.fixture
def thirteen_posts(settings):
    settings.POSTS_PER_PAGE = 5
    now = timezone.now()
    # Two posts share a publication date, 5th and 6th newest: the id breaks the tie across
    # the boundary of the first two pages.
    dates = [now - datetime.timedelta(hours=n) for n in [*range(12), 4]]
    return [PostFactory(title=f"post {n}", published_at=date, tag_count=1)
            for n, date in enumerate(dates)]


def newest_first(posts):
    ordered = sorted(posts, key=lambda post: (post.published_at, post.pk), reverse=True)
    return [post.title for post in ordered]


@pytest.mark.parametrize("url", ["/", "/tags/tool-tool-0/"])
def test_older_links_walk_every_post_once_newest_first(client, thirteen_posts, url):
    pages = listing_urls(client, url)

    assert [len(page) for page in pages] == [5, 5, 3]
    assert [title for page in pages for title in page] == newest_first(thirteen_posts)


@pytest.mark.parametrize("url", ["/", "/tags/tool-tool-0/"])
def test_newer_links_walk_back_from_the_last_page(client, thirteen_posts, url):
    expected = newest_first(thirteen_posts)
    response = client.get(url, {"page": "last"})
    page = response.context["page"]
    assert [post.title for post in page.object_list] == expected[-5:]
    assert page.older is None

    middle = client.get(url, {"before": str(page.newer)}).context["page"]
    assert [post.title for post in middle.object_list] == expected[-10:-5]
    assert middle.older is not None and middle.newer is not None

    # The next step reaches the newest posts: the list's first page says it best.
    response = client.get(url, {"before": str(middle.newer)})
    assert response.status_code == 302
    assert response["Location"] == url


def test_page_links_are_in_the_html(client, thirteen_posts):
    first = client.get("/")
    html = first.content.decode()
    assert f'href="?after={first.context["page"].older}"' in html
    assert 'href="?page=last"' in html
    assert "13 posts" in html
    assert "?before=" not in html  # nothing is newer than the first page


@pytest.mark.parametrize("page_number", [2, 3])
def test_old_page_numbers_redirect_to_the_same_place(client, thirteen_posts, page_number):
    response = client.get("/", {"page": str(page_number)})

    assert response.status_code == 302  # temporary: the place moves as posts are published
    landed = client.get(response["Location"]).context["page"]
    expected = newest_first(thirteen_posts)[(page_number - 1) * 5 : page_number * 5]
    assert [post.title for post in landed.object_list] == expected


def test_page_one_redirects_to_the_list(client, thirteen_posts):
    response = client.get("/tags/tool-tool-0/", {"page": "1"})
    assert (response.status_code, response["Location"]) == (301, "/tags/tool-tool-0/")


def test_keyset_pages_hide_drafts_and_scheduled_posts(client, settings):
    settings.POSTS_PER_PAGE = 2
    visible = PostFactory.create_batch(3, tag_count=1)
    PostFactory(draft=True, tag_count=1)
    PostFactory(published_at=timezone.now() + datetime.timedelta(days=1), tag_count=1)

    for url in ("/", "/tags/tool-tool-0/"):
        titles = [title for page in listing_urls(client, url) for title in page]
        assert titles == newest_first(visible)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("url", ["/", "/tags/tool-tool-0/"])
def test_list_queries_are_the_same_on_every_page(
    client, thirteen_posts, django_assert_num_queries, url, where
):
    first = client.get(url).context["page"]
    query = {"first": {}, "middle": {"after": str(first.older)}, "last": {"page": "last"}}[where]

    # One statement: the posts with their stack tags, and the stored total or the tag
    with django_assert_num_queries(1):
        response = client.get(url, query)

    assert response.status_code == 200


@pytest.fixture
def twenty_thousand_posts():
    """A post with one tag, and 20,000 copies made in SQL (as bench/ clones posts): enough
    rows for the planner to weigh a page as it does on a real site. Returns the tag."""
    post = PostFactory(tag_count=1)
    columns = [field.column for field in Post._meta.concrete_fields if field.column != "id"]
    copied = [f"{column} || '-' || n" if column in ("slug", "reference", "source_id")
              else column for column in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Post._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(copied)} FROM {Post._meta.db_table}, generate_series(1, 20000) n "
            "WHERE id = %s",
            [post.pk],
        )
        cursor.execute(
            f"INSERT INTO {PostTag._meta.db_table} (role, position, post_id, tag_id, listed_at) "
            f"SELECT l.role, l.position, p.id, l.tag_id, l.listed_at "
            f"FROM {PostTag._meta.db_table} l JOIN {Post._meta.db_table} p ON p.id <> l.post_id "
            "WHERE l.post_id = %s",
            [post.pk],
        )
        cursor.execute(f"ANALYZE {Post._meta.db_table}, {PostTag._meta.db_table}")
    return PostTag.objects.select_related("tag").get(post=post).tag


@pytest.mark.parametrize("url", ["/", "/?page=last", "tag"])
def test_a_list_statement_is_planned_once_per_connection(client, twenty_thousand_posts, url):
    # PostgreSQL plans a prepared statement with its parameters' values five times, then keeps
    # a generic plan unless that one looks costlier. With its LIMIT a parameter it always did
    # (a tenth of the table), and every list page was planned again (reading._list_sql).
    if url == "tag":
        url = twenty_thousand_posts.get_absolute_url()
    for _ in range(15):
        assert client.get(url).status_code == 200

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%WITH card AS%"],
        )
        plans = cursor.fetchall()
    # psycopg prepares it on its 6th run; PostgreSQL plans it for the values 5 times more.
    assert plans == [(5, 5)]


# Counts.


def test_counts_follow_imports_reimports_and_changes():
    records = list(generate_records(60, seed=41))
    import_records(records)
    assert stored_counts() == true_counts()
    total = derived.listed_post_count()
    assert 0 < total < 60  # the generator writes drafts too

    # Half of them change status, tags and all: the counts move by the difference.
    changed = [
        dataclasses.replace(record, status="draft", published_at=None) if n % 2 else
        dataclasses.replace(record, tools=("a rare tool",))
        for n, record in enumerate(records)
    ]
    import_records(changed, batch_size=7)
    assert stored_counts() == true_counts()

    import_records(changed)  # unchanged: nothing moves
    assert stored_counts() == true_counts()


def test_counts_follow_publishing_unpublishing_and_deleting(admin_client):
    posts = PostFactory.create_batch(4, tag_count=2)
    draft = PostFactory(draft=True, tag_count=2)
    assert stored_counts() == true_counts() and derived.listed_post_count() == 4

    unpublish_posts(Post.objects.filter(pk__in=[posts[0].pk, posts[1].pk]), None)
    assert stored_counts() == true_counts() and derived.listed_post_count() == 2
    publish_posts(Post.objects.filter(pk=draft.pk), None)
    assert stored_counts() == true_counts() and derived.listed_post_count() == 3
    links_listed_at_agree_with_posts()

    response = admin_client.post(
        reverse("admin:posts_post_delete", args=[posts[2].pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert stored_counts() == true_counts() and derived.listed_post_count() == 2


def test_recount_posts_repairs_the_counts():
    PostFactory.create_batch(3, tag_count=2)
    Tag.objects.update(post_count=99)
    Counter.objects.update(value=-5)
    PostTag.objects.update(listed_at=None)

    derived.recount_posts()

    assert stored_counts() == true_counts()
    links_listed_at_agree_with_posts()


def test_tag_page_shows_its_stored_count(client):
    tag = TagFactory(kind=TagKind.STACK, name="django")
    for post in PostFactory.create_batch(3, tag_count=0):
        PostTagFactory(post=post, tag=tag)
    assert "3 posts" in client.get(tag.get_absolute_url()).content.decode()
    Tag.objects.filter(pk=tag.pk).update(post_count=99)  # the page reads it, never counts
    assert "99 posts" in client.get(tag.get_absolute_url()).content.decode()


# Similar posts.


def test_sql_ranking_agrees_with_the_plain_python_rule(settings):
    settings.SIMILAR_CANDIDATES_PER_TAG = 12  # so that candidate pools are cut short too
    import_records(list(generate_records(150, seed=42)))
    ids = list(Post.objects.values_list("pk", flat=True))

    derived.compute_similar(ids)  # every list from the same counts

    expected = {
        post_id: [similar_id for similar_id, _ in ranked]
        for post_id, ranked in derived.rank_similar(ids).items()
        if ranked
    }
    assert stored_lists() == expected
    assert len(expected) > 100


def test_ranking_with_a_pending_count_change_is_ranking_after_it(settings):
    """Import batches rank before their counts are stored, passing the change in."""
    settings.SIMILAR_CANDIDATES_PER_TAG = 12
    import_records(list(generate_records(150, seed=43)))
    ids = list(Post.objects.order_by("pk").values_list("pk", flat=True))[:60]
    tags = dict(Tag.objects.order_by("pk").values_list("pk", "post_count")[:6])
    # Rarer and commoner tags than stored, and more posts in all: the weights change.
    pending = derived.CountChange({tag_id: (-1) ** n * count // 2 or 3
                                   for n, (tag_id, count) in enumerate(tags.items())}, 40)

    ranked = derived.rank_lists(ids, pending)
    in_python = derived.rank_similar(ids, pending)
    Tag.objects.bulk_update(
        [Tag(pk=tag_id, post_count=tags[tag_id] + delta)
         for tag_id, delta in pending.tags.items()],
        ["post_count"],
    )
    Counter.objects.filter(name=Counter.LISTED_POSTS).update(value=F("value") + pending.total)

    def scored(rows):
        return {(post, similar): round(score, 6) for post, similar, score in rows}

    assert scored(ranked) == scored(derived.rank_lists(ids))
    assert scored(ranked) != scored(
        derived.rank_lists(ids, derived.CountChange(total=-pending.total))
    )
    assert scored(ranked) == scored(
        (post_id, similar_id, score)
        for post_id, found in in_python.items()
        for similar_id, score in found
    )


def test_rare_shared_tags_outrank_common_ones(client):
    # Everyone carries "tool 0"; only the post and `rare` carry "a rare tag".
    post = PostFactory(tag_count=1)
    PostTagFactory(post=post, tag=TagFactory(name="a rare tag"))
    rare = PostFactory(tag_count=1, published_at=timezone.now() - datetime.timedelta(days=90))
    PostTagFactory(post=rare, tag=TagFactory(name="a rare tag"))
    newer_common = PostFactory.create_batch(8, tag_count=1)

    similar = list(client.get(post.get_absolute_url()).context["similar_posts"])

    assert similar[0] == rare  # older, but sharing the rare tag
    assert similar[1:] == sorted(newer_common, key=lambda p: p.published_at, reverse=True)[:5]


def test_import_batch_gives_new_posts_lists_and_enters_older_lists():
    import_records(list(generate_records(40, seed=43)), batch_size=40)
    first = set(Post.objects.values_list("pk", flat=True))
    import_records(list(generate_records(40, seed=44)), batch_size=40)
    second = set(Post.objects.values_list("pk", flat=True)) - first

    lists = stored_lists()
    assert all(lists.get(pk) for pk in second if Post.objects.get(pk=pk).status == "published")
    entered = {similar for pk in first for similar in lists.get(pk, [])} & second
    assert entered  # posts of the second batch now stand on lists of the first


def test_generator_keeps_similar_lists():
    save_posts(generate_records(30, seed=45), batch_size=10)
    assert stored_lists()
    assert derived.listed_post_count() == Post.objects.filter(status="published").count()


def test_unpublished_posts_leave_lists_and_lists_refill(client):
    post = PostFactory(tag_count=1)
    others = PostFactory.create_batch(9, tag_count=1)
    shown = list(client.get(post.get_absolute_url()).context["similar_posts"])
    assert len(shown) == 6

    unpublish_posts(Post.objects.filter(pk__in=[p.pk for p in shown]), None)

    after = list(client.get(post.get_absolute_url()).context["similar_posts"])
    assert not set(after) & set(shown)
    assert set(after) == set(others) - set(shown)  # refilled from the posts still published
    assert not SimilarPost.objects.filter(similar__in=shown).exists()


def test_publishing_a_post_puts_it_on_lists():
    post = PostFactory(tag_count=1)
    draft = PostFactory(draft=True, tag_count=1)
    assert not SimilarPost.objects.filter(similar=draft).exists()

    publish_posts(Post.objects.filter(pk=draft.pk), None)

    assert SimilarPost.objects.filter(post=post, similar=draft).exists()
    assert SimilarPost.objects.filter(post=draft, similar=post).exists()


def test_readers_never_see_a_draft_or_scheduled_post_among_similar(client):
    post = PostFactory(tag_count=1)
    draft = PostFactory(tag_count=1)
    scheduled = PostFactory(tag_count=1, published_at=timezone.now() + datetime.timedelta(days=2))
    # Stale lists, as between two refreshes: the read-time filter still hides them.
    Post.objects.filter(pk=draft.pk).update(status=PublicationStatus.DRAFT, published_at=None)

    similar = client.get(post.get_absolute_url()).context["similar_posts"]

    assert SimilarPost.objects.filter(post=post, similar__in=[draft, scheduled]).count() == 2
    assert draft not in similar and scheduled not in similar


def test_admin_edit_of_tags_recomputes_lists(admin_client):
    post = PostFactory(tag_count=1)
    lonely = PostFactory(tag_count=0)
    PostTagFactory(post=lonely, tag=TagFactory(name="nobody else"))
    assert not SimilarPost.objects.filter(post=lonely).exists()
    link = PostTag.objects.get(post=lonely)
    url = reverse("admin:posts_post_change", args=[lonely.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: form[name].value() if form[name].value() is not None else ""
            for name in form.fields}
    data.update(checklist="\n".join(lonely.checklist), notes="\n".join(lonely.notes))
    inline_data = {
        "revision-TOTAL_FORMS": "1", "revision-INITIAL_FORMS": "1",
        "revision-0-post": lonely.pk, "revision-0-version": "1.0.0",
        "revision-0-status": "reviewed",
        "sections-TOTAL_FORMS": "0", "sections-INITIAL_FORMS": "0",
        "figures-TOTAL_FORMS": "0", "figures-INITIAL_FORMS": "0",
        "tag_links-TOTAL_FORMS": "2", "tag_links-INITIAL_FORMS": "1",
        "tag_links-0-id": link.pk, "tag_links-0-post": lonely.pk, "tag_links-0-role": "tool",
        "tag_links-0-position": "0", "tag_links-0-tag": link.tag_id,
        "tag_links-1-post": lonely.pk, "tag_links-1-role": "tool", "tag_links-1-position": "1",
        "tag_links-1-tag": Tag.objects.get(name="tool 0").pk,
        "review_events-TOTAL_FORMS": "0", "review_events-INITIAL_FORMS": "0",
    }
    data.update(inline_data)
    data["published_at_0"], data["published_at_1"] = (
        lonely.published_at.strftime("%Y-%m-%d"), lonely.published_at.strftime("%H:%M:%S")
    )

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    assert SimilarPost.objects.filter(post=lonely, similar=post).exists()
    assert SimilarPost.objects.filter(post=post, similar=lonely).exists()
    assert stored_counts() == true_counts()


def test_deleting_a_post_refills_the_lists_that_named_it(admin_client):
    post = PostFactory(tag_count=1)
    others = PostFactory.create_batch(9, tag_count=1)
    named = SimilarPost.objects.filter(post=post).order_by("-score", "-similar__published_at")
    victim = named.select_related("similar").first().similar

    admin_client.post(reverse("admin:posts_post_delete", args=[victim.pk]), {"post": "yes"})

    assert not Post.objects.filter(pk=victim.pk).exists()
    remaining = set(SimilarPost.objects.filter(post=post).values_list("similar_id", flat=True))
    assert len(remaining) == 8
    assert remaining <= {p.pk for p in others}


# Commands.


def test_refresh_similar_recomputes_every_list(settings):
    import_records(list(generate_records(60, seed=46)))
    SimilarPost.objects.all().delete()
    out = io.StringIO()

    call_command("refresh_similar", "--batch-size=7", "--workers=0", stdout=out, stderr=out)

    assert "recomputed the similar posts of 60 posts" in out.getvalue()
    ids = list(Post.objects.values_list("pk", flat=True))
    expected = {
        post_id: [similar_id for similar_id, _ in ranked]
        for post_id, ranked in derived.rank_similar(ids).items()
        if ranked
    }
    assert stored_lists() == expected  # the rule, over the final counts
    assert derived.refresh_position() is None  # a finished run leaves nothing to resume


def test_refresh_similar_resumes_after_an_interruption(monkeypatch):
    import_records(list(generate_records(30, seed=47)))
    SimilarPost.objects.all().delete()
    ids = sorted(Post.objects.values_list("pk", flat=True))
    real = derived.compute_similar
    calls, failed = [], []

    def failing_third_batch(post_ids):
        calls.append(list(post_ids))
        if len(calls) == 3 and not failed:
            failed.append(True)
            raise ConnectionError("the database went away")
        real(post_ids)

    monkeypatch.setattr(derived, "compute_similar", failing_third_batch)
    with pytest.raises(ConnectionError):
        call_command("refresh_similar", "--batch-size=5", "--workers=0", stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert derived.refresh_position() == ids[9]  # two batches of 5 finished

    calls.clear()
    err = io.StringIO()
    call_command("refresh_similar", "--batch-size=5", "--workers=0", stdout=io.StringIO(),
                 stderr=err)

    assert f"Resuming after post id {ids[9]}: 20 posts to go." in err.getvalue()
    assert calls[0][0] == ids[10]  # the finished batches were not redone
    expected = {pk for pk, ranked in derived.rank_similar(ids).items() if ranked}
    assert set(stored_lists()) == expected  # every list is there: those of both runs


@pytest.mark.parametrize("option", ["--batch-size=0", "--workers=-1"])
def test_refresh_similar_refuses_bad_options(option):
    with pytest.raises(CommandError, match="must be"):
        call_command("refresh_similar", option, stdout=io.StringIO(), stderr=io.StringIO())


def test_recount_posts_command():
    PostFactory.create_batch(2, tag_count=1)
    Tag.objects.update(post_count=0)
    out = io.StringIO()

    call_command("recount_posts", stdout=out)

    assert out.getvalue() == "recounted: 2 published posts\n"
    assert stored_counts() == true_counts()


def test_refresh_similar_drops_rows_of_posts_deleted_behind_djangos_back():
    from django.db import connection

    posts = PostFactory.create_batch(3, tag_count=1)
    with connection.cursor() as cursor:  # hand-written SQL: no cascade to the derived rows
        cursor.execute("DELETE FROM posts_posttag WHERE post_id = %s", [posts[0].pk])
        cursor.execute("DELETE FROM posts_revision WHERE post_id = %s", [posts[0].pk])
        cursor.execute("DELETE FROM posts_section WHERE post_id = %s", [posts[0].pk])
        cursor.execute("DELETE FROM posts_post WHERE id = %s", [posts[0].pk])

    call_command("refresh_similar", "--workers=0", stdout=io.StringIO(), stderr=io.StringIO())

    remaining = SimilarPost.objects.values_list("post_id", "similar_id")
    assert posts[0].pk not in {pk for pair in remaining for pk in pair}
    assert set(remaining) == {(posts[1].pk, posts[2].pk), (posts[2].pk, posts[1].pk)}


@pytest.mark.parametrize("batch_size", [7, 100])
def test_imported_lists_equal_a_recompute(batch_size):
    # Into an empty database: the batch's own counts must weigh its lists.
    import_records(list(generate_records(60, seed=48)), batch_size=batch_size)
    imported = {post_id: set(similar) for post_id, similar in stored_lists().items()}
    ids = list(Post.objects.values_list("pk", flat=True))

    derived.compute_similar(ids)

    recomputed = {post_id: set(similar) for post_id, similar in stored_lists().items()}
    # The same posts have lists, weighed by real counts, and mostly the same entries: lists
    # written by an earlier batch saw smaller counts (docs/queries.md: how stale they get).
    assert imported.keys() == recomputed.keys()
    total = sum(len(entries) for entries in recomputed.values())
    agreed = sum(len(recomputed[pk] & imported[pk]) for pk in recomputed)
    assert agreed / total >= 0.6
    assert all(score > 0 for score in SimilarPost.objects.values_list("score", flat=True))


def test_publishing_a_post_with_a_rare_tag_finds_the_one_other_post_carrying_it():
    old = PostFactory(tag_count=3)
    PostTagFactory(post=old, tag=TagFactory(name="rare"))
    PostFactory.create_batch(5, tag_count=3)
    draft = PostFactory(draft=True, tag_count=3)
    PostTagFactory(post=draft, tag=TagFactory(name="rare"))

    publish_posts(Post.objects.filter(pk=draft.pk), None)

    best = SimilarPost.objects.filter(post=draft).order_by("-score").first()
    assert best.similar_id == old.pk


def test_an_import_that_unpublishes_a_post_takes_it_off_every_list():
    records = list(generate_records(30, seed=49))
    import_records(records)
    victim = next(r for r in records if r.status == "published")
    victim_id = Post.objects.get(source_id=victim.source_id).pk
    assert SimilarPost.objects.filter(similar_id=victim_id).exists()

    import_records([dataclasses.replace(victim, status="draft", published_at=None)])

    assert not SimilarPost.objects.filter(similar_id=victim_id).exists()


@pytest.mark.parametrize("of_tag", [False, True], ids=["latest", "tag"])
def test_one_statement_lists_read_what_the_orm_reads(of_tag):
    now = timezone.now()
    tag = TagFactory(kind=TagKind.STACK, name="django")
    other = TagFactory(kind=TagKind.STACK, name="python")
    # Ties on the publication date, drafts and scheduled posts, a post carrying the tag in
    # two roles, posts without the tag: every case the seek conditions must sort out.
    dates = [now - datetime.timedelta(hours=n // 2) for n in range(24)]
    posts = [PostFactory(published_at=date, tag_count=1) for date in dates]
    posts.append(PostFactory(status=PublicationStatus.DRAFT, tag_count=1))
    posts.append(PostFactory(published_at=now + datetime.timedelta(days=1), tag_count=1))
    for n, post in enumerate(posts):
        if n % 3:
            PostTagFactory(post=post, tag=tag, role=TagRole.STACK, position=1)
        if n % 2:
            PostTagFactory(post=post, tag=other, role=TagRole.STACK, position=0)
        if n % 5 == 0:
            PostTagFactory(post=post, tag=tag, role=TagRole.ENTITY, position=0)
    one_statement = views.CardList(tag.slug if of_tag else None)
    orm = views.CardList(tag.slug if of_tag else None).cards_orm
    first = orm(Position(), 0, 30)
    cursors = [Cursor.of(card) for card in first[::4]]
    positions = [Position(), Position(NEWER), *(Position(OLDER, c) for c in cursors),
                 *(Position(NEWER, c) for c in cursors)]

    for position in positions:
        for offset, limit in [(0, 6), (3, 1), (0, 30)]:
            assert one_statement(position, offset, limit) == orm(position, offset, limit), (
                position, offset, limit)
    assert any(card.stack_tags for card in first)
