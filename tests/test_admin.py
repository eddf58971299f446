import datetime
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from posts import review
from posts.forms import LineListField
from posts.models import (
    ImageSource,
    Post,
    PublicationStatus,
    ReviewAction,
    ReviewEvent,
    Revision,
    RevisionStatus,
    TagKind,
)
from tests.conftest import make_user
from tests.factories import ImageSourceFactory, PostFactory, TagFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:posts_post_changelist")
ALL_ACTIONS = {"publish", "unpublish", "flag", "clear_flag", "mark_reviewed"}


@pytest.fixture
def users(admin_user, editor, reviewer, staff):
    return {"superuser": admin_user, "editor": editor, "reviewer": reviewer, "staff": staff}


@pytest.fixture(autouse=True)
def cached_content_types():
    """Load the content types the admin looks up, as a running server has after its first page.

    ContentType.objects caches them per process; without this, whichever test runs first in a
    worker would count one more query than the others.
    """
    ContentType.objects.get_for_models(Post, ReviewEvent, ImageSource)


def change_url(post):
    return reverse("admin:posts_post_change", args=[post.pk])


def run_action(
    client, action, posts=(), *, select_across=False, reason=None, follow=False, query=""
):
    """POST `action` from the changelist's action bar; `query` filters it, e.g. "?status=draft"."""
    data = {"action": action, "index": "0", "_selected_action": [post.pk for post in posts]}
    if select_across:
        data["select_across"] = "1"
    if reason is not None:
        data["reason"] = reason
    return client.post(CHANGELIST + query, data, follow=follow)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def action_names(response):
    return {name for name, _ in response.context["action_form"].fields["action"].choices if name}


class FormData(HTMLParser):
    """What a browser would submit from the form with id `form_id` of an HTML page."""

    def __init__(self, html, form_id):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.data = form_id, False, {}
        self.textarea = self.select = None
        self.feed(html)

    def add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or (not attrs.get("name") and tag != "option"):
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.add(attrs["name"], attrs.get("value", "on"))
                return
            self.add(attrs["name"], attrs.get("value", ""))
        elif tag == "textarea":
            self.textarea, self.text = attrs["name"], []
        elif tag == "select":
            self.select, self.options = attrs["name"], []
        elif tag == "option" and self.select:
            self.options.append((attrs.get("value", ""), "selected" in attrs))

    def handle_data(self, data):
        if self.textarea:
            self.text.append(data)

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self.textarea:
            self.add(self.textarea, "".join(self.text).removeprefix("\n"))
            self.textarea = None
        elif tag == "select" and self.select:
            chosen = [value for value, selected in self.options if selected] or [
                value for value, _ in self.options[:1]
            ]
            for value in chosen:
                self.add(self.select, value)
            self.select = None


def change_form_data(client, post):
    """GET the post's change page and return the data its Save button would send."""
    response = client.get(change_url(post))
    assert response.status_code == 200
    data = FormData(response.text, "post_form").data
    data["_save"] = ["Save"]
    return data


def create_posts_fast(count):
    """Insert `count` minimal draft posts and their revisions (2 bulk inserts, batched)."""
    posts = Post.objects.bulk_create(
        Post(title=f"bulk {n}", slug=f"bulk-{n}", reference=f"bulk-ref-{n}", source_id=f"bulk-{n}")
        for n in range(count)
    )
    Revision.objects.bulk_create(Revision(post=post) for post in posts)
    return posts


# Who may do what -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"), [("superuser", 200), ("editor", 200), ("reviewer", 200), ("staff", 403)]
)
def test_posts_changelist_and_change_page_by_role(client, users, role, status):
    post = PostFactory()
    client.force_login(users[role])

    assert client.get(CHANGELIST).status_code == status
    assert client.get(change_url(post)).status_code == status


def test_reviewer_sees_the_change_page_read_only(client, reviewer):
    post = PostFactory(title="a post to review", image_count=1)
    client.force_login(reviewer)

    response = client.get(change_url(post))

    assert response.status_code == 200
    assert "a post to review" in response.text
    assert 'name="_save"' not in response.text
    assert 'name="title"' not in response.text
    assert 'name="tag_links-0-tag"' not in response.text
    assert 'name="figures-0-caption"' not in response.text


def test_reviewer_cannot_save_a_post(client, reviewer, admin_user):
    post = PostFactory(title="before")
    client.force_login(admin_user)
    data = change_form_data(client, post)
    data["title"] = ["after"]
    client.force_login(reviewer)

    response = client.post(change_url(post), data)

    assert response.status_code == 403
    post.refresh_from_db()
    assert post.title == "before"


@pytest.mark.parametrize(
    ("role", "offered"),
    [
        ("superuser", ALL_ACTIONS),
        ("editor", {"publish", "unpublish"}),
        ("reviewer", {"flag", "clear_flag", "mark_reviewed"}),
    ],
)
def test_actions_offered_by_role(client, users, role, offered):
    post = PostFactory()
    client.force_login(users[role])

    assert action_names(client.get(CHANGELIST)) == offered
    # The change page offers the same actions for its one post (deleting has its own button).
    assert action_names(client.get(change_url(post))) == offered


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("editor", "flag"),
        ("editor", "clear_flag"),
        ("editor", "mark_reviewed"),
        ("reviewer", "publish"),
        ("reviewer", "unpublish"),
    ],
)
def test_actions_are_refused_without_their_permission(client, users, role, action):
    draft = PostFactory(draft=True, flagged=True)
    published = PostFactory(flagged=True)
    client.force_login(users[role])

    response = run_action(client, action, [draft, published], reason="look", follow=True)

    assert response.status_code == 200
    assert messages_of(response) == ["No action selected."]
    assert not ReviewEvent.objects.exists()
    assert Post.objects.get(pk=draft.pk).status == PublicationStatus.DRAFT
    assert Post.objects.get(pk=published.pk).status == PublicationStatus.PUBLISHED
    assert Post.objects.filter(needs_human_review=True).count() == 2


def test_editor_changes_a_post_through_the_form(client, editor):
    post = PostFactory(tag_count=3, image_count=2, section_count=2, checklist=["one"])
    client.force_login(editor)
    data = change_form_data(client, post)
    data["title"] = ["a better title"]
    data["checklist"] = ["  back up first\r\n\r\nthen migrate  \r\n"]
    data["sections-1-heading"] = ["a clearer heading"]
    data["tag_links-0-DELETE"] = ["on"]

    response = client.post(change_url(post), data)

    assert response.status_code == 302, response.context["errors"]
    post = Post.objects.get(pk=post.pk)
    assert post.title == "a better title"
    assert post.checklist == ["back up first", "then migrate"]
    assert post.notes == ["view count is synthetic", "review before indexing"]  # unchanged
    assert list(post.sections.values_list("heading", flat=True)) == [
        "section 0", "a clearer heading",
    ]
    assert post.tag_links.count() == 2
    assert post.figures.count() == 2


def test_line_list_field_turns_lines_into_a_list_and_back():
    field = LineListField(required=True)

    assert field.clean(" back up \r\n\r\n then migrate\n") == ["back up", "then migrate"]
    assert field.prepare_value(["one", "two"]) == "one\ntwo"
    assert not field.has_changed(["one", "two"], "one\r\n\r\ntwo\r\n")
    assert LineListField(required=False).clean("\n  \n") == []
    with pytest.raises(ValidationError, match="required"):
        field.clean("\n  \n")


def test_editor_swaps_two_figures(client, editor):
    post = PostFactory(image_count=3)
    client.force_login(editor)
    data = change_form_data(client, post)
    first, second = data["figures-0-caption"], data["figures-1-caption"]
    data["figures-0-position"], data["figures-1-position"] = ["1"], ["0"]

    response = client.post(change_url(post), data)

    assert response.status_code == 302, response.context["errors"]
    captions = list(post.figures.order_by("position").values_list("caption", flat=True))
    assert captions == [second[0], first[0], "visual reference 3"]


def test_editor_replaces_a_section_at_its_position(client, editor):
    post = PostFactory(section_count=2)
    client.force_login(editor)
    data = change_form_data(client, post)
    data["sections-0-DELETE"] = ["on"]
    data["sections-TOTAL_FORMS"] = ["3"]
    data["sections-2-position"] = ["0"]
    data["sections-2-heading"] = ["a new first section"]
    data["sections-2-body"] = ["it replaces the old one."]

    response = client.post(change_url(post), data)

    assert response.status_code == 302, response.context["errors"]
    assert list(post.sections.order_by("position").values_list("position", "heading")) == [
        (0, "a new first section"), (1, "section 1"),
    ]


def test_editor_adds_a_post_with_a_revision(client, editor):
    client.force_login(editor)
    add_url = reverse("admin:posts_post_add")
    response = client.get(add_url)
    data = FormData(response.text, "post_form").data
    data.update(
        title=["a new post"], slug=["a-new-post"], reference=["anp-ref-new"],
        source_id=["manual-1"], checklist=["first\nsecond"], _save=["Save"],
    )

    response = client.post(add_url, data)

    assert response.status_code == 302, response.context["errors"]
    post = Post.objects.select_related("revision").get(slug="a-new-post")
    assert (post.status, post.reference, post.checklist) == (
        PublicationStatus.DRAFT, "anp-ref-new", ["first", "second"],
    )
    assert post.revision.status == RevisionStatus.DRAFT


def test_two_figures_at_one_position_are_an_error_not_a_crash(client, editor):
    post = PostFactory(image_count=2)
    client.force_login(editor)
    data = change_form_data(client, post)
    data["figures-1-position"] = ["0"]

    response = client.post(change_url(post), data)

    assert response.status_code == 200
    assert "Please correct the duplicate data for position." in response.text
    assert list(post.figures.values_list("position", flat=True)) == [0, 1]


def test_a_published_post_needs_a_date(client, editor):
    post = PostFactory(draft=True)
    client.force_login(editor)
    data = change_form_data(client, post)
    data["status"] = [PublicationStatus.PUBLISHED]

    response = client.post(change_url(post), data)

    assert response.status_code == 200
    assert "A published post needs a publication date and time." in response.text
    assert Post.objects.get(pk=post.pk).status == PublicationStatus.DRAFT


def test_status_is_read_only_without_the_publish_permission(client):
    writer = make_user(
        "wendy", is_staff=True, permissions=["view_post", "change_post", "view_reviewevent"]
    )
    post = PostFactory(draft=True)
    client.force_login(writer)
    data = change_form_data(client, post)
    assert "title" in data
    assert "status" not in data
    data["status"] = [PublicationStatus.PUBLISHED]
    data["title"] = ["retitled"]

    response = client.post(change_url(post), data)

    assert response.status_code == 302
    post = Post.objects.get(pk=post.pk)
    assert (post.title, post.status) == ("retitled", PublicationStatus.DRAFT)


# Bulk actions ----------------------------------------------------------------------------


def events(action):
    """Return (post id, actor's username, reason) of the history rows of `action`."""
    rows = ReviewEvent.objects.filter(action=action)
    return list(rows.values_list("post_id", "actor__username", "reason"))


def test_publish_keeps_an_existing_date_and_dates_the_rest(client, editor):
    dated = PostFactory(draft=True, published_at=timezone.now() - datetime.timedelta(days=30))
    undated = PostFactory(draft=True)
    already = PostFactory()
    client.force_login(editor)

    response = run_action(client, "publish", [dated, undated, already], follow=True)

    assert messages_of(response) == ["2 posts published."]
    assert Post.objects.filter(status=PublicationStatus.PUBLISHED).count() == 3
    assert Post.objects.get(pk=dated.pk).published_at == dated.published_at
    assert Post.objects.get(pk=undated.pk).published_at is not None
    assert Post.objects.get(pk=already.pk).published_at == already.published_at
    assert sorted(events(ReviewAction.PUBLISHED)) == [
        (dated.pk, "eddie", ""), (undated.pk, "eddie", ""),
    ]


def test_unpublish_returns_posts_to_draft(client, editor):
    post, other = PostFactory(), PostFactory()
    client.force_login(editor)

    response = run_action(client, "unpublish", [post], follow=True)

    assert messages_of(response) == ["1 post unpublished."]
    assert Post.objects.get(pk=post.pk).status == PublicationStatus.DRAFT
    assert Post.objects.get(pk=other.pk).status == PublicationStatus.PUBLISHED
    assert events(ReviewAction.UNPUBLISHED) == [(post.pk, "eddie", "")]


def test_flag_records_who_when_and_why(client, reviewer):
    post, other = PostFactory(), PostFactory()
    client.force_login(reviewer)

    response = run_action(client, "flag", [post], reason="  numbers look made up  ", follow=True)

    assert messages_of(response) == ["1 post flagged for review."]
    post = Post.objects.select_related("flagged_by").get(pk=post.pk)
    assert post.needs_human_review
    assert post.flagged_by == reviewer
    assert post.flag_reason == "numbers look made up"
    assert post.flagged_at is not None
    assert not Post.objects.get(pk=other.pk).needs_human_review
    assert events(ReviewAction.FLAGGED) == [(post.pk, "rita", "numbers look made up")]


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_flag_without_a_reason_changes_nothing(client, reviewer, reason):
    post = PostFactory()
    client.force_login(reviewer)

    response = run_action(client, "flag", [post], reason=reason, follow=True)

    assert response.status_code == 200
    assert messages_of(response) == [
        "Nothing was flagged. A reason is required: say what a reviewer should look at."
    ]
    assert not Post.objects.get(pk=post.pk).needs_human_review
    assert not ReviewEvent.objects.exists()


def test_flag_with_a_too_long_reason_changes_nothing(client, reviewer):
    post = PostFactory()
    client.force_login(reviewer)

    response = run_action(client, "flag", [post], reason="x" * 2001, follow=True)

    assert "keep it under 2000" in messages_of(response)[0]
    assert not Post.objects.get(pk=post.pk).needs_human_review


def test_clear_flag(client, reviewer):
    flagged, clean = PostFactory(), PostFactory()
    review.flag_posts(Post.objects.filter(pk=flagged.pk), reviewer, "check the figures")
    client.force_login(reviewer)

    response = run_action(client, "clear_flag", [flagged, clean], reason="fine", follow=True)

    assert messages_of(response) == ["1 post unflagged."]
    post = Post.objects.get(pk=flagged.pk)
    assert (post.needs_human_review, post.flagged_at, post.flagged_by_id, post.flag_reason) == (
        False, None, None, "",
    )
    assert events(ReviewAction.CLEARED) == [(flagged.pk, "rita", "fine")]


def test_mark_reviewed_clears_the_flag_and_dates_the_revision(client, reviewer):
    post = PostFactory(revision__status=RevisionStatus.DRAFT, revision__last_reviewed=None)
    review.flag_posts(Post.objects.filter(pk=post.pk), reviewer, "check the figures")
    client.force_login(reviewer)

    response = run_action(client, "mark_reviewed", [post], follow=True)

    assert messages_of(response) == ["1 post marked reviewed."]
    post = Post.objects.select_related("revision").get(pk=post.pk)
    assert not post.needs_human_review
    assert post.flagged_by_id is None
    assert post.revision.status == RevisionStatus.REVIEWED
    assert post.revision.last_reviewed == timezone.localdate()
    assert events(ReviewAction.REVIEWED) == [(post.pk, "rita", "")]


def test_reviewer_flags_a_post_from_its_change_page(client, reviewer):
    post = PostFactory()
    client.force_login(reviewer)
    data = {
        "CHANGE_FORM-action": "flag",
        "CHANGE_FORM-reason": "the intro contradicts section 2",
        "_selected_action": str(post.pk),
        "index": "0",
    }

    response = client.post(change_url(post), data, follow=True)

    assert messages_of(response) == ["1 post flagged for review."]
    assert Post.objects.get(pk=post.pk).flag_reason == "the intro contradicts section 2"


@pytest.mark.parametrize(
    ("role", "action", "reason", "queries", "changed", "recorded"),
    [
        ("reviewer", "flag", "check", 10, {"needs_human_review": True}, "flagged"),
        ("reviewer", "clear_flag", "", 10, {"needs_human_review": False}, "cleared"),
        # one statement more: the UPDATE of the revisions
        ("reviewer", "mark_reviewed", "", 11, {"revision__status": "reviewed"}, "reviewed"),
        # 15 more: the derived listing data and search documents (see the comment below)
        ("editor", "publish", None, 25, {"status": "published"}, "published"),
    ],
)
def test_select_all_acts_on_10000_posts_in_constant_queries(
    client, users, django_assert_max_num_queries, role, action, reason, queries, changed, recorded
):
    posts = create_posts_fast(10_000)
    Post.objects.update(needs_human_review=True)
    client.force_login(users[role])

    # 1 session, 2 its user, 3 its permissions, 4 its groups' permissions, 5 COUNT of the
    # changelist, 6 SAVEPOINT (the action's transaction, inside the test's), 7 SELECT ... FOR
    # UPDATE of the selected ids, 8 INSERT ... SELECT of the history, 9 UPDATE of the posts,
    # 10 RELEASE.
    # Publishing also moves the derived data (posts/derived.py): 2 counts before, 1 tag links'
    # listing dates, 2 counts after, 1 rank similar lists, 2 search documents (the band starts
    # locked, then the documents), 2 lock, 2 move
    # the counts, 2 store
    # them (clear, insert: none to insert for these tagless posts), 2 enter other lists and
    # trim them, 1 which posts left the listing; all set-based.
    with django_assert_max_num_queries(queries):
        response = run_action(client, action, posts[:1], select_across=True, reason=reason)

    assert response.status_code == 302
    assert Post.objects.filter(**changed).count() == 10_000
    assert ReviewEvent.objects.filter(action=recorded).count() == 10_000


def test_select_all_acts_on_the_filtered_posts_only(client, reviewer):
    drafts = PostFactory.create_batch(3, draft=True)
    published = PostFactory.create_batch(2)
    client.force_login(reviewer)

    response = run_action(
        client, "flag", drafts[:1], select_across=True, reason="drafts first", query="?status=draft"
    )

    assert response.status_code == 302
    assert set(Post.objects.filter(needs_human_review=True)) == set(drafts)
    assert not Post.objects.filter(pk__in=[post.pk for post in published], needs_human_review=True)


# Constant queries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "queries"),
    [
        # 1 session, 2 its user, 3 COUNT (capped at 10,001 rows), 4 the page of posts joined
        # with revision and flagger, 5 code languages (filter: a walk of their index)
        ("superuser", 5),
        # the same, and the reviewer's own and group permissions
        ("reviewer", 7),
    ],
)
@pytest.mark.parametrize("per_page", [10, 100])
def test_changelist_queries_are_constant(
    client, users, django_assert_num_queries, monkeypatch, role, queries, per_page
):
    monkeypatch.setattr(admin.site.get_model_admin(Post), "list_per_page", per_page)
    PostFactory.create_batch(110, tag_count=2, entity_count=1)
    client.force_login(users[role])

    with django_assert_num_queries(queries):
        response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == per_page


@pytest.mark.parametrize(
    ("role", "queries"),
    [
        # 1 session, 2 its user, 3 post joined with revision and flagger, 4 revision inline,
        # 5 sections, 6 figures, 7 tag links joined with tags, 8 review events joined with
        # actors
        ("superuser", 8),
        # the same, and the user's own and group permissions
        ("editor", 10),
        ("reviewer", 10),
    ],
)
@pytest.mark.parametrize(
    ("tags", "images", "entities", "sections", "flags"), [(1, 0, 0, 0, 0), (40, 12, 20, 6, 5)]
)
def test_change_page_queries_are_constant(
    client, users, django_assert_num_queries, role, queries, tags, images, entities, sections,
    flags,
):
    post = PostFactory(
        tag_count=tags, image_count=images, entity_count=entities, section_count=sections
    )
    for number in range(flags):
        review.flag_posts(Post.objects.filter(pk=post.pk), users["reviewer"], f"reason {number}")
    client.force_login(users[role])

    with django_assert_num_queries(queries):
        response = client.get(change_url(post))

    assert response.status_code == 200
    inlines = response.context["inline_admin_formsets"]
    formsets = {inline.formset.prefix: inline.formset for inline in inlines}
    assert len(formsets["tag_links"].forms) == tags + entities
    assert len(formsets["figures"].forms) == images
    assert len(formsets["sections"].forms) == sections
    assert len(formsets["review_events"].forms) == flags


def test_tag_widgets_show_their_selected_tag(client, editor):
    post = PostFactory(tag_count=2)
    link = post.tag_links.select_related("tag").get(position=1)
    client.force_login(editor)

    response = client.get(change_url(post))

    assert (
        f'<option value="{link.tag_id}" selected>{link.tag}</option>' in response.text
    ), "the tag of each link is rendered as its selected option"


def test_tag_autocomplete_finds_tags(client, editor):
    TagFactory(kind=TagKind.STACK, name="django orm")
    TagFactory(kind=TagKind.TOOL, name="pgbouncer")
    client.force_login(editor)

    response = client.get(
        reverse("admin:autocomplete"),
        {"term": "django", "app_label": "posts", "model_name": "posttag", "field_name": "tag"},
    )

    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == ["django orm (stack)"]


# Filters and search ----------------------------------------------------------------------


def test_tag_kind_filter_lists_each_post_once(client, admin_user):
    with_two_areas = PostFactory(tag_count=0, entity_count=2)  # two "area" tags
    PostFactory(tag_count=3)  # tools only
    client.force_login(admin_user)

    response = client.get(CHANGELIST, {"tag_kind": TagKind.AREA})

    assert [post.pk for post in response.context["cl"].result_list] == [with_two_areas.pk]


def test_revision_status_filter(client, admin_user):
    PostFactory(revision__status=RevisionStatus.REVIEWED)
    outdated = PostFactory(revision__status=RevisionStatus.OUTDATED)
    client.force_login(admin_user)

    response = client.get(CHANGELIST, {"revision__status__exact": RevisionStatus.OUTDATED})

    assert [post.pk for post in response.context["cl"].result_list] == [outdated.pk]


@pytest.mark.parametrize("field", ["reference", "source_id", "title"])
def test_search_by_reference_source_id_or_title(client, admin_user, field):
    wanted = PostFactory(title="tuning autovacuum", reference="anp-ref-wanted")
    PostFactory(title="caching querysets")
    client.force_login(admin_user)
    term = {"reference": wanted.reference, "source_id": wanted.source_id, "title": "AUTOVAC"}

    response = client.get(CHANGELIST, {"q": term[field]})

    assert [post.pk for post in response.context["cl"].result_list] == [wanted.pk]


def test_changelist_columns(client, admin_user):
    PostFactory(title="a listed post", revision__status=RevisionStatus.OUTDATED)
    draft = PostFactory(draft=True)
    client.force_login(admin_user)

    response = client.get(CHANGELIST)

    assert "a listed post" in response.text
    assert "outdated" in response.text
    # Drafts too: staff see them on the site, with the reasons they are not indexed.
    assert response.text.count(">view on site</a>") == 2
    assert draft.get_absolute_url() in response.text


# History ---------------------------------------------------------------------------------


def test_change_page_shows_the_review_history(client, reviewer, editor):
    post = PostFactory()
    client.force_login(reviewer)
    run_action(client, "flag", [post], reason="the benchmark numbers are invented")
    run_action(client, "mark_reviewed", [post], reason="numbers replaced with real runs")
    client.force_login(editor)

    response = client.get(change_url(post))

    history = response.context["inline_admin_formsets"][-1].formset
    assert [form.instance.action for form in history.forms] == [
        ReviewAction.FLAGGED, ReviewAction.REVIEWED,
    ]
    assert "the benchmark numbers are invented" in response.text
    assert "numbers replaced with real runs" in response.text
    assert ">rita</a>" in response.text
    assert 'name="review_events-0-reason"' not in response.text  # history is never edited


# The other admins ------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 30])
def test_image_source_changelist_queries_are_constant(
    client, admin_user, django_assert_num_queries, rows
):
    for _ in range(rows):
        ImageSourceFactory()
    client.force_login(admin_user)

    # 1 session, 2 its user, 3 COUNT, 4 the figures joined with their posts
    with django_assert_num_queries(4):
        response = client.get(reverse("admin:posts_imagesource_changelist"))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_reviewer_sees_an_image_source_read_only(client, reviewer):
    figure = ImageSourceFactory(caption="a diagram")
    client.force_login(reviewer)

    response = client.get(reverse("admin:posts_imagesource_change", args=[figure.pk]))

    assert response.status_code == 200
    assert figure.post.title in response.text
    assert 'name="caption"' not in response.text


def test_tag_changelist_searches_names(client, editor):
    TagFactory(kind=TagKind.STACK, name="celery workers")
    TagFactory(kind=TagKind.TOOL, name="redis")
    client.force_login(editor)

    response = client.get(reverse("admin:posts_tag_changelist"), {"q": "celery"})

    assert [tag.name for tag in response.context["cl"].result_list] == ["celery workers"]


@pytest.mark.parametrize("role", ["editor", "reviewer"])
def test_review_event_admin_is_read_only(client, users, role):
    post = PostFactory(title="history of this post")
    review.flag_posts(Post.objects.filter(pk=post.pk), users["reviewer"], "why not")
    event = ReviewEvent.objects.get()
    client.force_login(users[role])

    listing = client.get(reverse("admin:posts_reviewevent_changelist"), {"q": "history"})
    page = client.get(reverse("admin:posts_reviewevent_change", args=[event.pk]))

    assert listing.status_code == 200
    assert "history of this post" in listing.text
    assert page.status_code == 200
    assert 'name="reason"' not in page.text
    assert client.get(reverse("admin:posts_reviewevent_add")).status_code == 403



# At scale -------------------------------------------------------------------------------


def test_changelist_counts_stop_at_the_cap(
    client, admin_user, monkeypatch, django_assert_num_queries
):
    from posts.pagination import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "COUNT_CAP", 5)
    PostFactory.create_batch(12, tag_count=0)
    client.force_login(admin_user)

    # 1 session, 2 its user, 3 capped count, 4 page, 5 code languages: as under the cap
    with django_assert_num_queries(5):
        response = client.get(CHANGELIST)

    assert response.context["cl"].paginator.capped
    assert "more than 5 posts" in " ".join(response.text.split())
    monkeypatch.setattr(CappedCountPaginator, "COUNT_CAP", 50)
    assert "12 posts" in " ".join(client.get(CHANGELIST).text.split())


def test_title_search_can_use_the_trigram_index(client, admin_user):
    from django.db import connection

    from posts.admin import PostAdmin

    PostFactory.create_batch(3, tag_count=0)
    request = client.get(CHANGELIST, {"q": "queries"}).wsgi_request
    model_admin = PostAdmin(Post, admin.site)
    queryset, _ = model_admin.get_search_results(request, Post.objects.all(), "queries")
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the choice visible
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())

    assert "post_title_trgm_idx" in plan


def test_code_language_filter_lists_each_language_once(client, admin_user):
    PostFactory.create_batch(2, code_language="python", tag_count=0)
    PostFactory(code_language="rust", tag_count=0)
    PostFactory(code_language="", tag_count=0)
    client.force_login(admin_user)

    response = client.get(CHANGELIST, {"code_language": "rust"})

    assert Post.objects.code_languages() == ["python", "rust"]
    assert len(response.context["cl"].result_list) == 1
    assert "?code_language=python" in response.text
