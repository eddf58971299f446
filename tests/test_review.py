import datetime
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from posts import review
from posts.exporting import export_records
from posts.models import Post, ReviewAction, ReviewEvent, RevisionStatus
from posts.pagination import LookaheadPaginator
from posts.serialization import dumps, record_to_dict
from tests.conftest import make_user
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def review_url(post, action):
    return reverse("posts:review", kwargs={"slug": post.slug, "action": action})


# Roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "allowed", "refused"),
    [
        ("Editors", ["add_post", "change_post", "change_tag", "add_imagesource", "publish_post"],
         ["flag_post", "review_post", "delete_post"]),
        ("Reviewers", ["view_post", "view_tag", "view_reviewevent", "flag_post", "review_post"],
         ["change_post", "add_post", "publish_post", "change_tag", "change_revision"]),
    ],
)
def test_groups_have_exactly_their_roles_permissions(group, allowed, refused):
    user = make_user("someone", group)
    for codename in allowed:
        assert user.has_perm(f"posts.{codename}"), codename
    for codename in refused:
        assert not user.has_perm(f"posts.{codename}"), codename


# Indexing rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "indexable"),
    [
        ({}, True),
        ({"needs_human_review": True}, False),
        ({"revision__status": RevisionStatus.IN_REVIEW}, False),
        ({"revision__status": RevisionStatus.OUTDATED}, False),
        ({"draft": True}, False),
        ({"published_at": timezone.now() + datetime.timedelta(days=2)}, False),
    ],
    ids=["reviewed", "flagged", "in-review", "outdated", "draft", "scheduled"],
)
def test_only_published_unflagged_reviewed_posts_are_indexable(
    client, admin_user, state, indexable
):
    post = PostFactory(**state)

    assert Post.objects.indexable().filter(pk=post.pk).exists() is indexable
    client.force_login(admin_user)  # staff see drafts too, so every state has a page
    response = client.get(post.get_absolute_url())
    html = response.content.decode()
    assert ('<meta name="robots" content="noindex">' in html) is not indexable
    assert (response.headers.get("X-Robots-Tag") == "noindex") is not indexable
    assert ("Search engines are told not to index this post" in html) is not indexable


def test_readers_see_no_noindex_notice(client):
    post = PostFactory(needs_human_review=True)
    html = client.get(post.get_absolute_url()).content.decode()
    assert '<meta name="robots" content="noindex">' in html
    assert "Search engines are told" not in html


def test_staff_notice_says_why(client, admin_user):
    post = PostFactory(needs_human_review=True, revision__status=RevisionStatus.IN_REVIEW)
    client.force_login(admin_user)
    html = client.get(post.get_absolute_url()).content.decode()
    assert "it is flagged as needing human review; its revision is in review, not reviewed" in html


# The flag form on the article page ------------------------------------------------------


def test_anonymous_readers_see_no_review_form_and_cannot_flag(client):
    post = PostFactory()
    assert "Flag for review" not in client.get(post.get_absolute_url()).content.decode()

    response = client.post(review_url(post, "flag"), {"reason": "looks wrong"})

    assert response.status_code == 403
    assert "Log in as a reviewer" in response.content.decode()
    assert not Post.objects.get(pk=post.pk).needs_human_review


def test_logged_in_readers_without_the_permission_cannot_flag(client, reader, editor):
    post = PostFactory()
    for user in (reader, editor):
        client.force_login(user)
        assert "Flag for review" not in client.get(post.get_absolute_url()).content.decode()
        assert client.post(review_url(post, "flag"), {"reason": "x"}).status_code == 403
    assert not ReviewEvent.objects.exists()


def test_reviewer_flags_from_the_article_page(client, reviewer):
    post = PostFactory()
    client.force_login(reviewer)
    html = client.get(post.get_absolute_url()).content.decode()
    assert "Flag for review" in html and "csrfmiddlewaretoken" in html

    response = client.post(review_url(post, "flag"), {"reason": "the numbers look made up"})

    assert response.status_code == 303
    assert response.headers["Location"] == post.get_absolute_url()
    post = Post.objects.select_related("flagged_by").get(pk=post.pk)
    assert post.needs_human_review
    assert post.flag_reason == "the numbers look made up"
    assert post.flagged_by == reviewer
    event = ReviewEvent.objects.get()
    assert (event.action, event.reason, event.actor_id) == (
        ReviewAction.FLAGGED, "the numbers look made up", reviewer.pk
    )


def test_the_flag_form_is_csrf_protected(reviewer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    post = PostFactory()
    assert client.post(review_url(post, "flag"), {"reason": "x"}).status_code == 403
    assert not Post.objects.get(pk=post.pk).needs_human_review


@pytest.mark.parametrize(
    ("method", "action", "data", "status"),
    [
        ("post", "flag", {"reason": "   "}, 400),
        ("post", "flag", {"reason": "x" * 2001}, 400),
        ("post", "flag", {"reason": "a\x00b"}, 400),
        ("post", "delete", {"reason": "x"}, 404),
        ("get", "flag", {}, 405),
    ],
    ids=["blank reason", "over-long reason", "NUL in reason", "unknown action", "get"],
)
def test_bad_review_requests_get_a_clear_4xx(client, reviewer, method, action, data, status):
    post = PostFactory()
    client.force_login(reviewer)
    response = getattr(client, method)(review_url(post, action), data)
    assert response.status_code == status
    assert not Post.objects.get(pk=post.pk).needs_human_review


def test_flagging_an_unknown_post_is_404(client, reviewer):
    client.force_login(reviewer)
    url = reverse("posts:review", kwargs={"slug": "no-such-post", "action": "flag"})
    assert client.post(url, {"reason": "x"}).status_code == 404


# The review queue -------------------------------------------------------------------------


def test_queue_needs_login_and_the_reviewer_role(client, reader):
    url = reverse("posts:review_queue")
    assert client.get(url).status_code == 302
    client.force_login(reader)
    assert client.get(url).status_code == 403


def test_queue_lists_flagged_posts_oldest_flag_first_with_reason_and_who(client, reviewer):
    now = timezone.now()
    newer = PostFactory(title="newer flag")
    older = PostFactory(title="older flag")
    PostFactory(title="not flagged")
    review.flag_posts(Post.objects.filter(pk=newer.pk), reviewer, "second reason")
    review.flag_posts(Post.objects.filter(pk=older.pk), reviewer, "first reason")
    Post.objects.filter(pk=older.pk).update(flagged_at=now - datetime.timedelta(days=3))
    imported = PostFactory(title="flagged by import", needs_human_review=True)
    client.force_login(reviewer)

    response = client.get(reverse("posts:review_queue"))

    assert [post.title for post in response.context["page"].object_list] == [
        imported.title, older.title, newer.title
    ]
    html = response.content.decode()
    assert "first reason" in html and "second reason" in html and "rita" in html
    assert "not flagged" not in html


@pytest.mark.parametrize("flagged", [1, 30])
def test_queue_queries_are_constant(client, reviewer, settings, django_assert_num_queries, flagged):
    settings.POSTS_PER_PAGE = 25
    posts = PostFactory.create_batch(flagged)
    review.flag_posts(Post.objects.filter(pk__in=[p.pk for p in posts]), reviewer, "check")
    client.force_login(reviewer)

    # 1 session (in PostgreSQL, so a Redis outage keeps reviewers logged in), 2 its user, 3-4
    # user and group permissions, 5 count (stopping 50 pages past this one: beyond, the page
    # says "or more"), 6 page of posts with the flag's author and revision joined
    with django_assert_num_queries(6):
        response = client.get(reverse("posts:review_queue"))

    assert len(response.context["page"].object_list) == min(flagged, 25)


def test_queue_counts_only_a_few_pages_past_the_one_shown(
    client, reviewer, settings, monkeypatch
):
    settings.POSTS_PER_PAGE = 2
    monkeypatch.setattr(LookaheadPaginator, "PAGES_AHEAD", 1)
    posts = PostFactory.create_batch(9)
    review.flag_posts(Post.objects.filter(pk__in=[p.pk for p in posts]), reviewer, "check")
    client.force_login(reviewer)
    url = reverse("posts:review_queue")

    with CaptureQueriesContext(connection) as queries:
        first = client.get(url)

    # Page 1 counts at most 2 pages (4 rows) and one more row, on page 3, to know there are more.
    assert [q["sql"] for q in queries if "COUNT(*)" in q["sql"] and "LIMIT 5)" in q["sql"]]
    assert "page 1 of 3 or more" in first.content.decode()
    assert client.get(url, {"page": 2}).status_code == 200  # its "later flags" link
    last = client.get(url, {"page": 5})
    assert "page 5 of 5" in last.content.decode()  # counted to the end: 9 posts
    assert len(last.context["page"].object_list) == 1


@pytest.mark.parametrize("number", ["6", "0", "two", str(10**30)])
def test_queue_page_out_of_range_or_unreadable_is_a_404_saying_why(
    client, reviewer, settings, number
):
    settings.POSTS_PER_PAGE = 2
    posts = PostFactory.create_batch(9)
    review.flag_posts(Post.objects.filter(pk__in=[p.pk for p in posts]), reviewer, "check")
    client.force_login(reviewer)

    response = client.get(reverse("posts:review_queue"), {"page": number})

    assert response.status_code == 404
    assert "Pages run from 1 to 5." in response.content.decode()


# History ----------------------------------------------------------------------------------


def test_history_and_flag_survive_edits_and_reimports(client, reviewer, tmp_path):
    call_command("generate_posts", count=3, seed=9, stdout=io.StringIO())
    post = Post.objects.order_by("source_id").first()
    review.flag_posts(Post.objects.filter(pk=post.pk), reviewer, "check the sources")
    data = record_to_dict(next(r for r in export_records() if r.source_id == post.source_id))
    data["title"] = "a changed title"
    data["flags"]["needs_human_review"] = False  # the file cannot lower a reviewer's flag
    path = tmp_path / "changed.jsonl"
    path.write_text(dumps(data) + "\n")

    call_command("import_posts", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    post = Post.objects.select_related("flagged_by").get(pk=post.pk)
    assert post.title == "a changed title"
    assert post.needs_human_review
    assert post.flagged_by == reviewer
    assert post.flag_reason == "check the sources"
    assert post in Post.objects.flagged()
    assert list(ReviewEvent.objects.filter(post=post).values_list("action", flat=True)) == [
        ReviewAction.FLAGGED
    ]


def test_actions_record_history_in_order(reviewer, editor):
    post = PostFactory(draft=True)
    one = Post.objects.filter(pk=post.pk)
    review.flag_posts(one, reviewer, "why")
    review.publish_posts(one, editor)
    review.clear_flags(one, reviewer)
    review.mark_reviewed(one, reviewer)
    review.unpublish_posts(one, editor)

    events = ReviewEvent.objects.filter(post=post).order_by("created_at", "id")
    assert [(e.action, e.actor_id) for e in events] == [
        (ReviewAction.FLAGGED, reviewer.pk),
        (ReviewAction.PUBLISHED, editor.pk),
        (ReviewAction.CLEARED, reviewer.pk),
        (ReviewAction.REVIEWED, reviewer.pk),
        (ReviewAction.UNPUBLISHED, editor.pk),
    ]


def test_mark_reviewed_clears_the_flag_and_dates_the_revision(reviewer):
    post = PostFactory(revision__status=RevisionStatus.IN_REVIEW, revision__last_reviewed=None)
    review.flag_posts(Post.objects.filter(pk=post.pk), reviewer, "why")

    assert review.mark_reviewed(Post.objects.filter(pk=post.pk), reviewer) == 1

    post = Post.objects.select_related("revision").get(pk=post.pk)
    assert not post.needs_human_review and post.flagged_at is None and post.flag_reason == ""
    assert post.revision.status == RevisionStatus.REVIEWED
    assert post.revision.last_reviewed == timezone.localdate()


@pytest.mark.parametrize("count", [3, 60])
def test_review_actions_run_constant_queries(reviewer, django_assert_num_queries, count):
    posts = Post.objects.filter(pk__in=[p.pk for p in PostFactory.create_batch(count)])

    # 1 savepoint, 2 SELECT ... FOR UPDATE of the ids, 3 history INSERT ... SELECT, 4 UPDATE
    # of the posts, 5 release
    with django_assert_num_queries(5):
        assert review.flag_posts(posts, reviewer, "why") == count
    # 1 savepoint, 2 lock, 3 history, 4 revisions UPDATE, 5 posts UPDATE, 6 release
    with django_assert_num_queries(6):
        assert review.mark_reviewed(posts, reviewer) == count


def test_a_reviewer_flags_sees_the_queue_marks_reviewed_and_noindex_goes_away(client, reviewer):
    post = PostFactory(revision__status=RevisionStatus.IN_REVIEW)
    client.force_login(reviewer)
    assert client.get(post.get_absolute_url()).headers["X-Robots-Tag"] == "noindex"

    client.post(review_url(post, "flag"), {"reason": "check the benchmark"})
    queue = client.get(reverse("posts:review_queue")).content.decode()
    assert post.title in queue and "check the benchmark" in queue
    client.post(review_url(post, "reviewed"))

    response = client.get(post.get_absolute_url())
    assert "X-Robots-Tag" not in response.headers
    assert '<meta name="robots"' not in response.content.decode()
    assert post.title not in client.get(reverse("posts:review_queue")).content.decode()


def test_queue_reads_its_index_in_order_without_sorting():
    from django.db import connection

    PostFactory.create_batch(3, needs_human_review=True)
    queryset = Post.objects.flagged().for_review_queue()[:20]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # A tiny table: make the planner show whether the index can give the order at all (with
        # sorting discouraged, a Sort still appears when no index can).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())

    assert "post_review_queue_idx" in plan
    assert "Sort" not in plan  # NULLS FIRST in the index, as flagged() orders
