"""The sentence filter on real strings: meta-text, continuations and support, in English and
Chinese; the rows the summarize stage stores, and the spans a reader can query back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import warehouse
from storage.datasets import Store
from tasks.evidence import SUPPORT_THRESHOLD, Evidence, split_sentences
from tasks.summarize.meta_text import claim, meta_rewrite
from tasks.summarize.sentence_filter import continuation, filter_summary, sentence_counts
from tasks.summarize.summarize import Summary, checked_rows
from tests.conftest import document_row

# What the models wrote (issue 17 and BENCHMARKS.md): each only describes the text.
DESCRIBING = [
    "The text is a summary of a scene from a movie about a project manager.",
    "The text summarizes the information provided in a short paragraph.",
    "The text is written in plain prose, and it does not use any special formatting.",
    "This article provides a comprehensive overview of the article's main points.",
    "The text discusses the development of a tool for parsing XML data.",
    "This post delves into the history of the remote control.",
    "Overall, the text highlights the need for better tools.",
    "The speaker is discussing the cost of the batteries.",
    "本文介绍了大语言模型上下文长度的扩展方法。",
    "这篇文章讨论了位置编码的几种改进。",
    "总的来说，本文探讨了长文本建模的挑战。",
    "The main facts are:",
]
# A lead-in before a statement: the statement stays.
REWRITTEN = {
    "The speaker argues that the remote should have a large screen.": "The remote should have a large screen.",
    "In this meeting excerpt, the team decided to use rubber buttons.": "The team decided to use rubber buttons.",
    "According to the transcript, the budget is twelve Euros fifty.": "The budget is twelve Euros fifty.",
    "文章指出，位置插值可以把上下文窗口扩展到三万两千个词元。": "位置插值可以把上下文窗口扩展到三万两千个词元。",
    "在本文中，作者用稀疏注意力降低了长序列的计算成本。": "作者用稀疏注意力降低了长序列的计算成本。",
    # a lead the prompt prefills, or the model writes when asked for the main facts
    "The main point is that the remote should be cheap and yellow.": "The remote should be cheap and yellow.",
    "文本的主要事实是，位置插值可以扩展上下文窗口。": "位置插值可以扩展上下文窗口。",
    "主要观点是：稀疏注意力降低了长序列的计算成本。": "稀疏注意力降低了长序列的计算成本。",
}
# Statements of content, some of them QMSum reference sentences: untouched.
STATEMENTS = [
    "Meeting participants wanted to agree upon a standard database to link up different components.",
    "The team decided to use rubber buttons.",
    "The group discussed how easy it should be to bleep things out.",
    "It is important to keep costs down.",
    "The meeting finished with some discussion about handling annotations.",
    "位置插值可以把上下文窗口扩展到三万两千个词元。",
]


@pytest.mark.parametrize("sentence", DESCRIBING)
def test_a_sentence_that_describes_the_text_is_dropped(sentence: str) -> None:
    assert meta_rewrite(sentence) is None


@pytest.mark.parametrize(("sentence", "statement"), REWRITTEN.items())
def test_a_lead_in_before_a_statement_is_stripped(sentence: str, statement: str) -> None:
    assert meta_rewrite(sentence) == statement


@pytest.mark.parametrize("sentence", STATEMENTS)
def test_a_statement_is_left_as_it_is(sentence: str) -> None:
    assert meta_rewrite(sentence) == sentence


def test_after_a_sentence_about_the_text_its_pronoun_is_the_text() -> None:
    # SmolLM2-135M on QMSum excerpts (benchmarks/evidence_before_after.py)
    summary = (
        "The text summarizes the information about a tool that can help with segmentation. "
        "It describes the tool, the type of tool, and the purpose of the tool. "
        "It also mentions that the tool is designed to help with segmentation of speech."
    )
    checked = filter_summary(summary, "The tool is designed to help with segmentation of speech .", 0)
    assert checked.removed["meta"] == 2
    assert [k.sentence for k in checked.kept] == ["The tool is designed to help with segmentation of speech."]
    # without a sentence about the text before it, "It" is whatever the summary speaks of
    assert meta_rewrite("It describes the shape of the remote.") == "It describes the shape of the remote."
    assert meta_rewrite("It describes the shape of the remote.", follows_meta=True) is None
    assert meta_rewrite("It's just a summary of what's already been mentioned.") is None
    assert meta_rewrite("它还介绍了稀疏注意力。", follows_meta=True) is None


# Qwen2.5-Coder-0.5B on QMSum excerpts (benchmarks/evidence_before_after.py): in a transcript what
# the text "discusses" is what the meeting discussed, said as QMSum's references say it.
MEETING_REWRITES = {
    "The text discusses the development of a tool for parsing XML data.": (
        "The participants discussed the development of a tool for parsing XML data."
    ),
    "The conversation revolves around the budget of the new remote control.": (
        "The participants discussed the budget of the new remote control."
    ),
    "The transcript is about the design of a remote control.": (
        "The participants discussed the design of a remote control."
    ),
    "Overall, the speakers emphasize the need for a larger battery.": (
        "The participants emphasized the need for a larger battery."
    ),
}


@pytest.mark.parametrize(("sentence", "statement"), MEETING_REWRITES.items())
def test_in_a_transcript_a_topic_sentence_is_said_of_the_meeting(sentence: str, statement: str) -> None:
    assert meta_rewrite(sentence, transcript=True) == statement
    assert meta_rewrite(sentence) is None  # of an article it names a topic only: dropped
    assert claim(statement) == statement.split(" ", 3)[3]  # the participants' verb is not the claim


def test_in_a_transcript_only_content_gets_the_meetings_subject() -> None:
    # nothing left to state, or a description of the text's form: still dropped
    assert meta_rewrite("The text discusses bleeping.", transcript=True) is None
    assert meta_rewrite("The transcript is a conversation between four people.", transcript=True) is None
    assert meta_rewrite("The text provides an overview of the meeting.", transcript=True) is None
    # "It" is the text only after a sentence about the text
    it = "It also mentions the need for a new remote control."
    assert meta_rewrite(it, follows_meta=True, transcript=True) == (
        "The participants also mentioned the need for a new remote control."
    )
    assert meta_rewrite(it, transcript=True) == it
    # a lead-in before a statement is still stripped, a statement left as it is
    assert meta_rewrite("The text argues that the battery is too small.", transcript=True) == (
        "The battery is too small."
    )
    for sentence in STATEMENTS:
        assert meta_rewrite(sentence, transcript=True) == sentence


def test_a_transcript_summary_keeps_its_rewritten_content_with_the_claims_span() -> None:
    summary = (
        "The text discusses how easy it should be to bleep things out. "
        "It also highlights that the error rate went down on the far-field microphones."
    )
    checked = filter_summary(summary, TRANSCRIPT, 0)
    assert [k.sentence for k in checked.kept] == [
        "The participants discussed how easy it should be to bleep things out.",
        "The participants also highlighted that the error rate went down on the far-field microphones.",
    ]
    assert checked.rewritten == 2 and sum(checked.removed.values()) == 0
    first, second = checked.kept
    assert "bleep" in TRANSCRIPT[first.char_start : first.char_end]
    assert "error rate" in TRANSCRIPT[second.char_start : second.char_end]
    # over an article the topic sentence is dropped; "It highlights that X" states X
    article = TRANSCRIPT.replace("Grad C: ", "").replace("PhD D: ", "").replace("Professor B: ", "")
    on_article = filter_summary(summary, article, 0)
    assert on_article.removed["meta"] == 1
    assert [k.sentence for k in on_article.kept] == ["The error rate went down on the far-field microphones."]


def test_list_markers_are_layout_not_sentences() -> None:
    summary = "1. The budget was approved by the board.\n2. The remote costs twelve Euros.\n- Rubber buttons."
    text = "The board approved the budget. The remote costs twelve Euros and has rubber buttons."
    checked = filter_summary(summary, text, 0)
    assert [k.sentence for k in checked.kept][:2] == [
        "The budget was approved by the board.",
        "The remote costs twelve Euros.",
    ]
    assert len(checked.kept) + sum(checked.removed.values()) == 3
    # a minus sign or a number that starts a line is not a marker
    assert [k.sentence for k in filter_summary("-5 degrees were measured at noon.", "At noon -5 degrees.", 0).kept] == [
        "-5 degrees were measured at noon."
    ]


TRANSCRIPT = (
    "Grad C: Yeah , we had a long discussion about how much w how easy we want to make it for people to bleep"
    " things out .\nPhD D: So what do we think a good size would be for this ?\n"
    "Professor B: The recognizer runs on the far-field microphones , and the error rate went down .\n"
)


def test_transcript_continuations_are_told_from_summaries() -> None:
    # from `make demo` on main: the transcript continued
    assert continuation("Uh, what do we think a good size would be for this? Ah, we're looking for a", TRANSCRIPT)
    assert continuation("PhD D: It doesn't move.", TRANSCRIPT) == "speaker_tag"
    # Qwen's list of turns: the tag misspelt, in case or spacing, is still the speaker's
    assert continuation("PhD d: Right.", TRANSCRIPT) == "speaker_tag"
    assert continuation("Ph D D: Right.", TRANSCRIPT) == "speaker_tag"
    copied = "The recognizer runs on the far-field microphones, and the error rate went down."
    assert continuation(copied, TRANSCRIPT) == "verbatim"
    assert continuation("Yeah, I think we should try the far-field microphones.", TRANSCRIPT) == "transcript_voice"
    assert continuation("The group discussed how easy bleeping should be.", TRANSCRIPT) is None
    # a QMSum reference sentence: "PhD I" is a speaker's name, not the first person
    with_name = TRANSCRIPT + "PhD I: The results are in .\n"
    assert continuation("As for the modeling, PhD I reported several results.", with_name) is None
    assert continuation("The error rate of the recognizer on far-field microphones went down.", TRANSCRIPT) is None


def test_markup_code_and_fragments_copied_from_the_text_are_continuations() -> None:
    article = "### 4. 数学模型\n```python\n# 计算注意力分数\nattention_scores = softmax(W_a)\n```\n注意力分数决定输出。"
    for copied in ["```python", "# 计算注意力分数", "attention_scores = softmax(W_a)", "### 4.", "Right ."]:
        assert continuation(copied, article) == "markup", copied
    assert continuation("注意力分数由softmax函数计算，并决定输出序列。", article) is None
    assert continuation("The LSTM (a recurrent network) reads long texts.", article) is None


def test_chinese_turns_copied_are_continuations_and_article_sentences_are_not() -> None:
    meeting = (
        "主持人：今天我们讨论位置插值方法的实验结果。\n研究员甲：位置插值把旋转位置编码的位置缩放到训练时的范围内。\n"
    )
    assert continuation("位置插值把旋转位置编码的位置缩放到训练时的范围内。", meeting) == "verbatim"
    assert continuation("研究员甲：结果很好。", meeting) == "speaker_tag"
    assert continuation("研究员介绍了位置插值如何缩放位置编码。", meeting) is None
    article = "近年来，大语言模型的上下文长度不断增加。位置插值方法把旋转位置编码的位置缩放到训练时的范围内。"
    # an article's sentence quoted is an extractive summary; first person in an article is its own
    assert continuation("位置插值方法把旋转位置编码的位置缩放到训练时的范围内。", article) is None
    assert continuation("我们可以用位置插值延长上下文。", article) is None


def test_filter_counts_every_sentence_once_and_keeps_supported_ones() -> None:
    summary = (
        "The text discusses bleeping. The group discussed how easy it should be to bleep things out. "
        "Uh, what do we think? The budget was approved by the board in March. "
        "According to the transcript, the recognizer error rate on far-field microphones went down."
    )
    checked = filter_summary(summary, TRANSCRIPT, 1000)
    assert checked.removed == {"meta": 1, "continuation": 1, "unsupported": 1}
    assert [k.sentence for k in checked.kept] == [
        "The group discussed how easy it should be to bleep things out.",
        "The recognizer error rate on far-field microphones went down.",
    ]
    assert checked.rewritten == 1
    assert len(checked.kept) + sum(checked.removed.values()) == len(split_sentences(summary))
    for kept in checked.kept:
        assert 1000 <= kept.char_start < kept.char_end <= 1000 + len(TRANSCRIPT)
        assert kept.support >= SUPPORT_THRESHOLD
    assert checked.text() == " ".join(k.sentence for k in checked.kept)


def test_chinese_kept_sentences_join_without_spaces() -> None:
    article = (
        "位置插值方法把旋转位置编码的位置缩放到训练时的范围内，模型只需少量微调。稀疏注意力降低了长序列的计算成本。"
    )
    checked = filter_summary(
        "本文介绍了两种方法。位置插值缩放位置编码，只需少量微调。稀疏注意力降低计算成本。", article, 0
    )
    assert checked.removed["meta"] == 1
    assert checked.text() == "位置插值缩放位置编码，只需少量微调。稀疏注意力降低计算成本。"


def _document() -> tuple[str, list[dict]]:
    """A document and two overlapping segments of it, as the segment stage stores them."""
    text = (
        "Notes from the design meeting.\n" + TRANSCRIPT + "Marketing: The remote should cost at most twelve Euros .\n"
    )
    cuts = [(0, len(text) // 2 + 40), (len(text) // 2 - 40, len(text))]
    segments = [
        {"segment_id": f"s{n}", "doc_id": "d", "char_start": a, "char_end": b, "text": text[a:b]}
        for n, (a, b) in enumerate(cuts)
    ]
    return text, segments


def test_stored_evidence_spans_lie_in_their_segment_and_support_their_sentence(tmp_path: Path) -> None:
    text, segments = _document()
    outputs = [
        "The text is a transcript. The group discussed how easy it should be to bleep things out. PhD D: yes.",
        "The recognizer error rate went down on the far-field microphones. The remote costs at most twelve Euros. "
        "A new CEO was appointed in Paris.",
    ]
    summaries = [Summary(o, 100, 30, 0, False, o) for o in outputs]
    rows, evidence = checked_rows(segments, summaries, "m")
    store = Store(str(tmp_path / "data"))
    store.commit(
        {"documents": [document_row("d", text)], "segment_summaries": rows, "summary_evidence": evidence}, "r1"
    )
    assert [r["raw_summary"] for r in rows] == outputs
    assert [(r["sentences_kept"], r["sentences_removed_meta"], r["sentences_removed_continuation"]) for r in rows] == [
        (1, 1, 1),
        (2, 0, 0),
    ]
    assert rows[1]["sentences_removed_unsupported"] == 1
    assert sentence_counts(rows)["summary_sentences"] == 6
    by_segment = {s["segment_id"]: s for s in segments}
    for row in store.read("summary_evidence").to_pylist():
        seg = by_segment[row["segment_id"]]
        assert seg["char_start"] <= row["char_start"] < row["char_end"] <= seg["char_end"]
        assert row["support"] >= SUPPORT_THRESHOLD
        again = Evidence(seg["text"], seg["char_start"]).support(row["sentence"])
        assert (again.char_start, again.char_end, again.score) == (row["char_start"], row["char_end"], row["support"])
    # the README's query: each sentence with the document's text at its span
    _, found = warehouse.query(
        store,
        "SELECT e.sentence, substring(d.text, e.char_start + 1, e.char_end - e.char_start) AS span,"
        " e.char_start, e.char_end FROM summary_evidence e JOIN documents d USING (doc_id)"
        " ORDER BY e.segment_id, e.sentence_no",
    )
    assert [(s, span) for s, span, _, _ in found] == [(s, text[a:b]) for s, _, a, b in found]
    assert [s for s, *_ in found] == [
        "The group discussed how easy it should be to bleep things out.",
        "The recognizer error rate went down on the far-field microphones.",
        "The remote costs at most twelve Euros.",
    ]
    assert "Euros" in found[2][1] and "bleep" in found[0][1]


WORDS = ["budget", "remote", "battery", "rubber", "design", "the", "会议", "预算", "遥控器", "The text discusses"]
prose = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from([". ", " ", "。", "\n", ", "])), max_size=60).map(
    lambda parts: "".join(w + e for w, e in parts)
)


@settings(max_examples=150, deadline=None)
@given(segment=prose, summary=prose, char_start=st.integers(0, 5000))
def test_kept_sentences_lie_in_their_segment_with_support_and_all_are_counted(segment, summary, char_start) -> None:
    checked = filter_summary(summary, segment, char_start)
    assert len(checked.kept) + sum(checked.removed.values()) == len(split_sentences(summary))
    for kept in checked.kept:
        assert char_start <= kept.char_start < kept.char_end <= char_start + len(segment)
        assert kept.support >= SUPPORT_THRESHOLD
        assert Evidence(segment, char_start).support(claim(kept.sentence)).score == kept.support
