"""Turn rendered HTML into the text a reader sees: visible lines, or page-text."""

import re
from html.parser import HTMLParser

BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main",
    "nav", "ol", "p", "section", "table", "tr", "ul", "br",
}
HIDDEN_TAGS = {"head", "script", "style", "template"}


class VisibleText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines = []
        self.current = []
        self.hidden_depth = 0

    def flush(self):
        text = " ".join("".join(self.current).split())
        if text:
            self.lines.append(text)
        self.current = []

    def handle_starttag(self, tag, attrs):
        if tag in HIDDEN_TAGS:
            self.hidden_depth += 1
        elif tag in BLOCK_TAGS:
            self.flush()
        elif tag == "img" and not self.hidden_depth:
            self.flush()
            alt = dict(attrs).get("alt")
            if alt:
                self.lines.append(" ".join(alt.split()))

    def handle_endtag(self, tag):
        if tag in HIDDEN_TAGS:
            self.hidden_depth -= 1
        elif tag in BLOCK_TAGS:
            self.flush()

    def handle_data(self, data):
        if not self.hidden_depth:
            self.current.append(data)


def visible_lines(html: str) -> list[str]:
    """Return the non-empty lines of text a reader sees in `html`, images as their alt text."""
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    parser.flush()
    return parser.lines


# Blocks a blank line sets apart in page-text, as in the page-text example; other blocks only
# start a new line.
PARAGRAPH_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "nav", "p"}
LIST_TAGS = {"ol", "ul"}
MAIN = re.compile(r"<main\b.*?</main>", re.DOTALL | re.IGNORECASE)


class PageText(HTMLParser):
    """Collects a page's text with the page-text conventions (see page_text)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines = []
        self.current = []
        self.hidden_depth = 0
        self.list_depth = 0
        self.bullet = ""
        self.blank_before = False

    def emit(self, text):
        if self.blank_before and self.lines:
            self.lines.append("")
        self.lines.append(text)
        self.blank_before = False

    def flush(self):
        text = " ".join("".join(self.current).split())
        if text:
            self.emit(self.bullet + text)
            self.bullet = ""
        self.current = []

    def handle_starttag(self, tag, attrs):
        if tag in HIDDEN_TAGS:
            self.hidden_depth += 1
        elif self.hidden_depth or tag == "dd":
            # A dd's text joins its dt's line, unless it holds a list (which starts a line).
            return
        elif tag == "img":
            self.flush()
            alt = " ".join((dict(attrs).get("alt") or "").split())
            if alt:
                self.emit(alt)
        elif tag in LIST_TAGS:
            self.flush()
            self.list_depth += 1
        elif tag == "li":
            self.flush()
            self.bullet = "  " * self.list_depth + "• "
        elif tag in BLOCK_TAGS:
            self.flush()
            self.blank_before = self.blank_before or tag in PARAGRAPH_TAGS

    def handle_endtag(self, tag):
        if tag in HIDDEN_TAGS:
            self.hidden_depth -= 1
        elif self.hidden_depth or tag == "dt":
            return
        elif tag in LIST_TAGS:
            self.flush()
            self.list_depth -= 1
        elif tag == "li":
            self.flush()
            self.bullet = ""
        elif tag in BLOCK_TAGS:
            self.flush()
            self.blank_before = self.blank_before or tag in PARAGRAPH_TAGS

    def handle_data(self, data):
        if not self.hidden_depth:
            self.current.append(data)


def page_text(html: str) -> str:
    """Return the page-text of `html`'s main content, as the page-text example shows a page.

    Only <main> is rendered when there is one: page-text starts at the breadcrumb, without the
    site header. Paragraphs, headings and the breadcrumb stand between blank lines; list items
    are "  • item", indented 2 more spaces per nested list; a dt and its plain-text dd share a
    line ("reading time14"); images show as their alt text.
    """
    main = MAIN.search(html)
    parser = PageText()
    parser.feed(main.group() if main else html)
    parser.close()
    parser.flush()
    return "\n".join(parser.lines) + "\n"
