"""Every reader page is valid HTML: html5lib (the WHATWG parsing algorithm) in strict mode,
where any parse error fails, plus the checks a parser does not make (unique ids, labels)."""

import re
from collections import Counter

import html5lib
import pytest
from django.urls import reverse

from posts.models import Tag
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def parse_strictly(html: str):
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    try:
        return parser.parse(html)
    except html5lib.html5parser.ParseError as error:
        line, column = parser.errors[-1][0] if parser.errors else (0, 0)
        around = html.splitlines()[line - 1][max(0, column - 80) : column + 80] if line else ""
        pytest.fail(f"not valid HTML at line {line}, column {column}: {error}\n{around}")


@pytest.fixture
def pages(client):
    post = PostFactory(image_count=2, tag_count=2, entity_count=2, title='a "quoted" <title>')
    PostFactory.create_batch(3, tag_count=1)
    tag = Tag.objects.filter(post_count__gt=0).first()
    return {
        "home": "/",
        "article": post.get_absolute_url(),
        "tag index": reverse("posts:tags"),
        "tag": tag.get_absolute_url(),
        "search": reverse("posts:search") + "?q=queries",
        "empty search": reverse("posts:search"),
        "404": "/no/such/page/",
        "filtered list": "/?difficulty=beginner&tool=tool-tool-0",
        "filtered search": reverse("posts:search") + "?q=queries&difficulty=beginner",
    }


@pytest.mark.parametrize("page", [
    "home", "article", "tag index", "tag", "search", "empty search", "404", "filtered list",
    "filtered search", "second page",
])
def test_reader_pages_are_valid_html(client, pages, page, settings):
    if page == "second page":
        settings.POSTS_PER_PAGE = 2
        older = client.get("/").context["page"].older
        pages[page] = f"/?after={older}"
    response = client.get(pages[page])
    assert response.status_code in (200, 404)
    html = response.content.decode()
    document = parse_strictly(html)

    ids = Counter(element.get("id") for element in document.iter() if element.get("id"))
    assert [name for name, count in ids.items() if count > 1] == []
    for field in document.iter("input"):
        if field.get("type") in ("hidden", "submit"):
            continue
        labelled = field.get("aria-label") or (
            field.get("id") and re.search(f'<label for="{field.get("id")}"', html)
        )
        assert labelled, f"an input without a label: {field.attrib}"
    assert document.find("head/title").text.strip()
