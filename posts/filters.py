"""Filters of the post lists and of search: stack, tool, difficulty, code language.

`?stack=` and `?tool=` take a tag's slug (any tag's: a link from elsewhere keeps working),
`?difficulty=` one of the difficulties, `?language=` a code language as posts write it. They
combine (all must hold). The filter bar offers the values editors chose in settings
(FILTER_STACKS, FILTER_TOOLS, FILTER_LANGUAGES), so showing it costs no query; every link in
it keeps the other filters. How a filtered list is read: posts/reading.py.
"""

import functools
import re
from dataclasses import dataclass, fields, replace
from urllib.parse import urlencode

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from jinja2 import pass_environment
from markupsafe import Markup

from posts.models import Difficulty, TagKind

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,130}")
MAX_LANGUAGE = 50  # Post.code_language's length


class BadFilter(ValueError):
    """A filter's value cannot be read; the message says what was expected."""


@dataclass(frozen=True)
class Filters:
    stack: str | None = None  # a tag slug
    tool: str | None = None  # a tag slug
    difficulty: str | None = None
    language: str | None = None

    @classmethod
    def from_query(cls, params) -> "Filters":
        """Read the filters of a query string; raise BadFilter for a value that cannot be."""
        values = {}
        for name in ("stack", "tool"):
            value = params.get(name, "").strip()
            if value and not SLUG.fullmatch(value):
                raise BadFilter(f"{name}={value[:40]!r} is not a tag's address name; expected "
                                "letters, digits and dashes, as in /tags/<name>/.")
            values[name] = value or None
        difficulty = params.get("difficulty", "").strip()
        if difficulty and difficulty not in Difficulty.values:
            raise BadFilter(f"difficulty={difficulty[:40]!r} is not a difficulty; expected one "
                            f"of {', '.join(Difficulty.values)}.")
        language = params.get("language", "").strip()
        if len(language) > MAX_LANGUAGE or "\x00" in language:
            raise BadFilter(f"language= is at most {MAX_LANGUAGE} characters of text.")
        return cls(values["stack"], values["tool"], difficulty or None, language or None)

    def __bool__(self):
        return any(self.items())

    def items(self):
        """(name, value) of each filter that is set."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)]

    @property
    def tags(self) -> list[str]:
        """The tag slugs the posts must carry."""
        return [slug for slug in (self.stack, self.tool) if slug]

    def signature(self) -> tuple[bool, ...]:
        """Which filters are set: what the shape of a filtered statement depends on."""
        return tuple(bool(getattr(self, f.name)) for f in fields(self))

    def query(self, **changes) -> str:
        """The query string of these filters with `changes` (None removes one), e.g. "?a=b"."""
        changed = replace(self, **changes)
        return f"?{urlencode(changed.items())}" if changed else "?"

    def apply(self, posts):
        """`posts` (a queryset) narrowed to these filters, as the ORM does it (SQLite, and the
        tests' reference for posts/reading.py)."""
        from django.db.models import Exists, OuterRef

        from posts.models import PostTag

        for slug in self.tags:
            posts = posts.filter(
                Exists(PostTag.objects.filter(post=OuterRef("pk"), tag__slug=slug))
            )
        if self.difficulty:
            posts = posts.filter(difficulty=self.difficulty)
        if self.language:
            posts = posts.filter(code_language=self.language)
        return posts

    def suffix(self) -> str:
        """The filters as "&a=b…" to follow a page parameter in a link ("" when none)."""
        return f"&{urlencode(self.items())}" if self else ""


def tag_choice(kind, name):
    from posts.services import tag_slug

    return name, tag_slug(kind, name)


@functools.lru_cache(maxsize=1024)
def options(filters: Filters) -> tuple[tuple[str, str, tuple[tuple[str, str, bool], ...]], ...]:
    """The filter bar: (filter label, name, ((value label, link, chosen), ...)) per filter.

    Kept per combination of filters: it depends on nothing else (the values come from
    settings), and building its links was a tenth of a list page's time.
    """
    groups = [
        ("stack", "stack", [tag_choice(TagKind.STACK, name) for name in settings.FILTER_STACKS]),
        ("tool", "tool", [tag_choice(TagKind.TOOL, name) for name in settings.FILTER_TOOLS]),
        ("difficulty", "difficulty", [(value, value) for value in Difficulty.values]),
        ("code language", "language", [(value, value) for value in settings.FILTER_LANGUAGES]),
    ]
    bar = []
    for label, name, values in groups:
        current = getattr(filters, name)
        choices = [
            (text, filters.query(**{name: None if value == current else value}),
             value == current)
            for text, value in values
        ]
        if current and current not in [value for _, value in values]:
            # A value from a link elsewhere: shown, so that it can be removed.
            choices.append((current, filters.query(**{name: None}), True))
        bar.append((label, name, tuple(choices)))
    return tuple(bar)


@pass_environment
def filter_bar(env, path: str, filters: Filters, query_text: str = "") -> Markup:
    """The filter bar's markup for the list at `path` (templates/posts/filters.html).

    Rendered once per address, filters and search text, and then kept: it depends on nothing
    else, and rendering its few dozen links cost a tenth of a list page.
    """
    return _rendered_bar(env, path, filters, query_text)


@functools.lru_cache(maxsize=1024)
def _rendered_bar(env, path, filters, query_text):
    template = env.get_template("posts/filters.html")
    return Markup(template.render(
        path=path, filters=filters, groups=options(filters), query_text=query_text,
    ))


@receiver(setting_changed)
def forget_options(setting, **kwargs):
    """Build the filter bar again when a test changes the values it offers."""
    if setting.startswith("FILTER_"):
        options.cache_clear()
        _rendered_bar.cache_clear()
