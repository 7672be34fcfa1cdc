"""HTML to readable text: main content only, paragraphs kept, navigation and scripts dropped."""

from __future__ import annotations

import re

BOILERPLATE = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg", "iframe")
BLOCKS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "pre",
    "blockquote",
    "table",
    "tr",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "br",
    "hr",
}
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


def html_to_text(html: str) -> tuple[str, str]:
    """The text of an HTML page (blocks separated by blank lines) and its title."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    title_node = tree.css_first("title") or tree.css_first("h1")
    title = _SPACES.sub(" ", title_node.text()).strip() if title_node else ""
    tree.strip_tags(list(BOILERPLATE))
    root = tree.css_first("main") or tree.css_first("article") or tree.body or tree.root
    if root is None:
        return "", title
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        line = _SPACES.sub(" ", "".join(current)).strip()
        if line:
            blocks.append(line)
        current.clear()

    for node in root.traverse(include_text=True):
        if node.tag == "-text":
            current.append(node.text_content or "")
        elif node.tag in BLOCKS:
            flush()
    flush()
    return "\n\n".join(blocks), title
