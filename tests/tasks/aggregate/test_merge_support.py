"""The document summary keeps only sentences its document supports, and counts the rest."""

from __future__ import annotations

from tasks.aggregate.merge import select_sentences, supported_only

DOCUMENT = (
    "Project Manager: The remote should cost at most twelve Euros fifty .\n"
    "Industrial Designer: We could use a rubber case and a kinetic battery .\n"
    "Marketing: Young people want a fancy look and feel , and speech recognition .\n"
)


def test_unsupported_sentences_leave_the_document_summary_counted() -> None:
    merged = select_sentences(
        [
            "The remote should cost at most twelve Euros fifty. The team hired a new chief executive in Paris.",
            "The designer proposed a rubber case with a kinetic battery.",
        ],
        budget=200,
        count=lambda s: len(s.split()),
    )
    checked, removed = supported_only(merged, DOCUMENT)
    assert removed == 1
    kept = [
        "The remote should cost at most twelve Euros fifty.",
        "The designer proposed a rubber case with a kinetic battery.",
    ]
    assert checked == " ".join(kept)


def test_a_supported_summary_is_unchanged_and_an_empty_one_too() -> None:
    summary = "Young people want a fancy look and speech recognition."
    assert supported_only(summary, DOCUMENT) == (summary, 0)
    assert supported_only("", DOCUMENT) == ("", 0)
