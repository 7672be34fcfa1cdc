"""Clean prose: the checks a summary must pass, and the repair applied to every summary.

A summary fails when it copies a speaker tag from its source ("Grad C: ..."), carries remnants
of a chat template ("<|im_start|>", a bare "assistant" line), or says the same sentence twice.
`repair_summary` strips template remnants, removes speaker tags (dropping a quoted transcript
turn when the summary has other sentences, else keeping its words without the tag), and drops
repeated sentences; the checks then count what a repair could not fix. Nothing here depends
on one language: tags are found by their shape in the source, in any script.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# "Grad C:", "Project Manager:", "PhD A:", "主持人：" at the start of a line: one to three words
# (cased words capitalized), then a colon and a space, or a full-width colon.
_HEAD = re.compile(r"^[ \t]*([^\W\d_][\w.'-]*(?:[ \t][\w.'-]+){0,2})[ \t]*(?::[ \t]|：)", re.MULTILINE)
_MAX_TAG_CHARS = 40
_TEMPLATE = re.compile(
    r"<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>|<</?SYS>>|^\s*(?:system|user|assistant)\s*$",
    re.MULTILINE | re.IGNORECASE,
)
# The same remnants as spans to delete: a special token with the role word that follows it, or
# a line holding nothing but a role word.
_TEMPLATE_TOKEN = re.compile(
    r"(?:<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>|<</?SYS>>)"
    r"(?:[ \t]*(?:system|user|assistant|model)(?!\w))?",
    re.IGNORECASE,
)
_ROLE_LINE = re.compile(r"^[ \t]*(?:system|user|assistant)[ \t]*(?:\n|$)", re.MULTILINE | re.IGNORECASE)
# Sentence ends in Latin and CJK scripts; a sentence is compared by its words alone.
# A sentence may end inside a quote or bracket: 'He said "go." Then...', '「好。」他说'.
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?。！？])|(?<=[.!?。！？][\"”»」』’)]))\s+"
    r"|(?<=[。！？])(?![\"”»」』’)\s])|(?<=[。！？][\"”»」』’)])(?!\s)"
)
_ENDS = ".!?。！？…"
_WORD = re.compile(r"\w+")
_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»", "「": "」", "『": "』", "‘": "’"}
_OPENERS = "".join(_QUOTES)
_CLOSERS = re.escape("".join(sorted(set(_QUOTES.values()))))
_NAMED = re.compile(r"(?<!\w)([^\W\d_][\w.'-]*(?:[ \t][\w.'-]+){0,2})[ \t]*(?::(?=\s|$)|：)")
_GONE = "\x00"  # marks what was dropped, so that a line left empty goes with it
CHECKS = ("speaker_tags", "template_remnants", "repeated_sentences")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def sentence_key(sentence: str) -> str:
    """A sentence by its words alone, lower-cased: what makes two sentences the same."""
    return " ".join(_WORD.findall(sentence.lower()))


def _capital(word: str) -> bool:
    """Starts like a name: an upper-case letter, a digit, or a letter of a script without case."""
    c = word[0]
    return c.isdigit() or (c.isalpha() and not c.islower())


def _heads(text: str) -> list[str]:
    return [
        h
        for h in (m.strip() for m in _HEAD.findall(text))
        if len(h) <= _MAX_TAG_CHARS and all(_capital(w) for w in h.split())
    ]


def speaker_tags(text: str) -> set[str]:
    """The names a transcript puts before its turns."""
    return set(_heads(text))


def _anonymised(name: str) -> bool:
    """A name ending in a lone capital: "Grad C", "PhD A", "Professor B"."""
    words = name.split()
    return len(words) >= 2 and len(words[-1]) == 1 and words[-1].isupper()


def _own_tags(summary: str, anywhere: bool = False) -> set[str]:
    """Heads of the summary's lines and sentences that look like speaker tags: an anonymised
    speaker, or turn-taking (two heads or more, one of them used again); "Note: ..." or
    "Time: 3 pm" alone are left as they are. `anywhere`: anonymised names before a colon
    inside sentences too."""
    heads = [h for line in summary.splitlines() for u in sentences(line) for h in _heads(u)]
    counts = Counter(heads)
    dialogue = len(counts) >= 2 and max(counts.values()) >= 2
    tags = {h for h in counts if dialogue or _anonymised(h)}
    if anywhere:
        names = (" ".join(n.split()[-2:]) for n in _NAMED.findall(summary))
        tags |= {n for n in names if _anonymised(n) and _capital(n)}
    return tags


def _tags_for(summary: str, source: str | None) -> set[str]:
    """The source's tags, with tag-shaped names of the summary when the source is a transcript
    (a small model invents speakers: "Professor M:"); without a source, tag-shaped heads."""
    if source is None:
        return _own_tags(summary)
    tags = speaker_tags(source)
    return tags | _own_tags(summary, anywhere=True) if tags else tags


def _tag_pattern(tags: set[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(a run of tags ending in a colon, a bare tag). A run: "PhD C:", "Professor B (smiling):",
    "Professor B and Professor C:". A tag in a cased script must stand as words of its own."""
    names = "|".join(
        (r"(?<!\w)" if t[0].lower() != t[0].upper() or t[0].isascii() else "") + re.escape(t)
        for t in sorted(tags, key=len, reverse=True)
    )
    paren = r"(?:[ \t]*\([^()\n]{0,40}\))?"
    one = rf"(?:{names})(?![\w'-]){paren}"
    # after the first tag, other capitalized names may join it: "Professor B and Professor C:"
    more = rf"(?:{one}|[^\W\d_a-z][\w.'-]*(?:[ \t][^\W_a-z][\w.'-]*){{0,2}}{paren})"
    colon = rf"(?::(?=\s|$|[{_CLOSERS}])|：)"
    run = re.compile(rf"{one}(?:[ \t]*(?:[,&/+]|\w{{1,4}})?[ \t]*{more})*[ \t]*{colon}[ \t]*")
    return run, re.compile(rf"(?:{names})(?![\w'-])")


def _at_turn_start(text: str, pos: int) -> int | None:
    """Where a turn whose tag starts at `pos` begins (at an opening quote before the tag), or
    None when the tag is not at the start of a line or sentence."""
    start = pos
    while start > 0 and text[start - 1] in " \t" + _OPENERS:
        start -= 1
    while start < pos and text[start] in " \t":
        start += 1
    before = text[:start].rstrip(" \t")
    return start if not before or before[-1] in "\n" + _ENDS else None


def _says_nothing(text: str, bare: re.Pattern[str]) -> bool:
    """Nothing but speaker names, joined by fewer short words than names ("Professor B and
    Professor C", an empty turn)."""
    names = len(bare.findall(text))
    rest = _WORD.findall(bare.sub("", text))
    return not rest or (len(rest) < names and all(len(w) <= 4 for w in rest))


def _cut_inline(text: str, run: re.Pattern[str]) -> str:
    """The text without tag runs, and without a quote a cut leaves empty or unclosed."""
    out = text
    for m in reversed(list(run.finditer(text))):
        before, after = out[: m.start()], out[m.end() :]
        opener = before[-1:] if before[-1:] and before[-1:] in _QUOTES else ""
        if opener:
            closer = _QUOTES[opener]
            rest = after.split("\n", 1)[0]
            if rest.lstrip().startswith(closer):  # an empty quote: both go
                before = before[:-1].rstrip(" \t")
                after = after[len(after) - len(after.lstrip(" \t")) + 1 :]
            elif closer not in rest:  # a quote that never closes
                before = before[:-1]
        out = before + after
    return out


def _turn_words(body: str, opener: str, run: re.Pattern[str]) -> str:
    """A turn's words without its tag. An opening quote taken with the tag comes back only when
    it closes inside the turn; a closing quote that ends the turn goes; a cased script's first
    letter becomes a capital."""
    body = _cut_inline(body, run).strip()
    if opener:
        closer = _QUOTES[opener]
        core = body.rstrip(_ENDS + ",;")
        if core.endswith(closer) and closer not in core[:-1]:
            body = core[:-1] + body[len(core) :]
        elif closer in body:
            body = opener + body
    lead = len(body) - len(body.lstrip(_OPENERS))
    if lead < len(body) and body[lead].islower():
        body = body[:lead] + body[lead].upper() + body[lead + 1 :]
    return body


def remove_speaker_tags(text: str, tags: set[str]) -> str:
    """The text without the speaker tags `tags`.

    A turn is a quoted (or imitated) transcript turn: a line that starts with a tag, or a
    sentence that does inside a line of prose (up to the next turn either way). Turns are
    dropped when sentences with words of their own remain; else each turn keeps its words
    without its tag. Lines that only name speakers are dropped, and tags inside a sentence are
    cut out (with a quote that the cut leaves empty or unclosed)."""
    if not tags:
        return text
    run, bare = _tag_pattern(tags)
    turns: list[tuple[int, int]] = []  # (turn start, end of its tag)
    for m in run.finditer(text):
        start = _at_turn_start(text, m.start())
        if start is not None:
            turns.append((start, m.end()))
    if not turns and not run.search(text):
        return text
    spans: list[tuple[int, int, int]] = []  # (start, end of the tag or -1 outside turns, end)
    pos = 0
    for k, (start, tag_end) in enumerate(turns):
        line_end = text.find("\n", tag_end)
        end = min(len(text) if line_end < 0 else line_end, turns[k + 1][0] if k + 1 < len(turns) else len(text))
        if text[text.rfind("\n", 0, start) + 1 : start].strip():  # inside a line of prose: one sentence
            stop = _SENTENCE_END.search(text, tag_end, end)
            end = stop.start() if stop else end
        spans += [(pos, -1, start), (start, tag_end, end)]
        pos = end
    spans.append((pos, -1, len(text)))
    others = [s for a, t, b in spans if t < 0 for line in text[a:b].split("\n") for s in sentences(line)]
    keep_turns = all(_says_nothing(s, bare) for s in others)
    out = []
    for a, t, b in spans:
        if t < 0:
            lines = text[a:b].split("\n")
            out.append("\n".join(_GONE if x.strip() and _says_nothing(x, bare) else _cut_inline(x, run) for x in lines))
            continue
        words = _turn_words(text[t:b], text[a] if text[a] in _OPENERS else "", run)
        out.append(words if keep_turns and not _says_nothing(words, bare) else _GONE)
    lines = [x for x in "".join(out).split("\n") if x.replace(_GONE, "").strip() or _GONE not in x]
    return _tidy("\n".join(lines).replace(_GONE, ""))


def _tidy(text: str) -> str:
    lines = [re.sub(r"[ \t]{2,}", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_template(text: str) -> str:
    """The text without chat-template tokens and lines that hold only a role name."""
    cleaned = _ROLE_LINE.sub("", _TEMPLATE_TOKEN.sub("", text))
    return _tidy(cleaned) if cleaned != text else text


def prose_issues(summary: str, source: str | None = None) -> list[str]:
    """The checks (of CHECKS) this summary fails. A speaker tag is a name the source puts
    before its turns, followed by a colon anywhere in the summary, or, where the source has
    turns, a speaker-shaped name it does not use ("Grad F:"); without a source, a head of the
    summary's own lines or sentences that looks like a speaker tag (_own_tags)."""
    issues = []
    tags = _tags_for(summary, source)
    if tags and _tag_pattern(tags)[0].search(summary):
        issues.append("speaker_tags")
    if _TEMPLATE.search(summary):
        issues.append("template_remnants")
    keys = [k for k in (sentence_key(s) for s in sentences(summary)) if len(k.split()) >= 3]
    if len(set(keys)) < len(keys):
        issues.append("repeated_sentences")
    return issues


def drop_repeated_sentences(text: str) -> str:
    """The text with every sentence said before removed (small models loop on a sentence)."""
    seen: set[str] = set()
    kept = []
    for sentence in sentences(text):
        key = sentence_key(sentence)
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(sentence)
    return " ".join(kept) if len(kept) < len(sentences(text)) else text


def repair_summary(summary: str, source: str | None = None) -> str:
    """The summary as clean prose: template remnants stripped, speaker tags of `source` (or,
    without it, tag-shaped heads) removed, repeated sentences dropped. Empty when nothing but
    tags and template was left."""
    text = summary
    for _ in range(4):  # a cut can join two pieces into a new remnant ("Ann:" + "Bo: x"): again
        stripped = strip_template(text)
        repaired = drop_repeated_sentences(remove_speaker_tags(stripped, _tags_for(stripped, source)))
        if repaired == text:
            break
        text = repaired
    return text


def count_unclean(pairs: Iterable[tuple[str, str | None]]) -> dict[str, int]:
    """Per check, how many (summary, source) pairs fail it, and how many fail any."""
    counts = dict.fromkeys((*CHECKS, "unclean"), 0)
    for summary, source in pairs:
        issues = prose_issues(summary, source)
        for issue in issues:
            counts[issue] += 1
        counts["unclean"] += bool(issues)
    return counts
