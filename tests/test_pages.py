import datetime

import pytest
from django.core.exceptions import FieldFetchBlocked
from django.urls import reverse
from django.utils import timezone
from markupsafe import escape

from posts import reading
from posts.models import Post, PublicationStatus, SimilarPost, Tag, TagKind, TagRole
from posts.pagination import Position
from tests.factories import PostFactory, PostTagFactory, TagFactory
from tests.pagetext import visible_lines

pytestmark = pytest.mark.django_db


# (tags, images, entities, similar posts): each size at its minimum and maximum.
ARTICLE_SHAPES = [
    (1, 0, 0, 0),
    (40, 0, 0, 0),
    (1, 12, 0, 0),
    (1, 0, 20, 0),
    (1, 0, 0, 6),
    (40, 12, 20, 6),
]


@pytest.mark.parametrize(("tags", "images", "entities", "similar"), ARTICLE_SHAPES)
def test_article_page_queries_are_constant(
    client, django_assert_num_queries, tags, images, entities, similar
):
    post = PostFactory(tag_count=tags, image_count=images, entity_count=entities)
    # Similar posts share the tag "tool 0" with the post.
    PostFactory.create_batch(similar, tag_count=1)

    # One statement: the post with its revision, tag links, sections, figures and similar
    # posts (posts/reading.py).
    with django_assert_num_queries(1):
        response = client.get(post.get_absolute_url())

    assert response.status_code == 200
    assert len(response.context["similar_posts"]) == similar
    assert len(response.context["post"].figure_list) == images
    assert len(response.context["post"].entities) == entities


def loaded_shape(post, similar):
    """What the article page reads off a loaded post, as plain values."""
    def rows(instances, *names):
        return [tuple(getattr(item, name) for name in names) for item in instances]

    return {
        "post": {field.attname: getattr(post, field.attname)
                 for field in Post._meta.concrete_fields},
        "revision": rows([post.revision], "post_id", "status", "version", "last_reviewed"),
        "links": rows(post.all_tag_links, "id", "post_id", "tag_id", "role", "position",
                      "listed_at"),
        "tags": rows([link.tag for link in post.all_tag_links], "id", "name", "kind", "slug",
                     "post_count"),
        # The children know their post without a query (FETCH_RAISE would refuse one).
        "parents": [child.post is post for child in (
            *post.all_tag_links, *post.section_list, *post.figure_list)],
        "sections": rows(post.section_list, "id", "post_id", "position", "heading", "body"),
        "figures": rows(post.figure_list, "id", "post_id", "position", "source", "url",
                        "caption", "placement", "section_position"),
        "similar": rows(similar, "id", "title", "slug", "published_at", "code_language",
                        "difficulty", "reading_time"),
        "blocks": [(kind, str(block), [figure.pk for figure in figures])
                   for kind, block, figures in post.body_blocks()],
    }


@pytest.mark.parametrize("readers_only", [True, False])
def test_one_statement_article_loads_what_the_orm_loads(readers_only):
    post = PostFactory(tag_count=8, image_count=4, entity_count=5, section_count=3)
    PostFactory.create_batch(7, tag_count=2)
    draft = PostFactory(tag_count=2, status=PublicationStatus.DRAFT)
    # A draft never shows among similar posts, whoever reads.
    SimilarPost.objects.create(post=post, similar=draft, score=99)
    now = timezone.now()

    loaded = reading.article(post.slug, readers_only=readers_only, similar=6, now=now)
    queryset = Post.objects.published() if readers_only else Post.objects.all()
    expected = queryset.for_article_page().get(slug=post.slug)
    expected_similar = list(Post.objects.published().similar_to(expected, 6))

    assert loaded_shape(*loaded) == loaded_shape(expected, expected_similar)
    assert draft.pk not in {other.pk for other in loaded[1]}
    assert len(loaded[1]) == 6
    assert reading.article(draft.slug, readers_only=True, similar=6, now=now) is None
    assert reading.article(draft.slug, readers_only=False, similar=6, now=now) is not None


@pytest.mark.parametrize(("posts_per_page", "post_count"), [(5, 1), (5, 12), (50, 50)])
def test_latest_posts_queries_are_constant(
    client, settings, django_assert_num_queries, posts_per_page, post_count
):
    settings.POSTS_PER_PAGE = posts_per_page
    posts = PostFactory.create_batch(post_count, tag_count=3)
    # Stack tags in an order that is not their ids' order: the cards keep the post's order.
    for position, name in enumerate(["python", "django", "celery"]):
        stack = TagFactory(kind=TagKind.STACK, name=name)
        for post in posts[::2]:
            PostTagFactory(post=post, tag=stack, role=TagRole.STACK, position=2 - position)

    # One statement: the posts of the page with their stack tags, and the stored total
    with django_assert_num_queries(1):
        response = client.get(reverse("posts:list"))

    assert response.status_code == 200
    cards = response.context["page"].object_list
    assert len(cards) == min(posts_per_page, post_count)
    assert any(card.stack_tags for card in cards)
    for card in cards:
        stack = Post.objects.for_article_page().get(pk=card.pk).stack
        assert [(tag.name, tag.url) for tag in card.stack_tags] == [
            (tag.name, tag.get_absolute_url()) for tag in stack
        ]


@pytest.mark.parametrize(("posts_per_page", "post_count"), [(5, 1), (5, 12), (50, 50)])
def test_tag_page_queries_are_constant(
    client, settings, django_assert_num_queries, posts_per_page, post_count
):
    settings.POSTS_PER_PAGE = posts_per_page
    PostFactory.create_batch(post_count, tag_count=3)
    tag = Tag.objects.get(name="tool 1")

    # One statement: the tag with its post count, and the posts of the page (a bounded range
    # of the tag's links) with their stack tags
    with django_assert_num_queries(1):
        response = client.get(tag.get_absolute_url())

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == min(posts_per_page, post_count)


def test_lazy_loads_are_blocked_in_tests():
    PostFactory()
    post = Post.objects.only("id", "title").get()
    with pytest.raises(FieldFetchBlocked):
        post.intro  # noqa: B018 - the access itself is the test


@pytest.mark.parametrize(
    "state",
    [
        {"status": PublicationStatus.DRAFT, "published_at": None},
        {"published_at": timezone.now() + datetime.timedelta(days=1)},
    ],
    ids=["draft", "scheduled"],
)
def test_unpublished_posts_are_404_for_readers(client, state):
    post = PostFactory(**state)
    assert client.get(post.get_absolute_url()).status_code == 404
    assert post.title not in client.get(reverse("posts:list")).content.decode()


def test_latest_posts_lists_newest_first(client):
    older = PostFactory(published_at=timezone.now() - datetime.timedelta(days=3))
    newer = PostFactory(published_at=timezone.now() - datetime.timedelta(days=1))

    page = client.get(reverse("posts:list")).context["page"]

    assert [card.pk for card in page.object_list] == [newer.pk, older.pk]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "0"}, "expected a page number from 1"),
        ({"page": "abc"}, "expected a page number from 1"),
        ({"page": "²"}, "expected a page number from 1"),
        ({"after": "\u0661\u0662-\u0661"}, "is not a page cursor"),  # Arabic-Indic digits
        ({"after": "1-1\x00"}, "is not a page cursor"),
        ({"after": "1767225600000000-9999999999999999999"}, "post id out of range"),
        ({"page": "99"}, "No page 99: the list is shorter."),
        ({"after": "yesterday"}, "is not a page cursor"),
        ({"before": "9999999999999999999-1"}, "names a date out of range"),
        ({"after": "1-1", "page": "2"}, "not after and page"),
    ],
)
def test_bad_page_addresses_are_404_with_a_message(client, query, message):
    PostFactory()
    response = client.get(reverse("posts:list"), query)
    assert response.status_code == 404
    assert message in response.content.decode()


def test_tag_page_lists_each_tagged_post_once(client):
    tag = TagFactory(kind=TagKind.STACK, name="django")
    tagged = PostFactory(tag_count=0)
    PostTagFactory(post=tagged, tag=tag, role=TagRole.STACK)
    PostTagFactory(post=tagged, tag=tag, role=TagRole.ENTITY)  # the same tag in two roles
    PostFactory(tag_count=1)

    page = client.get(tag.get_absolute_url()).context["page"]

    assert [card.pk for card in page.object_list] == [tagged.pk]


def test_unknown_tag_is_404(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get(reverse("posts:tag", kwargs={"slug": "no-such-tag"}))
    assert response.status_code == 404


def test_lists_without_posts_still_show_their_total_in_one_query(
    client, django_assert_num_queries
):
    # The total (or the tag) comes in the same statement as the cards, also when there are
    # no cards: the head row is joined to the cards, not read from them.
    tag = TagFactory(name="nothing-yet")
    PostFactory(draft=True, tag_count=0).tag_links.create(tag=tag, role=TagRole.STACK, position=0)

    with django_assert_num_queries(1):
        home = client.get(reverse("posts:list"))
    with django_assert_num_queries(1):
        tag_page = client.get(tag.get_absolute_url())

    assert home.status_code == tag_page.status_code == 200
    assert home.context["total"] == 0 and home.context["page"].object_list == []
    assert tag_page.context["tag"].pk == tag.pk and tag_page.context["total"] == 0
    assert "No posts yet." in tag_page.text and "0 posts" in tag_page.text


def test_similar_posts_rank_by_tags_in_common_then_newest(client):
    post = PostFactory(tag_count=3)  # tool 0, tool 1, tool 2
    one_in_common_newer = PostFactory(tag_count=1)
    three_in_common = PostFactory(tag_count=3)
    two_in_common = PostFactory(tag_count=2, published_at=timezone.now() - datetime.timedelta(30))
    one_in_common_older = PostFactory(
        tag_count=1, published_at=timezone.now() - datetime.timedelta(days=60)
    )
    PostFactory(tag_count=1, draft=True)
    unrelated = PostFactory(tag_count=0)

    similar = list(client.get(post.get_absolute_url()).context["similar_posts"])

    assert similar == [three_in_common, two_in_common, one_in_common_newer, one_in_common_older]
    assert unrelated not in similar


def test_similar_posts_are_capped_at_six(client):
    post = PostFactory(tag_count=1)
    PostFactory.create_batch(8, tag_count=1)
    assert len(client.get(post.get_absolute_url()).context["similar_posts"]) == 6


def test_imported_text_is_escaped(client):
    hostile = '<script>alert("x")</script>'
    post = PostFactory(
        title=hostile, summary=hostile, intro=hostile, notes=[hostile], checklist=[hostile]
    )
    PostTagFactory(post=post, tag=TagFactory(name=hostile))

    html = client.get(post.get_absolute_url()).content.decode()

    assert "<script>" not in html
    assert str(escape(hostile)) in html  # &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;


def test_article_html_is_accessible(client):
    post = PostFactory(image_count=2)
    html = client.get(post.get_absolute_url()).content.decode()

    assert html.count("<h1") == 1
    for landmark in ("<header", "<main", "<footer", "<nav", "<aside"):
        assert landmark in html
    assert '<dl>' in html
    assert html.count('alt="visual reference') == 2
    assert '<html lang="en">' in html
    # One script only, deferred and from our own static files: the view-count beacon and the
    # figures' placeholder; the page reads the same without it. The other script element is
    # data (JSON-LD), which runs nothing.
    assert html.count("<script") == 2
    assert '<script src="/static/js/views.js" defer></script>' in html
    assert html.count('<script type="application/ld+json">') == 1


def test_meta_box_renders_lists_and_flags(client):
    post = PostFactory(entity_count=2, image_count=1, needs_human_review=False)
    lines = visible_lines(client.get(post.get_absolute_url()).content.decode())

    meta = lines[lines.index("alphanode post meta") :]
    assert meta[meta.index("flags") + 1 : meta.index("flags") + 5] == [
        "ai generated style: 1",
        "has images: 0",
        "image heavy: 0",
        "needs human review: 0",
    ]
    entities = meta[meta.index("entities") + 1 : meta.index("image sources")]
    assert entities == ["name: area 0", "type: area", "name: area 1", "type: area"]


def test_reader_templates_announce_a_django_context(client):
    # The debug toolbar's templates panel reads context.dicts from this signal (make demo).
    from django.template import Context
    from django.test.signals import template_rendered

    sent = []

    def receiver(sender, template, context, **kwargs):
        sent.append(context)

    template_rendered.connect(receiver)
    try:
        client.get(reverse("posts:list"))
    finally:
        template_rendered.disconnect(receiver)

    assert sent and all(isinstance(context, Context) for context in sent)
    assert "page" in sent[0].flatten()


def test_tag_read_in_plain_sql_is_the_orms():
    post = PostFactory(tag_count=2)
    for expected in Tag.objects.filter(post_links__post=post):
        found = reading.tag(expected.slug)
        assert [getattr(found, f.attname) for f in Tag._meta.concrete_fields] == [
            getattr(expected, f.attname) for f in Tag._meta.concrete_fields
        ]
        assert found.post_count == 1
        position, now = Position(), timezone.now()
        listed = reading.list_page(position, 0, 5, now=now, tag_slug=expected.slug)
        assert [getattr(listed.tag, f.attname) for f in Tag._meta.concrete_fields] == [
            getattr(found, f.attname) for f in Tag._meta.concrete_fields
        ]
        assert [card.pk for card in listed.cards] == [post.pk]
    assert reading.tag("no-such-tag") is None
    assert reading.list_page(Position(), 0, 5, now=timezone.now(), tag_slug="no-such") is None
