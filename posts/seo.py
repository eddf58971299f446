"""What an article tells search engines and link previews: JSON-LD and OpenGraph values."""

import json

from django.utils.safestring import SafeString, mark_safe

# As django.utils.html.json_script: the JSON cannot end the <script> element it sits in.
JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def first_image(post):
    """The URL of the post's first figure, or None (reads the loaded figure list)."""
    return post.figure_list[0].url if post.figure_list else None


def article_json_ld(post, request) -> SafeString:
    """A schema.org Article for `post` as a JSON-LD script element."""
    data = {
        "@context": "https://schema.org",
        "@type": "Article",
        "headline": post.title[:110],  # what Google shows at most
        "description": post.summary,
        "url": request.build_absolute_uri(post.get_absolute_url()),
        "mainEntityOfPage": request.build_absolute_uri(post.get_absolute_url()),
        "datePublished": post.published_at.isoformat() if post.published_at else None,
        "dateModified": post.updated_at.isoformat() if post.updated_at else None,
        "keywords": [tag.name for tag in (*post.stack, *post.tools)],
        "author": {"@type": "Organization", "name": "alphanode"},
        "publisher": {"@type": "Organization", "name": "alphanode"},
    }
    if image := first_image(post):
        data["image"] = [image]
    data = {name: value for name, value in data.items() if value is not None}
    text = json.dumps(data, ensure_ascii=False).translate(JSON_ESCAPES)
    return mark_safe(f'<script type="application/ld+json">{text}</script>')


