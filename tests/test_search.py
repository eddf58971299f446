"""Full-text search (/search/, posts/searching.py)."""

import datetime
import io
import itertools
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from posts import derived, review
from posts.models import Post, SearchDocument, TagKind, TagRole
from posts.searching import MAX_QUERY_LENGTH, clean_query
from tests.factories import PostFactory, PostTagFactory, SectionFactory, TagFactory
from tests.test_admin import change_form_data, change_url

pytestmark = pytest.mark.django_db

SEARCH = reverse("posts:search")


def titles(response):
    return [result.card.title for result in response.context["found"].results]


def search(client, q, **extra):
    response = client.get(SEARCH, {"q": q, **extra})
    assert response.status_code == 200, response.content[:500]
    return response


def test_title_matches_rank_above_summary_above_body(client):
    body = PostFactory(title="plain one", summary="nothing here", section_count=0)
    SectionFactory(post=body, heading="notes", body="we tuned the autovacuum daemon")
    PostFactory(title="plain two", summary="how autovacuum keeps tables lean")
    PostFactory(title="autovacuum explained", summary="a look inside")
    PostFactory(title="unrelated", summary="about caching")
    derived.index_for_search([body.pk])  # its section came after its write, as an edit's would

    assert titles(search(client, "autovacuum")) == [
        "autovacuum explained", "plain two", "plain one",
    ]


def test_imported_posts_are_found_and_deleted_ones_are_not(client, admin_client):
    call_command("generate_posts", count=20, seed=3, stdout=io.StringIO())
    post = Post.objects.published().order_by("pk").first()
    word = post.title.split()[0]

    assert post.title in titles(search(client, post.title))
    assert SearchDocument.objects.count() == Post.objects.count()

    admin_client.post(reverse("admin:posts_post_delete", args=[post.pk]), {"post": "yes"})

    assert post.title not in titles(search(client, word))
    assert not SearchDocument.objects.filter(post_id=post.pk).exists()


def test_an_admin_edit_changes_what_is_found(client, editor):
    post = PostFactory(title="about queues")
    client.force_login(editor)
    data = change_form_data(client, post)
    data["title"] = ["about zeppelins"]
    assert client.post(change_url(post), data).status_code == 302
    client.logout()

    assert titles(search(client, "zeppelins")) == ["about zeppelins"]
    assert titles(search(client, "queues")) == []


def test_readers_never_find_drafts_or_future_posts(client, editor):
    PostFactory(title="draft kestrel", draft=True)
    PostFactory(title="future kestrel", published_at=timezone.now() + datetime.timedelta(days=1))
    shown = PostFactory(title="shown kestrel")

    assert titles(search(client, "kestrel")) == ["shown kestrel"]
    review.unpublish_posts(Post.objects.filter(pk=shown.pk), editor)
    assert titles(search(client, "kestrel")) == []


def test_matches_are_highlighted_and_the_summary_is_escaped(client):
    PostFactory(title="markup", summary="the <script>alert(1)</script> pitfall of R&D migrations")

    page = search(client, "migrations").content.decode()

    assert "<mark>migrations</mark>" in page
    assert "<script>alert" not in page  # ts_headline drops tags; the rest is escaped
    assert "R&amp;D" in page


@pytest.mark.parametrize("count", [1, 25])
def test_a_search_is_one_query_however_many_match(client, count, django_assert_num_queries):
    PostFactory.create_batch(count, summary="tuning the planner")

    # 1 statement: the newest matches ranked, the page's cards with stack tags and highlights
    with django_assert_num_queries(1):
        response = search(client, "planner")

    assert response.context["found"].matches == count


def test_the_search_statement_is_planned_for_its_words_not_prepared(client):
    # psycopg prepares a statement run five times on a connection; PostgreSQL could then plan
    # every search alike, whatever its words' frequency (posts/searching.py _run_search).
    PostFactory(summary="tuning the planner")
    for _ in range(8):
        search(client, "planner")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%websearch_to_tsquery%"],
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        others = cursor.fetchone()[0]
    assert connection.connection.prepare_threshold is not None
    for _ in range(8):
        client.get(reverse("posts:list"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] > others  # the other pages' statements still are


@pytest.mark.parametrize(
    "q",
    ['"', '""', "-", "-planner", "planner or", "OR AND NOT", "the and of", "(planner",
     "naïve café 日本語", "'; DROP TABLE posts_post; --", "\x00planner", "planner\x00", "\u202e",
     "<script>", "a" * 5000, "*", ":*", "!", "&&||", "planner:*A"],
)
def test_odd_queries_get_a_page(client, q):
    PostFactory(summary="tuning the planner")

    response = search(client, q)

    assert "found" in response.context


def test_an_empty_query_explains_itself(client):
    page = search(client, "   ").content.decode()

    assert "Type a few words" in page
    assert search(client, "").status_code == 200
    assert client.get(SEARCH).status_code == 200


def test_a_long_query_is_cut_and_says_so(client):
    response = search(client, "planner " * 100)

    assert len(response.context["query"].text) <= MAX_QUERY_LENGTH
    assert "only its first 200 characters" in response.content.decode()


def test_clean_query_drops_control_characters_and_spaces():
    assert clean_query("  a\x00b\tc\n ").text == "a b c"
    assert clean_query("x" * 300).shortened
    assert not clean_query("\x00\x01")


def test_only_the_newest_matches_are_ranked_and_pages_are_bounded(client, settings):
    settings.SEARCH_WINDOW, settings.POSTS_PER_PAGE = 5, 2
    now = timezone.now()
    for days in range(8):
        PostFactory(summary="window test", published_at=now - datetime.timedelta(days=days))

    first = search(client, "window")
    found = first.context["found"]

    assert (found.matches, found.more, found.pages) == (5, True, 3)
    assert "More than 5 posts match" in first.content.decode()
    assert len(titles(search(client, "window", page=3))) == 1
    assert client.get(SEARCH, {"q": "window", "page": 4}).status_code == 404
    assert client.get(SEARCH, {"q": "window", "page": "x"}).status_code == 404
    assert client.get(SEARCH, {"q": "window", "page": "0"}).status_code == 404


def test_search_pages_are_cached_and_refreshed_by_any_write(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PAGE_CACHE = True
    with django_capture_on_commit_callbacks(execute=True):
        PostFactory(title="first falcon")
    search(client, "falcon")
    assert search(client, "falcon").wsgi_request.cache_status == "hit"
    assert 'search' in search(client, "falcon")["xkey"].split()

    with django_capture_on_commit_callbacks(execute=True):
        PostFactory(title="second falcon")

    response = search(client, "falcon")
    assert response.wsgi_request.cache_status == "miss"
    assert sorted(titles(response)) == ["first falcon", "second falcon"]


def test_an_unknown_address_is_a_404_that_suggests_search(client):
    response = client.get("/no/such/address/")

    page = response.content.decode()
    assert response.status_code == 404
    assert "Resolver404" not in page and "tried" not in page
    assert 'action="/search/"' in page and "There is nothing at this address." in page


def test_a_missing_post_says_so(client):
    response = client.get("/posts/no-such-post/")

    assert response.status_code == 404
    assert "No post has that address." in response.content.decode()


# Bands (posts/derived.py refresh_search_bands, posts/searching.py): the newest SEARCH_BANDS
# documents band by band, each with its own index. What a search finds must be what the
# newest window of all matches is, wherever the bands' starts are and however stale.


def newest_matches(posts, window):
    """What search must rank: the newest `window` of `posts` (a list), newest first."""
    return [post.title for post in sorted(
        posts, key=lambda post: (post.published_at, post.pk), reverse=True)[:window]]


def bands():
    """Each published document's band, newest first."""
    return list(SearchDocument.objects.filter(listed_at__isnull=False)
                .order_by("-listed_at", "-post_id").values_list("band", flat=True))


@pytest.fixture
def corpus(settings):
    """30 published posts an hour apart: every one says "notes", every 2nd "even", every 7th
    "seventh", only the oldest "oldest"; difficulties cycle."""
    settings.SEARCH_BANDS, settings.SEARCH_WINDOW, settings.POSTS_PER_PAGE = (3, 8, 15), 4, 10
    now = timezone.now()
    posts = []
    for n in range(30):
        words = ["notes", "even" if n % 2 == 0 else "", "seventh" if n % 7 == 0 else "",
                 "oldest" if n == 29 else ""]
        posts.append(PostFactory(
            title=f"{' '.join(word for word in words if word)} {n}",
            difficulty=("beginner", "intermediate", "advanced")[n % 3],
            published_at=now - datetime.timedelta(hours=n),
        ))
    return posts


def test_refreshing_the_bands_cuts_the_newest_documents_by_size(corpus):
    assert set(bands()) == {4}  # written before any refresh: the last band holds all

    assert derived.refresh_search_bands() == 15  # the newest 15 moved into bands 1-3

    assert bands() == [1] * 3 + [2] * 5 + [3] * 7 + [4] * 15
    assert derived.refresh_search_bands() == 0  # nothing moved: nothing to write
    assert derived.refresh_search_bands(full=True) == 0


def test_a_refresh_writes_each_bands_documents_together(settings):
    # A search visits a heap page per match: a band's documents written among the other bands'
    # would cost it a page each. Posts written in an order unrelated to their dates, as an
    # import writes them, all moved by one refresh.
    settings.SEARCH_BANDS = (3, 8, 15)
    now = timezone.now()
    for n in range(30):
        PostFactory(title=f"notes {n}", published_at=now - datetime.timedelta(hours=n * 7 % 30))

    assert derived.refresh_search_bands() == 15

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT band FROM {SearchDocument._meta.db_table} WHERE band < 4 "
                       "ORDER BY ctid")
        in_table_order = [band for (band,) in cursor.fetchall()]
    assert [band for band, _ in itertools.groupby(in_table_order)] == [1, 2, 3]


def test_new_posts_take_their_dates_band_and_the_next_refresh_moves_the_rest(corpus, editor):
    derived.refresh_search_bands()
    newest = PostFactory(title="newest notes", published_at=timezone.now())
    assert bands()[:4] == [1, 1, 1, 1]  # band 1 grew by the new post until the next refresh

    assert derived.refresh_search_bands() == 3  # one document crossed each start
    assert bands() == [1] * 3 + [2] * 5 + [3] * 7 + [4] * 16

    review.unpublish_posts(Post.objects.filter(pk=newest.pk), editor)
    assert SearchDocument.objects.get(post_id=newest.pk).band is None


@pytest.mark.parametrize("refreshed", [False, True], ids=["one band", "four bands"])
@pytest.mark.parametrize("word", ["notes", "even", "seventh", "oldest", "absent"])
def test_the_newest_matches_are_found_whatever_band_they_are_in(client, corpus, refreshed, word):
    if refreshed:
        derived.refresh_search_bands()
    matching = [post for post in corpus if word in post.title.split()]

    found = search(client, word).context["found"]

    assert sorted(result.card.title for result in found.results) == sorted(
        newest_matches(matching, 4))
    assert found.more == (len(matching) > 4)


@pytest.mark.parametrize("word", ["notes", "even", "seventh"])
def test_a_filtered_search_finds_the_newest_matches_that_pass(client, corpus, word):
    derived.refresh_search_bands()
    matching = [post for post in corpus
                if word in post.title.split() and post.difficulty == "advanced"]

    found = search(client, word, difficulty="advanced").context["found"]

    assert sorted(result.card.title for result in found.results) == sorted(
        newest_matches(matching, 4))


def test_the_bands_stay_exact_while_stale(client, corpus):
    derived.refresh_search_bands()
    # Five new posts, and the oldest republished as the newest: band 1 now holds 9 documents
    # until the next refresh, and the oldest post's document left band 4 for band 1.
    now = timezone.now()
    for n in range(5):
        PostFactory(title=f"seventh notes new {n}", published_at=now + datetime.timedelta(
            minutes=n) - datetime.timedelta(hours=1, minutes=30))
    Post.objects.filter(pk=corpus[29].pk).update(published_at=now)
    derived.after_batch_write([corpus[29].pk], derived.contribution([corpus[29].pk]))

    assert SearchDocument.objects.get(post_id=corpus[29].pk).band == 1
    assert bands().count(1) == 9
    assert titles(search(client, "oldest")) == ["notes oldest 29"]
    seventh = [post for post in Post.objects.all() if "seventh" in post.title.split()]
    found = titles(search(client, "seventh"))
    assert sorted(found) == sorted(newest_matches(seventh, 4))
    assert "seventh notes new 4" in found and "notes even seventh 0" in found


def test_a_filter_on_a_tag_finds_the_posts_carrying_it(client):
    tagged = PostFactory(title="tagged kestrel", tag_count=0)
    plain = PostFactory(title="plain kestrel", tag_count=0)
    django_tag = TagFactory(kind=TagKind.STACK, name="Django")
    pytest_tag = TagFactory(kind=TagKind.TOOL, name="pytest")
    # Each link is a write of its post (PostTagFactory), which rewrites the post's facets.
    PostTagFactory(post=tagged, tag=django_tag, role=TagRole.STACK)
    PostTagFactory(post=tagged, tag=pytest_tag)
    PostTagFactory(post=plain, tag=pytest_tag)

    assert titles(search(client, "kestrel", stack=django_tag.slug)) == ["tagged kestrel"]
    assert sorted(titles(search(client, "kestrel", tool=pytest_tag.slug))) == [
        "plain kestrel", "tagged kestrel"]
    assert titles(search(client, "kestrel", tool=pytest_tag.slug, stack=django_tag.slug)) == [
        "tagged kestrel"]
    assert titles(search(client, "kestrel", stack="no-such-tag")) == []


def test_a_changed_difficulty_or_language_changes_what_a_filter_finds(client, editor):
    post = PostFactory(title="about gannets", difficulty="beginner", code_language="python")
    client.force_login(editor)
    data = change_form_data(client, post)
    data["difficulty"], data["code_language"] = ["advanced"], ["rust"]
    assert client.post(change_url(post), data).status_code == 302
    client.logout()

    assert titles(search(client, "gannets", difficulty="advanced", language="rust")) == [
        "about gannets"]
    assert titles(search(client, "gannets", difficulty="beginner")) == []
    assert titles(search(client, "gannets", language="python")) == []


def band_scans(plan, band=None):
    """(band, actual loops) of each read of posts_searchdocument in an EXPLAIN plan, by the
    band CTE it is in."""
    name = plan.get("Subplan Name", "")
    if name.startswith("CTE band"):
        band = int(name.removeprefix("CTE band"))
    if band is not None and plan.get("Relation Name") == "posts_searchdocument":
        yield band, plan["Actual Loops"]
    for child in plan.get("Plans", []):
        yield from band_scans(child, band)


def test_a_common_word_reads_the_newest_band_only(corpus):
    # The work bound: with a window's worth of matches in band 1, no other band is read at
    # all (their one-time filter stops them); a word found in one post reads them all.
    from posts.filters import Filters
    from posts.searching import _search_sql

    derived.refresh_search_bands()

    def reads(word):
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _search_sql(Filters().signature()),
                           {"q": word, "now": timezone.now(), "window": 2, "limit": 10,
                            "offset": 0, "stack": "stack"})
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return {band for band, loops in band_scans(plan[0]["Plan"]) if loops}

    assert reads("notes") == {1}
    assert reads("oldest") == {1, 2, 3, 4}


def test_starts_move_back_when_the_newest_posts_leave(corpus, editor):
    derived.refresh_search_bands()
    review.unpublish_posts(Post.objects.filter(pk__in=[post.pk for post in corpus[:5]]), editor)

    # Posts 5-7 go up to band 1, 8-12 to band 2, 15-19 to band 3; 13 and 14 stay in band 3.
    assert derived.refresh_search_bands() == 13
    assert bands() == [1] * 3 + [2] * 5 + [3] * 7 + [4] * 10
    assert derived.refresh_search_bands(full=True) == 0


def test_the_command_refreshes_the_bands_and_full_repairs_documents(client, corpus):
    out = io.StringIO()
    call_command("refresh_search_bands", stdout=out)
    assert "15 documents moved" in out.getvalue()

    # A document written without facets or band (by code older than migration 0010).
    SearchDocument.objects.filter(post_id=corpus[0].pk).update(facets=None, band=None)
    assert titles(search(client, "seventh", difficulty="beginner")) == [
        "notes seventh 21"]  # corpus[0] ("notes even seventh 0") is lost to filters

    out = io.StringIO()
    call_command("refresh_search_bands", "--full", stdout=out)

    assert "documents moved" in out.getvalue()
    assert bands() == [1] * 3 + [2] * 5 + [3] * 7 + [4] * 15
    assert sorted(titles(search(client, "seventh", difficulty="beginner"))) == [
        "notes even seventh 0", "notes seventh 21"]


def test_generated_posts_are_banded_at_the_end_of_the_command(settings):
    settings.SEARCH_BANDS = (3, 8, 15)
    call_command("generate_posts", count=40, seed=5, stdout=io.StringIO())

    published = len(bands())
    assert published > 15
    assert bands() == [1] * 3 + [2] * 5 + [3] * 7 + [4] * (published - 15)
