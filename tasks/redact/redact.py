"""Redaction of one text: detections resolved, values replaced by typed, numbered placeholders.

Overlapping detections are resolved deterministically: detections that overlap (directly or
through a chain) become one span covering all of them, typed by the first of their types in
`TYPES` order. Nothing any detector found is left half-replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tasks.redact.detectors import DETECTORS, Detection
from tasks.redact.settings import TYPES, RedactSettings

PLACEHOLDER = re.compile(r"\[([A-Z_]+)_(\d+)\]")


def placeholder_type(type_: str) -> str:
    return type_.upper()


@dataclass
class Placeholders:
    """The placeholders of one document: the same value, the same placeholder; numbered per type
    in order of first appearance, after any number the document's text already uses."""

    names: dict[tuple[str, str], str] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)

    def reserve(self, text: str) -> None:
        """Numbers already in `text` (a text redacted before) are not given out again."""
        for m in PLACEHOLDER.finditer(text):
            self.used[m.group(1)] = max(self.used.get(m.group(1), 0), int(m.group(2)))

    def name(self, type_: str, key: str) -> str:
        if (type_, key) not in self.names:
            label = placeholder_type(type_)
            self.used[label] = self.used.get(label, 0) + 1
            self.names[(type_, key)] = f"[{label}_{self.used[label]}]"
        return self.names[(type_, key)]


@dataclass
class Redacted:
    text: str
    spans: dict[str, list[tuple[int, int]]]  # per type: each placeholder's [start, end) in `text`

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.spans.values())


MAX_ROUNDS = 4


def detect(text: str, settings: RedactSettings) -> list[Detection]:
    """Every detection of the settings' types, overlaps merged, in text order.

    The detectors run in `TYPES` order, each on the text with what the ones before it found
    masked (so the phone matcher never reads the digits of a card or an ID number), and all run
    again until nothing new turns up: a value beside another ("+86 138 0013 8000  13912345678")
    can hide in a longer run of digits that the phone matcher refuses whole, and is found once its
    neighbour is masked. So redaction is idempotent on its own output."""
    found: list[Detection] = []
    masked = text
    for _ in range(MAX_ROUNDS):
        before = len(found)
        for type_ in TYPES:
            if type_ in settings.types:
                new = [d for d in DETECTORS[type_](masked, settings) if d.end > d.start]
                found += new
                masked = _mask(masked, new) if new else masked
        if len(found) == before:
            break
    found.sort(key=lambda d: (d.start, -d.end, TYPES.index(d.type)))
    merged: list[Detection] = []
    group: list[Detection] = []
    for detection in [*found, None]:
        if detection is not None and group and detection.start < max(d.end for d in group):
            group.append(detection)
            continue
        if group:
            merged.append(_merge(text, group))
        group = [detection] if detection is not None else []
    return merged


def _mask(text: str, spans: list[Detection]) -> str:
    """Each span replaced by brackets and letters of the same length (offsets hold), as a
    placeholder reads."""
    parts, at = [], 0
    for d in sorted(spans, key=lambda d: d.start):
        if d.start < at:
            continue
        parts += [text[at : d.start], ("[" + "X" * (d.end - d.start - 2) + "]")[: d.end - d.start]]
        at = d.end
    return "".join([*parts, text[at:]])


def _merge(text: str, group: list[Detection]) -> Detection:
    start, end = min(d.start for d in group), max(d.end for d in group)
    winner = min(group, key=lambda d: (TYPES.index(d.type), d.start))
    whole = winner.start == start and winner.end == end
    return Detection(start, end, winner.type, winner.key if whole else text[start:end])


def redact(text: str, settings: RedactSettings, placeholders: Placeholders | None = None) -> Redacted:
    """`text` with each detected value replaced by its placeholder; `placeholders` shared by the
    fields of one document keep them consistent across it."""
    if placeholders is None:
        placeholders = Placeholders()
        placeholders.reserve(text)
    out: list[str] = []
    spans: dict[str, list[tuple[int, int]]] = {}
    at = length = 0
    for d in detect(text, settings):
        kept = text[at : d.start]
        name = placeholders.name(d.type, d.key)
        out += [kept, name]
        length += len(kept)
        spans.setdefault(d.type, []).append((length, length + len(name)))
        length += len(name)
        at = d.end
    out.append(text[at:])
    return Redacted("".join(out), spans)


def scrub(text: str, settings: RedactSettings, placeholders: Placeholders | None = None) -> str:
    """A text stored beside documents (a reject's message), redacted; percent-decoded when that
    finds more (a message quoting a record id `ann%40example.com`)."""
    from urllib.parse import unquote

    redacted = redact(text, settings, placeholders).text
    if "%" in redacted and (decoded := redact(unquote(redacted), settings, placeholders)).count:
        return decoded.text
    return redacted


def scrub_uri(uri: str, settings: RedactSettings, placeholders: Placeholders | None = None) -> str:
    """A URI redacted in its percent-decoded form (a record id `a%40b.com` is an address);
    unchanged when nothing is found, so most URIs stay exactly as they were. The URIs of one
    file's records share `placeholders`, so records named by different addresses stay apart."""
    from urllib.parse import quote, unquote

    redacted = redact(unquote(uri), settings, placeholders)
    return quote(redacted.text, safe="/:#[]~") if redacted.count else uri
