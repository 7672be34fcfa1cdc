"""Clean prose: the checks, and the repair of summaries against their source, by hand."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.aggregate.merge import select_sentences
from tasks.prose import count_unclean, drop_repeated_sentences, prose_issues, repair_summary

TRANSCRIPT = (
    "Project Manager: Okay, welcome to the kick-off meeting.\n"
    "Grad C: we should order the new microphones .\n"
    "PhD A: they cost fifty euros each .\n"
    "Grad C: fine .\n"
)
REPORT = "The council approved the budget on Monday.\nNote that spending on libraries rises by four percent.\n"
CHINESE = "主持人：大家好。\n张伟：我们讨论预算。\n主持人：好的。\n"


def test_prose_checks() -> None:
    transcript = "Grad C: did you see it?\nProfessor B: yes .\n"
    assert prose_issues("Grad C: The team discussed the budget.", transcript) == ["speaker_tags"]
    assert prose_issues("The team agreed. Professor B: yes.", transcript) == ["speaker_tags"]
    assert prose_issues('The talk was titled "Grad C: did you see it?"', transcript) == ["speaker_tags"]
    assert prose_issues("Summary: the team met.", transcript) == []  # not a tag of the source
    assert prose_issues("Grad C asked whether the others had seen it.", transcript) == []
    assert prose_issues("<|im_start|>assistant\nThe team met.") == ["template_remnants"]
    assert prose_issues("The team met.\nassistant\nIt ended.") == ["template_remnants"]
    repeated = "The budget was cut. Staff objected. The budget was cut!"
    assert prose_issues(repeated) == ["repeated_sentences"]
    assert drop_repeated_sentences(repeated) == "The budget was cut. Staff objected."
    assert drop_repeated_sentences("No repeats here. None at all.") == "No repeats here. None at all."
    assert prose_issues("Yes. Yes. The plan stands.") == []  # too short to be a repeated sentence


def test_a_quoted_transcript_line_among_other_sentences_is_dropped() -> None:
    on_its_line = (
        "The team planned a new remote control.\n"
        "Grad C: we should order the new microphones .\n"
        "The microphones cost fifty euros each."
    )
    assert repair_summary(on_its_line, TRANSCRIPT) == (
        "The team planned a new remote control.\nThe microphones cost fifty euros each."
    )
    # inside a line of prose the quoted turn is one sentence, quotes included
    inline = 'The team met. "Grad C: we should order the new microphones ." They agreed on a price.'
    assert repair_summary(inline, TRANSCRIPT) == "The team met. They agreed on a price."
    assert repair_summary("The team met. PhD A: they cost fifty euros each .", TRANSCRIPT) == "The team met."


def test_a_summary_of_tag_lines_only_keeps_their_words() -> None:
    assert repair_summary("Grad C: we should order the new microphones .", TRANSCRIPT) == (
        "We should order the new microphones ."
    )
    continued = "Project Manager: Okay, welcome to the kick-off meeting.\nPhD A: they cost fifty euros each ."
    assert repair_summary(continued, TRANSCRIPT) == (
        "Okay, welcome to the kick-off meeting.\nThey cost fifty euros each ."
    )
    # a line of speakers says nothing; so does a tag alone
    listing = "Grad C and PhD A: fine .\nGrad C, PhD A\nPhD A (laughing): Grad C:"
    assert repair_summary(listing, TRANSCRIPT) == "Fine ."
    assert repair_summary("PhD A:", TRANSCRIPT) == ""
    # a speaker the source does not name, in the same shape, goes too
    assert repair_summary("Grad F: we agree.\nThe team agreed.", TRANSCRIPT) == "The team agreed."


def test_a_tag_inside_a_sentence_after_a_quote_is_cut_with_an_empty_quote() -> None:
    assert repair_summary('The kick-off was titled "Project Manager: Okay" by the notes.', TRANSCRIPT) == (
        'The kick-off was titled "Okay" by the notes.'
    )
    assert repair_summary('The slide read "PhD A:" and listed prices.', TRANSCRIPT) == (
        "The slide read and listed prices."
    )
    assert repair_summary('"Grad C: fine," the student said.', TRANSCRIPT) == '"Fine," the student said.'
    assert repair_summary('"Grad C: we should order the new microphones ."', TRANSCRIPT) == (
        "We should order the new microphones ."
    )


def test_prose_that_only_looks_like_tags_stays() -> None:
    text = "Note: the figures are provisional. Time: 3 pm on Monday."
    assert repair_summary(text, REPORT) == text
    assert repair_summary(text) == text  # without a source
    assert prose_issues(text) == prose_issues(text, REPORT) == []
    # a transcript's summary: "Note" is not one of its speakers
    assert repair_summary("Note: Grad C wants new microphones.", TRANSCRIPT) == "Note: Grad C wants new microphones."
    assert repair_summary("Grad C proposed new microphones: two of them.", TRANSCRIPT) == (
        "Grad C proposed new microphones: two of them."
    )


def test_without_a_source_only_tag_shaped_heads_go() -> None:
    assert repair_summary("Grad C: we should order microphones.") == "We should order microphones."
    dialogue = "Marketing: new ideas.\nDesigner: a round case.\nMarketing: fine."
    assert repair_summary(dialogue) == "New ideas.\nA round case.\nFine."


def test_template_remnants_are_stripped() -> None:
    assert repair_summary("<|im_start|>assistant\nThe team met.<|im_end|>") == "The team met."
    assert repair_summary("The team met.\nassistant\nIt ended.") == "The team met.\nIt ended."
    assert repair_summary("<s>[INST] The council met. [/INST]</s>") == "The council met."
    assert repair_summary("<start_of_turn>model\nThe council met.<end_of_turn>") == "The council met."


def test_other_scripts() -> None:
    assert repair_summary("会议讨论了预算。主持人：大家好。", CHINESE) == "会议讨论了预算。"
    assert repair_summary("张伟：我们讨论预算。", CHINESE) == "我们讨论预算。"
    assert repair_summary("张伟认为预算不够。", CHINESE) == "张伟认为预算不够。"
    assert prose_issues("会议讨论了预算。主持人：大家好。", CHINESE) == ["speaker_tags"]
    russian = "Иван: привет .\nМария: бюджет утвердили .\n"
    assert repair_summary("Мария: бюджет утвердили.", russian) == "Бюджет утвердили."


def test_repeated_sentences_are_still_dropped() -> None:
    assert repair_summary("The budget was cut. Staff objected. The budget was cut!") == (
        "The budget was cut. Staff objected."
    )


def test_counts_report_what_the_repair_leaves() -> None:
    summaries = [
        "Grad C: we should order the new microphones .\nThe team agreed.",
        '<|im_start|>assistant\nThe kick-off was titled "Project Manager: Okay".',
        "The budget was cut. The budget was cut.",
        "The team met.",
    ]
    before = count_unclean((s, TRANSCRIPT) for s in summaries)
    assert before == {"speaker_tags": 2, "template_remnants": 1, "repeated_sentences": 1, "unclean": 3}
    after = count_unclean((repair_summary(s, TRANSCRIPT), TRANSCRIPT) for s in summaries)
    assert after == dict.fromkeys(before, 0)


def test_an_extractive_merge_of_repaired_summaries_stays_clean() -> None:
    parts = [
        "Grad C: we should order the new microphones .\nThe team wants new microphones. It is ok.",
        "PhD A: they cost fifty euros each .\nThe microphones cost fifty euros. It is ok.",
    ]
    repaired = [repair_summary(p, TRANSCRIPT) for p in parts]
    merged = select_sentences(repaired, budget=100, count=lambda s: len(s.split()))
    # "It is ok." has no word over two letters, so only its words tell it is said twice
    assert merged == "The team wants new microphones. It is ok. The microphones cost fifty euros."
    assert prose_issues(merged, TRANSCRIPT) == []


_PIECES = st.sampled_from(
    [
        "The team planned a remote control.",
        "Grad C: we should order the new microphones .",
        "PhD A: they cost fifty euros each .",
        '"Project Manager: Okay"',
        "Note: the price is provisional.",
        "<|im_end|>",
        "assistant",
        "The team planned a remote control.",
        "主持人：大家好。",
    ]
)


@settings(max_examples=150)
@given(st.lists(st.tuples(_PIECES, st.sampled_from([" ", "\n", ""])), max_size=6))
def test_a_repaired_summary_passes_the_checks_and_stays_as_it_is(parts: list[tuple[str, str]]) -> None:
    summary = "".join(piece + sep for piece, sep in parts)
    source = TRANSCRIPT + CHINESE
    repaired = repair_summary(summary, source)
    assert prose_issues(repaired, source) == []
    assert repair_summary(repaired, source) == repaired
