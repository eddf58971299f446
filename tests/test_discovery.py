"""Being found and browsing: feeds, sitemaps, robots.txt, the tag index, the header navigation,
SEO tags and JSON-LD, and the status codes of odd requests (issue 9)."""

import datetime
import json
import re
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse
from django.utils import timezone

from posts import derived, review
from posts.models import Post, Tag, TagKind, TagRole
from posts.services import tag_slug
from tests.factories import PostFactory, PostTagFactory, TagFactory
from tests.test_import_export import generated, jsonl, run_import, write

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def xml_of(response):
    assert response.status_code == 200, response.content[:300]
    return ET.fromstring(response.content)


def atom_titles(response):
    return [entry.find(f"{ATOM}title").text for entry in xml_of(response).iter(f"{ATOM}entry")]


def not_indexable(editor):
    """A flagged post, a draft, a future post and an unreviewed one: none is in a feed."""
    PostFactory(title="flagged one", flagged=True)
    PostFactory(title="draft one", draft=True)
    PostFactory(title="future one", published_at=timezone.now() + datetime.timedelta(days=1))
    unreviewed = PostFactory(title="unreviewed one")
    unreviewed.revision.status = "draft"
    unreviewed.revision.save()


# Feeds.


def test_the_feed_lists_the_newest_indexable_posts_in_one_query(
    client, editor, settings, django_assert_num_queries
):
    settings.FEED_SIZE = 3
    shown = [PostFactory(title=f"shown {n}", image_count=n % 2) for n in range(4)]
    not_indexable(editor)

    with django_assert_num_queries(1):
        response = client.get(reverse("posts:feed"))

    assert response["Content-Type"].startswith("application/atom+xml")
    newest_first = sorted(shown, key=lambda post: post.published_at, reverse=True)
    assert atom_titles(response) == [post.title for post in newest_first[:3]]
    entry = xml_of(response).find(f"{ATOM}entry")
    assert entry.find(f"{ATOM}link").get("href").endswith(newest_first[0].get_absolute_url())
    assert entry.find(f"{ATOM}updated").text


def test_rss_is_served_too(client):
    PostFactory(title="in the rss feed")
    channel = xml_of(client.get(reverse("posts:feed_rss"))).find("channel")
    assert [item.find("title").text for item in channel.iter("item")] == ["in the rss feed"]


def test_a_tag_feed_lists_that_tags_indexable_posts(client, editor, django_assert_num_queries):
    tagged = PostFactory(title="tagged", tag_count=2)  # tool 0 and tool 1
    PostFactory(title="other", tag_count=1)
    PostFactory(title="tagged but flagged", tag_count=2, flagged=True)
    tag = Tag.objects.get(name="tool 1")

    with django_assert_num_queries(2):  # the tag, its posts
        response = client.get(reverse("posts:tag_feed", args=[tag.slug]))

    assert atom_titles(response) == [tagged.title]
    assert client.get(reverse("posts:tag_feed", args=["no-such-tag"])).status_code == 404


def test_a_review_takes_a_post_out_of_the_cached_feed(
    client, page_cache, reviewer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post = PostFactory(title="soon flagged")
    assert atom_titles(client.get(reverse("posts:feed"))) == ["soon flagged"]
    assert client.get(reverse("posts:feed")).wsgi_request.cache_status == "hit"

    with django_capture_on_commit_callbacks(execute=True):
        review.flag_posts(Post.objects.filter(pk=post.pk), reviewer, "check the numbers")

    response = client.get(reverse("posts:feed"))
    assert response.wsgi_request.cache_status == "miss"
    assert atom_titles(response) == []


# Sitemaps and robots.txt.


def test_the_sitemap_index_names_one_section_per_id_range(client, settings):
    settings.SITEMAP_SECTION_SIZE = 2
    posts = PostFactory.create_batch(5)

    index = xml_of(client.get(reverse("sitemap")))
    locations = [loc.text for loc in index.iter(f"{SITEMAP}loc")]

    sections = max(post.pk for post in posts) // 2 + 1
    assert locations[0].endswith("/sitemap-tags.xml")
    assert [loc.rsplit("/", 1)[1] for loc in locations[1:]] == [
        f"sitemap-posts-{number}.xml" for number in range(sections)
    ]


def test_sitemap_sections_list_only_indexable_posts_with_lastmod(
    client, editor, settings, django_assert_num_queries
):
    settings.SITEMAP_SECTION_SIZE = 1000
    shown = PostFactory.create_batch(3)
    not_indexable(editor)

    with django_assert_num_queries(1):
        response = client.get(reverse("sitemap_posts", args=[0]))

    urls = xml_of(response).findall(f"{SITEMAP}url")
    assert [url.find(f"{SITEMAP}loc").text for url in urls] == [
        f"http://testserver{post.get_absolute_url()}" for post in sorted(shown, key=lambda p: p.pk)
    ]
    assert all(datetime.datetime.fromisoformat(url.find(f"{SITEMAP}lastmod").text)
               for url in urls)


def test_a_sitemap_section_past_the_last_is_404(client, settings):
    settings.SITEMAP_SECTION_SIZE = 1000
    PostFactory()
    assert client.get(reverse("sitemap_posts", args=[5])).status_code == 404
    assert client.get(reverse("sitemap_posts", args=[0])).status_code == 200


def test_the_tag_section_lists_home_the_tag_index_and_tags_with_posts(client):
    PostFactory(tag_count=1)
    TagFactory(name="unused")

    locations = [loc.text for loc in xml_of(client.get(reverse("sitemap_tags"))).iter(
        f"{SITEMAP}loc")]

    assert locations == ["http://testserver/", "http://testserver/tags/",
                         "http://testserver/tags/tool-tool-0/"]


def test_robots_txt_names_the_sitemap_and_keeps_crawlers_out_of_private_pages(client):
    response = client.get("/robots.txt")
    assert response["Content-Type"].startswith("text/plain")
    text = response.text
    assert "Sitemap: http://testserver/sitemap.xml" in text
    for path in ("/admin/", "/review/", "/search/"):
        assert f"Disallow: {path}" in text


# The tag index and the header.


def test_the_tag_index_groups_tags_by_kind_with_stored_counts(client, django_assert_num_queries):
    stack = TagFactory(kind=TagKind.STACK, name="django")
    for _ in range(3):
        post = PostFactory(tag_count=1)  # tool 0
        PostTagFactory(post=post, tag=stack, role=TagRole.STACK, position=0)
    derived.recount_posts()
    PostFactory(tag_count=2, draft=True)  # tool 1: only a draft, so not shown

    with django_assert_num_queries(1):
        response = client.get(reverse("posts:tags"))

    kinds = dict(response.context["kinds"])
    assert [(tag.name, tag.post_count) for tag in kinds["stack"]] == [("django", 3)]
    assert [(tag.name, tag.post_count) for tag in kinds["tool"]] == [("tool 0", 3)]
    assert f'href="{stack.get_absolute_url()}"' in response.text


def test_tag_index_counts_follow_an_import(client, tmp_path):
    path = write(tmp_path, jsonl(generated(count=30)))
    assert run_import(path)[2] is None

    kinds = dict(client.get(reverse("posts:tags")).context["kinds"])
    for tags in kinds.values():
        for tag in tags:
            assert tag.post_count == Post.objects.filter(
                tag_links__tag=tag, status="published").distinct().count()
    assert kinds


def test_the_header_links_the_main_stacks_and_the_tag_index(client, settings):
    response = client.get(reverse("posts:list"))
    nav = re.search(r'<nav class="site-nav".*?</nav>', response.text, re.S).group(0)
    for name in settings.HEADER_STACKS:
        assert f'href="/tags/{tag_slug(TagKind.STACK, name)}/"' in nav
    assert 'href="/tags/"' in nav


# SEO.


def head_of(response):
    return response.text.split("</head>", 1)[0]


def test_every_page_has_its_own_title_canonical_and_description(client, settings):
    settings.POSTS_PER_PAGE = 2
    post = PostFactory.create_batch(5, tag_count=1)[0]
    first = client.get("/")
    second = client.get("/", {"after": str(first.context["page"].older)})
    pages = [first, second, client.get("/tags/"), client.get("/tags/tool-tool-0/"),
             client.get(post.get_absolute_url())]

    titles = [re.search(r"<title>(.*?)</title>", head_of(page), re.S).group(1) for page in pages]
    assert len(set(titles)) == len(titles), titles
    assert "from" in titles[1]  # a later page says which posts it starts at
    for page in pages:
        head = head_of(page)
        assert re.search(r'<meta name="description" content="[^"]{20,}">', head), head
        assert len(re.findall(r'<link rel="canonical" href="http://testserver/', head)) == 1
    assert '<link rel="canonical" href="http://testserver/?after=' in head_of(second)


def test_the_canonical_address_drops_other_parameters(client):
    PostFactory()
    head = head_of(client.get("/", {"utm_source": "mail"}))
    assert '<link rel="canonical" href="http://testserver/">' in head


def test_an_article_has_opengraph_twitter_and_json_ld(client):
    post = PostFactory(title="json <b>ld</b> & friends", image_count=2, tag_count=2)
    head = head_of(client.get(post.get_absolute_url()))

    image = post.figures.order_by("position").first().url
    assert '<meta property="og:type" content="article">' in head
    assert f'<meta property="og:image" content="{image}">' in head
    assert '<meta name="twitter:card" content="summary_large_image">' in head
    script = re.search(r'<script type="application/ld\+json">(.*?)</script>', head, re.S).group(1)
    assert "<b>" not in script  # escaped inside the script element
    data = json.loads(script)
    assert data["@type"] == "Article" and data["headline"] == post.title
    assert data["image"] == [image]
    assert datetime.datetime.fromisoformat(data["datePublished"]) == post.published_at
    assert set(data["keywords"]) == {"tool 0", "tool 1"}
    assert data["url"] == f"http://testserver{post.get_absolute_url()}"


# Status codes.


def test_head_answers_like_get_without_a_body(client):
    post = PostFactory()
    response = client.head(post.get_absolute_url())
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize("method", ["trace", "put", "delete", "patch", "post"])
def test_other_methods_on_reader_pages_are_405(client, method):
    post = PostFactory()
    response = getattr(client, method)(post.get_absolute_url())
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert b"<html" not in response.content


def test_options_says_what_is_allowed_without_a_page(client):
    response = client.options("/")
    assert response.status_code == 200
    assert response["Allow"] == "GET, HEAD, OPTIONS" and response.content == b""


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age=86400" in response["Cache-Control"]


def test_figures_reserve_their_box_and_load_lazily_below_the_first(client):
    post = PostFactory(image_count=3)
    images = re.findall(r"<img [^>]*>", client.get(post.get_absolute_url()).text)
    assert len(images) == 3
    assert all('width="800" height="450"' in image for image in images)
    assert 'loading="lazy"' not in images[0]
    assert all('loading="lazy" decoding="async"' in image for image in images[1:])


def test_a_tag_rename_refreshes_the_tag_index_and_the_tag_sitemap(
    admin_client, client, page_cache, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        PostFactory(tag_count=1)
    tag = Tag.objects.get(name="tool 0")
    for url in (reverse("posts:tags"), reverse("sitemap_tags")):
        client.get(url)
        assert client.get(url).wsgi_request.cache_status == "hit"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:posts_tag_change", args=[tag.pk]),
            {"name": "renamed tool", "kind": tag.kind, "slug": "tool-renamed"},
        )
    assert response.status_code == 302, response.content[:500]

    assert "renamed tool" in client.get(reverse("posts:tags")).text
    assert "/tags/tool-renamed/" in client.get(reverse("sitemap_tags")).text


def test_recount_repairs_the_search_documents_listing_dates(client):
    from posts.models import SearchDocument

    post = PostFactory(title="repaired kestrel")
    SearchDocument.objects.filter(post=post).update(listed_at=None)  # as a raw write might
    assert client.get(reverse("posts:search"), {"q": "kestrel"}).context["found"].results == []

    derived.recount_posts()

    found = client.get(reverse("posts:search"), {"q": "kestrel"}).context["found"].results
    assert [result.card.title for result in found] == ["repaired kestrel"]
