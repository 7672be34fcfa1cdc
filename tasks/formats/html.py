"""HTML to readable text: main content only, paragraphs kept, navigation and scripts dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


# Nesting depth, estimated in one linear pass before parsing. lexbor's tree builder walks the
# stack of open elements for each block start tag ("is a <p> open in button scope?"), so its time
# grows with depth times tags: 100k nested <div>s took ~40 s. Browsers cap depth too (Chrome's
# parser at 512). The estimate follows the open-element stack of the HTML standard loosely:
# void elements never open, an element with an optional end tag is closed by its next sibling,
# an end tag closes everything opened inside it, and raw text (script, style, comments) holds
# no tags. It may err on the deep side for odd markup; it never misses a real deep nesting.
VOID = {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input", "keygen"}
VOID |= {"link", "meta", "param", "source", "track", "wbr", "image"}
RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"}
BUTTON_SCOPE = {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "button"}
TABLE_SCOPE = {"html", "table", "template"}
LIST_SCOPE = BUTTON_SCOPE | {"ul", "ol", "dl", "body", "select", "form", "fieldset", "section", "article", "aside"}
LIST_SCOPE |= {"nav", "header", "footer", "main", "blockquote", "figure", "details", "center"}
P_CLOSERS = {"address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl"}
P_CLOSERS |= {"fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu", "nav", "ol", "p"}
P_CLOSERS |= {"search", "section", "summary", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "listing", "form"}
P_CLOSERS |= {"li", "dt", "dd", "hr", "table"}
SPECIAL = LIST_SCOPE | P_CLOSERS | {"tr", "tbody", "thead", "tfoot", "colgroup", "head", "noscript", "frameset"}
FORMATTING = {"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"}
# Groups of elements, and the scopes that stop a search for them: a start tag closes the last
# open element of its sibling group unless a scope element was opened after that one.
GROUPS = {
    "p": {"p"},
    "li": {"li"},
    "dt": {"dt", "dd"},
    "td": {"td", "th"},
    "tr": {"tr"},
    "section": {"thead", "tbody", "tfoot"},
    "option": {"option"},
    "optgroup": {"option", "optgroup"},
    "ruby": {"rb", "rt", "rtc", "rp"},
    "button-scope": BUTTON_SCOPE,
    "list-scope": LIST_SCOPE,
    "table-scope": TABLE_SCOPE,
    "select": {"select", "datalist", "optgroup"},
    "ruby-scope": {"ruby"},
    "special": SPECIAL,
}
SIBLINGS = {  # start tag: (the group it closes, the scope that stops the search)
    "p": ("p", "button-scope"),
    "li": ("li", "list-scope"),
    "dt": ("dt", "list-scope"),
    "dd": ("dt", "list-scope"),
    "td": ("td", "table-scope"),
    "th": ("td", "table-scope"),
    "tr": ("tr", "table-scope"),
    "thead": ("section", "table-scope"),
    "tbody": ("section", "table-scope"),
    "tfoot": ("section", "table-scope"),
    "option": ("option", "select"),
    "optgroup": ("optgroup", "select"),
    "rb": ("ruby", "ruby-scope"),
    "rt": ("ruby", "ruby-scope"),
    "rtc": ("ruby", "ruby-scope"),
    "rp": ("ruby", "ruby-scope"),
}
CLOSES = {  # start tag: the (group, scope) pairs it closes, in order
    name: ((("p", "button-scope"),) if name in P_CLOSERS else ()) + ((SIBLINGS[name],) if name in SIBLINGS else ())
    for name in P_CLOSERS | set(SIBLINGS)
}
IN_GROUPS = {name: tuple(g for g, names in GROUPS.items() if name in names) for name in set().union(*GROUPS.values())}
_TAG = re.compile(r"<!--.*?(?:-->|\Z)|<(/?)([a-zA-Z][^\s/<>]*)[^<>]*(>?)", re.S)
_RAW_END = {name: re.compile(f"</{name}", re.I) for name in RAW_TEXT}


class _OpenElements:
    """The stack of open element names, with the stack positions of each name and each group,
    so that every step is O(1) amortized: the pass stays linear whatever the nesting."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.at: dict[str, list[int]] = {}  # a name or a group: its positions, innermost last

    def push(self, name: str) -> None:
        depth = len(self.names)
        self.names.append(name)
        self.at.setdefault(name, []).append(depth)
        for group in IN_GROUPS.get(name, ()):
            self.at.setdefault(group, []).append(depth)

    def last(self, key: str) -> int:
        positions = self.at.get(key)
        return positions[-1] if positions else -1

    def pop_to(self, index: int) -> None:
        """Close the element at `index` and everything opened inside it."""
        while len(self.names) > index:
            name = self.names.pop()
            if name:
                self.at[name].pop()
            for group in IN_GROUPS.get(name, ()):
                self.at[group].pop()
        while self.names and not self.names[-1]:  # unlinked: nothing is open inside it any more
            self.names.pop()

    def unlink(self, index: int) -> None:
        """Close the formatting element at `index` but keep the blocks opened inside it open (the
        standard's "adoption agency": `<a><div>x</a>` leaves the div open). Its place stays
        counted in the depth until what is inside it closes, which may only overestimate."""
        self.at[self.names[index]].pop()
        self.names[index] = ""

    def close(self, group: str, scope: str) -> None:
        """Close the last open element of `group`, unless a `scope` element is opened after it."""
        last = self.last(group)
        if last > self.last(scope):
            self.pop_to(last)


@dataclass
class Shape:
    """What makes lexbor slow: nesting depth, and `<option>`s in a `<select>` (each one added
    costs time in proportion to those before it: 40k options in one list took 9 s)."""

    depth: int = 0  # the deepest nesting
    options: int = 0  # <option>s directly in <select>s, all lists together


def html_shape(html: str, max_depth: int, max_options: int) -> Shape:
    """The shape of `html` as a parser would build it (an estimate), in one linear pass that
    stops as soon as the depth or the options pass their limits."""
    stack = _OpenElements()
    shape = Shape()
    pos = 0
    while match := _TAG.search(html, pos):
        pos = match.end()
        end, name, done = match.group(1, 2, 3)
        if not done:  # a comment, or a tag cut short by the next "<" (no element either way)
            continue
        name = name.lower()
        if end:  # an end tag closes what it matches, and everything inside it
            if (last := stack.last(name)) < 0:
                continue
            if name in FORMATTING and stack.last("special") > last:
                stack.unlink(last)
            else:
                stack.pop_to(last)
            continue
        _open(stack, name, self_closed=html[pos - 2] == "/")
        shape.depth = max(shape.depth, len(stack.names))
        shape.options += name == "option" and stack.names[-2:-1] == ["select"]
        if shape.depth > max_depth or shape.options > max_options:
            break
        if name in RAW_TEXT:  # its text is not markup: go on after its end tag
            close = _RAW_END[name].search(html, pos)
            pos = close.end() if close else len(html)
    return shape


def _open(stack: _OpenElements, name: str, self_closed: bool) -> None:
    """A start tag: close what it closes, then open it unless it is void."""
    for group, scope in CLOSES.get(name, ()):
        stack.close(group, scope)
    if name in VOID or name in RAW_TEXT:
        return
    if self_closed and (name in ("svg", "math") or stack.last("svg") >= 0 or stack.last("math") >= 0):
        return  # `<path/>` in SVG or MathML is closed; in HTML the slash means nothing
    stack.push(name)
