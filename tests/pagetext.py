"""Turn rendered HTML into the visible lines a browser's text rendering shows."""

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
