"""HTML inspection helpers shared by the report tests (stdlib ``html.parser`` only)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

Attrs = list[tuple[str, str | None]]
_HEADING = re.compile(r"h([1-6])$")


class _Tags(HTMLParser):
    """Collects start tags with their attributes, and a heading/content event stream."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, Attrs]] = []
        self.events: list[tuple[str, int, str]] = []  # (kind, level, text)
        self._in_heading = 0
        self._heading_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Attrs) -> None:
        self.tags.append((tag, attrs))
        match = _HEADING.match(tag)
        if match:
            self._in_heading = int(match.group(1))
            self._heading_text = []
        elif tag == "section":
            self.events.append(("section", 0, ""))
        elif not self._in_heading and tag not in {"span", "br"}:
            self.events.append(("content", 0, tag))

    def handle_endtag(self, tag: str) -> None:
        if _HEADING.match(tag) and self._in_heading:
            text = " ".join("".join(self._heading_text).split())
            self.events.append(("heading", self._in_heading, text))
            self._in_heading = 0
        elif tag == "section":
            self.events.append(("end", 0, ""))

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self._heading_text.append(data)
        elif data.strip():
            self.events.append(("content", 0, data.strip()[:30]))


def parse(html: str) -> _Tags:
    """Parses a document once."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def parse_tags(html: str) -> list[tuple[str, Attrs]]:
    """Every start tag with its attributes, in document order."""
    return parse(html).tags


def section_ids(html: str) -> list[str]:
    """The ``id`` of every ``<section>`` in document order."""
    return [dict(attrs).get("id") or "" for tag, attrs in parse_tags(html) if tag == "section"]


def empty_headings(html: str) -> list[str]:
    """Headings with no content before the next heading of the same or a higher level.

    A heading counts as empty when the next thing after it is a heading of level <= its
    own, the end of its ``<section>``, or the end of the document.
    """
    events = parse(html).events
    empty = []
    for i, (kind, level, text) in enumerate(events):
        if kind != "heading":
            continue
        for later_kind, later_level, _ in events[i + 1 :]:
            if later_kind == "content":
                break
            if later_kind == "end" or (later_kind == "heading" and later_level <= level):
                empty.append(text)
                break
        else:
            empty.append(text)
    return empty


def section(html: str, section_id: str) -> str:
    """The markup of one ``<section id=...>`` (up to its closing tag; sections do not nest)."""
    start = html.index(f'<section id="{section_id}"')
    return html[start : html.index("</section>", start)]
