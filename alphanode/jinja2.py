"""Jinja2 for the site's own pages; the admin keeps Django's template language.

Reader pages are rendered on every uncached request, and Django's template language spent
more time on them than everything else in the request together (a list page of 20 cards:
3.5 ms against 0.8 ms in Jinja2, bench/site_bench.py). The filters below are Django's own, so
dates and truncation read exactly as before.
"""

import functools
from urllib.parse import urlencode

from django.conf import settings
from django.template import Context, defaultfilters
from django.template.backends import jinja2 as django_jinja2
from django.templatetags.static import static
from django.test.signals import template_rendered
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from jinja2 import Environment


def url(name, *args, **kwargs):
    """Return reverse(name, args=args, kwargs=kwargs), as {% url %} does.

    A URL without arguments is reversed once per script prefix: every page prints the same
    few (the header's, the footer's, the feed's), and reverse() costs more than the rest of a
    card.
    """
    if not args and not kwargs:
        return _reverse_once(name, get_script_prefix())
    return reverse(name, args=args or None, kwargs=kwargs or None)


@functools.cache
def _reverse_once(name, script_prefix):
    return reverse(name)


def iso_datetime(value):
    """Return `value` in the current time zone as ISO 8601, like Django's date:"c"."""
    return value.astimezone(timezone.get_current_timezone()).isoformat() if value else ""


def strftime(value, pattern):
    """Return `value` (in the current time zone) formatted with strftime `pattern`.

    Django's date filter goes through its localization machinery on every call: a third of a
    list page's rendering time for two dates per card.
    """
    if not value:
        return ""
    if getattr(value, "tzinfo", None) is not None:
        value = value.astimezone(timezone.get_current_timezone())
    return value.strftime(pattern)


def truncatewords(value, length):
    """Return `value` cut to `length` words with " …" added, exactly as Django's filter does.

    Django's goes through its lazy Truncator on every call: a third of a list page's
    rendering time for one summary per card.
    """
    try:
        length = int(length)
    except (TypeError, ValueError):
        return str(value)  # as Django's: an unusable length leaves the text alone
    if length <= 0:
        return ""
    words = str(value).split(None, length)  # the words past `length` stay one string
    if len(words) <= length:
        return " ".join(words)
    text = " ".join(words[:length])
    return text if text.endswith(" …") else f"{text} …"


@functools.cache  # the setting is read once per process
def header_stacks():
    """The header's navigation: (name, address) of each stack in settings.HEADER_STACKS."""
    from posts.models import TagKind, url_for
    from posts.services import tag_slug

    return [(name, url_for("posts:tag", tag_slug(TagKind.STACK, name)))
            for name in settings.HEADER_STACKS]


# The query parameters that name a distinct page of a list; any other is left out of its
# canonical address (search pages are noindex).
CANONICAL_PARAMETERS = ("after", "before", "page")


def canonical_url(request):
    """The address search engines should index for this page: no tracking or other
    parameters, only those that name its page."""
    kept = [(name, request.GET[name]) for name in CANONICAL_PARAMETERS if name in request.GET]
    query = f"?{urlencode(kept)}" if kept else ""
    return request.build_absolute_uri(request.path) + query


def environment(**options):
    env = Environment(**options)
    from posts import seo
    from posts.cards import post_cards, search_cards
    from posts.filters import filter_bar

    env.globals.update(
        static=static, url=url, header_stacks=header_stacks, canonical_url=canonical_url,
        article_json_ld=seo.article_json_ld, first_image=seo.first_image,
        filter_bar=filter_bar, post_cards=post_cards, search_cards=search_cards,
    )
    env.filters.update(
        truncatechars=defaultfilters.truncatechars,
        truncatewords=truncatewords,
        yesno=defaultfilters.yesno,
        pluralize=defaultfilters.pluralize,
        intcomma=lambda value: f"{value:,}",
        iso_datetime=iso_datetime,
        strftime=strftime,
    )
    return env


class Jinja2(django_jinja2.Jinja2):
    """Django's Jinja2 backend, whose templates announce their rendering like Django's do.

    The test client records `response.context`, and the debug toolbar its templates panel,
    from the template_rendered signal, which only Django's own templates send; nothing is sent
    when nobody listens (production).
    """

    def from_string(self, template_code):
        return Template(super().from_string(template_code))

    def get_template(self, template_name):
        return Template(super().get_template(template_name))


class Template:
    def __init__(self, template):
        self.template = template
        self.origin = template.origin
        self.name = template.origin.template_name

    def render(self, context=None, request=None):
        context = {} if context is None else context
        content = self.template.render(context, request)
        if template_rendered.has_listeners():
            # A Context, as Django's templates send: the debug toolbar reads its layers.
            template_rendered.send(sender=self, template=self, context=Context(context))
        return content
