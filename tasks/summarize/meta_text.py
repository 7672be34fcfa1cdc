"""Meta-text: sentences that describe the text instead of stating what it says.

"The text discusses X", "This article provides an overview", "本文介绍了X": the subject is the
text (or its speaker, its author) and the verb says what the text does. A lead-in before a
statement is stripped ("The article argues that X" -> "X", "In this excerpt, X" -> "X", "文章指出，
X" -> "X"); a sentence that only names a topic is dropped, and so is a following "It also
describes ..." whose "it" is the text.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_EN_OPENER = r"(?:(?:overall|in summary|in short|in conclusion|to summarize|in essence)\s*,\s*)?"
_EN_SUBJECT = (
    r"(?:the|this|that|these|the given|the provided|the above)\s+(?:\w+\s+){0,2}?"
    r"(?:text|article|passage|excerpt|document|transcript|conversation|dialogue|post|blog|paper|story|"
    r"essay|section|summary|snippet|extract|content|speakers?|authors?|writer|narrator|meeting\s+(?:excerpt|"
    r"transcript|notes))s?"
)
_EN_SAYING = (
    r"(?:says|said|states|stated|argues|argued|notes|noted|claims|explains|emphasizes|stresses|suggests|"
    r"concludes|reports|mentions|points out|highlights)"
)
# "The article argues that X": X is a statement of its own.
_EN_CLAUSE_LEAD = re.compile(
    rf"^{_EN_OPENER}(?:{_EN_SUBJECT})\s+(?:also\s+)?{_EN_SAYING}\s*(?:that\s+|:\s*|,\s*)", re.IGNORECASE
)
# "The main point is that X" (a prefilled lead, tasks/language.py): X is a statement of its own.
_EN_POINT_LEAD = re.compile(
    r"^(?:the\s+)?(?:main|key|central|most important)\s+(?:points?|ideas?|findings?|takeaways?|conclusions?|"
    r"facts?|decisions?|arguments?)(?:\s+(?:of|in)\s+(?:the|this)\s+\w+)?\s+(?:is|are|was|were)\s*(?:that\s+|:\s*|$)",
    re.IGNORECASE,
)
# "In this article, X" / "According to the text, X": X is a statement of its own.
_EN_FRAME = re.compile(
    r"^(?:in|within|throughout)\s+(?:this|the)\s+(?:\w+\s+)?(?:text|article|passage|excerpt|document|"
    r"transcript|conversation|post|paper|section|meeting excerpt)\s*,\s*|^according to (?:the|this) "
    r"(?:text|article|passage|excerpt|document|transcript|speakers?|author)\s*,\s*",
    re.IGNORECASE,
)
# Anything else whose subject is the text or its speaker describes the text: "The text
# discusses the development of X", "The text is written in plain prose", "This is a summary of".
_EN_ABOUT = re.compile(
    rf"^{_EN_OPENER}(?:{_EN_SUBJECT})\s+(?:\w+\s+)?(?:is|are|was|were|discuss|describ|provid|present|focus|"
    r"talk|explor|delv|cover|outlin|introduc|summar|appear|seem|offer|give|highlight|touch|revolv|center|"
    r"detail|examin|review|shar|contain|include|consist|begin|start|end|conclud|mention|address|deal|"
    r"reflect|raise|illustrat|show|portray|depict|tell|emphasi|express|convey)\w*\b"
    r"|^this is (?:a|an|the) (?:\w+\s+){0,2}(?:summary|text|article|excerpt|transcript|story|scene)\b",
    re.IGNORECASE,
)
_ZH_SUBJECT = r"(?:本文|本篇|该文|这篇(?:文章|论文|文本)?|此文|文章|原文|上文|文本|作者|讲话者|发言人)"
_ZH_OPENER = r"(?:总之|总的来说|综上所述|总体而言|简而言之)?[，,]?"
# "本文指出，X" / "文章认为X": X is a statement.
_ZH_CLAUSE_LEAD = re.compile(
    rf"^{_ZH_OPENER}{_ZH_SUBJECT}(?:还|也)?(?:指出|认为|表示|强调|提出|说明|写道)(?:了)?[，,：:]?"
)
# "主要观点是：X" (a prefilled lead).
_ZH_POINT_LEAD = re.compile(
    rf"^(?:{_ZH_SUBJECT}|其)?的?(?:主要|核心|关键)?(?:观点|结论|内容|要点|事实)(?:是|为|如下|包括)[：:，,]?"
)
# "在本文中，X" / "根据文章，X".
_ZH_FRAME = re.compile(
    rf"^(?:在{_ZH_SUBJECT}中|{_ZH_SUBJECT}中|根据{_ZH_SUBJECT}|从{_ZH_SUBJECT}(?:中)?可以看出)[，,：:]?"
)
# "本文介绍了X" / "这篇文章讨论了X": X is a topic, not a statement.
_ZH_ABOUT = re.compile(
    rf"^{_ZH_OPENER}{_ZH_SUBJECT}(?:主要|首先|还|也|则|将|对|就|从|以)?(?:介绍|讨论|探讨|描述|概述|总结|阐述|分析|论述|"
    r"研究|提供|涉及|是|围绕|关注|聚焦|讲述|回顾|展示|给出|包括|包含|分为|旨在|针对|重点|详细|简要|深入|系统|全面)"
)
# After a sentence about the text, its pronoun is the text: "It also describes the tool's features."
_IT_CLAUSE_LEAD = re.compile(rf"^(?:it|this|they)\s+(?:also\s+)?{_EN_SAYING}\s*(?:that\s+|:\s*|,\s*)", re.IGNORECASE)
_IT_ABOUT = re.compile(
    r"^(?:it|this|they)(?:'s|\s+(?:also\s+)?(?:is|are|was|were|discuss|describ|provid|present|focus|talk|explor|"
    r"delv|cover|outlin|introduc|summar|appear|seem|offer|give|highlight|touch|mention|include|contain|"
    r"emphasi|show|explain)\w*)\b",
    re.IGNORECASE,
)
_ZH_IT_CLAUSE_LEAD = re.compile(r"^(?:它|其|该文|文中)(?:还|也)?(?:指出|认为|表示|强调|提出|说明)(?:了)?[，,：:]?")
_ZH_IT_ABOUT = re.compile(
    r"^(?:它|其|该文|文中)(?:还|也)?(?:介绍|讨论|探讨|描述|概述|总结|阐述|分析|提供|涉及|是|包括|提到)"
)
# "It's a summary of ...", "This is just a summary of what was said": about the text in any place.
_SUMMARY_OF = re.compile(
    r"^(?:it|this)(?:'s|\s+is)\s+(?:just\s+|only\s+|simply\s+)?(?:a|an)\s+(?:\w+\s+)?summary\b", re.I
)
# In a transcript what the text "discusses" is what its participants discussed: an event of the
# meeting, as QMSum's own reference summaries state it ("The group discussed ...", "The meeting
# was focused on ..."). So there a topic-only sentence gets that subject instead of being dropped;
# in an article "The article discusses X" names a topic, not a statement, and goes.
MEETING_SUBJECT = "The participants"
_MEETING_VERBS = {  # the text's verb -> what the participants did, with what follows it
    "discuss": "discussed",
    "talk about": "talked about",
    "cover": "discussed",
    "address": "addressed",
    "explore": "explored",
    "focus on": "focused on",
    "center on": "focused on",
    "centre on": "focused on",
    "revolve around": "discussed",
    "deal with": "dealt with",
    "touch on": "touched on",
    "delve into": "discussed",
    "examine": "examined",
    "review": "reviewed",
    "mention": "mentioned",
    "highlight": "highlighted",
    "emphasize": "emphasized",
    "emphasise": "emphasized",
    "stress": "stressed",
    "describe": "described",
    "explain": "explained",
    "outline": "outlined",
    "raise": "raised",
    "present": "presented",
    "introduce": "introduced",
    "suggest": "suggested",
    "propose": "proposed",
    "note": "noted",
    "is about": "discussed",
    "are about": "discussed",
    "is focused on": "focused on",
    "is centered on": "focused on",
}


def _verb_pattern(verb: str) -> str:
    """A verb phrase's inflected forms: "focus on" -> "focus(?:s|es|d|ed|ing)? on"."""
    if verb.startswith(("is ", "are ")):
        return verb
    return re.sub(r"^(\w+?)(e?)\b", lambda m: f"{m.group(1)}{m.group(2)}(?:s|es|d|ed|ing)?", verb, count=1)


_VERB_FORMS = "|".join(sorted(map(_verb_pattern, _MEETING_VERBS), key=len, reverse=True))
_MEETING_TEXT = (
    r"(?:the|this|that|the given|the provided|the above)\s+(?:\w+\s+){0,2}?(?:text|transcript|conversation|"
    r"discussion|dialogue|excerpt|passage|document|snippet|extract|meeting\s+(?:excerpt|transcript|notes)|speakers?)"
)
_MEETING_META = re.compile(
    rf"^{_EN_OPENER}(?:{_MEETING_TEXT}|(?P<it>it|they))\s+(?P<also>also\s+)?(?P<verb>{_VERB_FORMS})\s+"
    r"(?:(?:a|an|the)\s+(?:discussion|conversation|overview|summary)\s+(?:of|about|on)\s+)?(?P<rest>.+)$",
    re.IGNORECASE,
)
_MEETING_CLAIM = re.compile(rf"^{MEETING_SUBJECT} (?:also )?(?:{'|'.join(set(_MEETING_VERBS.values()))}) ")
_MIN_STATEMENT_WORDS = 4
_MIN_STATEMENT_CJK = 6


def _statement(rest: str) -> str | None:
    """What remains after a lead-in, capitalized, when it can stand as a sentence; else None."""
    rest = rest.strip(" ,，:：")
    if not rest:
        return None
    cjk = len(_CJK.findall(rest))
    enough = cjk >= _MIN_STATEMENT_CJK if cjk * 2 > len(rest) else len(rest.split()) >= _MIN_STATEMENT_WORDS
    if not enough or _EN_ABOUT.match(rest) or _ZH_ABOUT.match(rest):
        return None
    return rest[0].upper() + rest[1:]


def _meeting_statement(sentence: str, follows_meta: bool) -> str | None:
    """The transcript's "discusses X" as "The participants discussed X" (and "It also mentions X"
    after it); None when the sentence is not of that form or X is too short to state anything."""
    m = _MEETING_META.match(sentence)
    if not m or (m["it"] and not follows_meta):
        return None
    rest = m["rest"].strip()
    if len(rest.split()) < 2 or _EN_ABOUT.match(rest):
        return None
    verb = m["verb"].lower()
    done = next(v for k, v in _MEETING_VERBS.items() if re.fullmatch(_verb_pattern(k), verb))
    return f"{MEETING_SUBJECT} {'also ' if m['also'] else ''}{done} {rest}"


def claim(sentence: str) -> str:
    """What a sentence claims about the text: a meeting statement without its subject and verb
    ("The participants discussed X" claims X; that they discussed it is what a transcript is)."""
    m = _MEETING_CLAIM.match(sentence)
    return sentence[m.end() :] if m else sentence


def meta_rewrite(sentence: str, follows_meta: bool = False, transcript: bool = False) -> str | None:
    """The sentence as a statement of the text's content: unchanged when it is one, its
    lead-in stripped when what remains is one, in a `transcript` a topic sentence said of the
    meeting ("The participants discussed X"), else None (it only describes the text).
    `follows_meta`: the sentence before described the text, so "It"/"This"/"它" is the text."""
    if transcript:
        stated = _meeting_statement(sentence, follows_meta)
        if stated is not None:
            return stated
    leads = [_EN_POINT_LEAD, _ZH_POINT_LEAD, _EN_CLAUSE_LEAD, _EN_FRAME, _ZH_CLAUSE_LEAD, _ZH_FRAME]
    if follows_meta:
        leads += [_IT_CLAUSE_LEAD, _ZH_IT_CLAUSE_LEAD]
    for lead in leads:
        m = lead.match(sentence)
        if m:
            rest = sentence[m.end() :].strip()
            stated = _meeting_statement(rest, False) if transcript else None  # "... is that the text discusses X"
            return stated or _statement(rest)
    if _EN_ABOUT.match(sentence) or _ZH_ABOUT.match(sentence) or _SUMMARY_OF.match(sentence):
        return None
    if follows_meta and (_IT_ABOUT.match(sentence) or _ZH_IT_ABOUT.match(sentence)):
        return None
    return sentence
