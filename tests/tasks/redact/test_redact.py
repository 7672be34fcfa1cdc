"""Placeholders: typed, numbered per type in order of first appearance, the same for the same
value; overlaps merged; idempotent on its own output; never holding original text."""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.formats.readers import Document, doc_id_for
from tasks.redact import RedactSettings, detect, redact, redact_document, redaction_rows, scrub, scrub_uri

SETTINGS = RedactSettings()


def test_same_value_same_placeholder_numbered_per_type() -> None:
    text = (
        "From Ann@Example.com: call +86 138 0013 8000; cc bob@example.org; "
        "again ann@example.com and 13800138000 (the same number), or (415) 555-0132."
    )
    out = redact(text, SETTINGS)
    assert out.text == (
        "From [EMAIL_1]: call [PHONE_1]; cc [EMAIL_2]; again [EMAIL_1] and [PHONE_1] (the same number), or [PHONE_2]."
    )
    # spans point at the placeholders in the redacted text
    assert {t: [out.text[a:b] for a, b in s] for t, s in out.spans.items()} == {
        "email": ["[EMAIL_1]", "[EMAIL_2]", "[EMAIL_1]"],
        "phone": ["[PHONE_1]", "[PHONE_1]", "[PHONE_2]"],
    }


def test_overlapping_detections_become_one_span_of_the_first_type() -> None:
    # An 18-digit PRC ID that also passes Luhn: national_id comes before card in TYPES.
    text = "id 11010519491231002X here"
    (only,) = detect(text, SETTINGS)
    assert only.type == "national_id" and text[only.start : only.end] == "11010519491231002X"
    # An IPv4 inside an IPv6 address: one span, the union
    text = "at ::ffff:192.0.2.1 now"
    assert redact(text, SETTINGS).text == "at [IP_1] now"


def test_numbering_continues_after_placeholders_already_in_the_text() -> None:
    out = redact("[EMAIL_1] wrote to new@example.com", SETTINGS)
    assert out.text == "[EMAIL_1] wrote to [EMAIL_2]"


def test_types_can_be_left_out() -> None:
    text = "a@example.com 192.168.1.10"
    assert redact(text, RedactSettings(types=("ip",))).text == "a@example.com [IP_1]"


def test_scrub_finds_percent_encoded_values_in_messages_and_uris() -> None:
    assert scrub("id 'ann%40example.com' is taken", SETTINGS) == "id '[EMAIL_1]' is taken"
    assert scrub_uri("file:///in/t.jsonl#ann%40example.com", SETTINGS) == "file:///in/t.jsonl#[EMAIL_1]"
    assert scrub_uri("file:///in/a%20b.txt", SETTINGS) == "file:///in/a%20b.txt"  # nothing found: as it was


def test_a_document_is_redacted_whole_with_one_set_of_placeholders() -> None:
    doc = Document(
        "file:///in/t.jsonl#ann%40example.com",
        "jsonl",
        "ann@example.com",
        "Ann (ann@example.com) paid with 4111 1111 1111 1111. Version 3.10.2.",
        {"id": "ann@example.com", "phone": 13800138000, "nested": {"cards": ["4111-1111-1111-1111"]}, "n": 7},
    )
    redacted, info = redact_document(doc, SETTINGS)
    assert redacted.text == "Ann ([EMAIL_1]) paid with [CARD_1]. Version 3.10.2."
    assert redacted.title == "[EMAIL_1]" and redacted.source_uri == "file:///in/t.jsonl#[EMAIL_1]"
    assert redacted.metadata == {"id": "[EMAIL_1]", "phone": "[PHONE_1]", "nested": {"cards": ["[CARD_1]"]}, "n": 7}
    # identity: the redacted text plus the settings, never the text as read nor the bare redacted text
    assert redacted.doc_id == doc_id_for(redacted.text, SETTINGS.key)
    assert redacted.doc_id not in (doc.doc_id, doc_id_for(redacted.text))
    rows = {r["type"]: r for r in redaction_rows(redacted.doc_id, info, "run", None)}  # type: ignore[arg-type]
    assert set(rows) == {"email", "card", "phone"}
    assert (rows["email"]["count"], rows["email"]["values"], rows["email"]["elsewhere"]) == (1, 1, 2)
    assert (rows["phone"]["count"], rows["phone"]["elsewhere"]) == (0, 1)  # only in metadata
    for row in rows.values():
        for a, b in json.loads(row["spans"]):
            assert redacted.text[a:b].startswith("[") and redacted.text[a:b].endswith("]")
    stored = json.dumps(rows, default=str) + json.dumps(redacted.metadata)
    assert "ann@example.com" not in stored and "4111" not in stored and "13800138000" not in stored


def test_nothing_found_still_changes_the_identity() -> None:
    doc = Document("file:///in/plain.txt", "txt", "plain", "Nothing personal here, version 3.10.2.")
    redacted, info = redact_document(doc, SETTINGS)
    assert redacted.text == doc.text and not info.spans
    assert redacted.doc_id != doc.doc_id  # a redacted and an unredacted reading are two documents


VALUES = st.sampled_from(
    [
        "ann@example.com",
        "+86 138 0013 8000",
        "13912345678",
        "010-12345678",
        "(415) 555-0132",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "DE89 3704 0044 0532 0130 00",
        "11010519491231002X",
        "536-22-1234",
        "192.168.1.10",
        "2001:db8::8a2e:370:7334",
        "https://admin:s3cret@db.example.com/x",
    ]
)
FILLER = st.text(alphabet=string.ascii_letters + string.digits + " .,:;-()[]_@/\n" + "中文电话邮箱号", max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(FILLER, VALUES), max_size=6), FILLER)
def test_idempotent_and_placeholders_never_hold_original_text(parts: list[tuple[str, str]], tail: str) -> None:
    text = "".join(f"{filler} {value} " for filler, value in parts) + tail
    once = redact(text, SETTINGS)
    twice = redact(once.text, SETTINGS)
    assert twice.text == once.text and twice.count == 0
    for spans in once.spans.values():
        for a, b in spans:
            placeholder = once.text[a:b]
            assert placeholder[0] == "[" and placeholder[-1] == "]"
            assert all(ch in string.ascii_uppercase + string.digits + "_" for ch in placeholder[1:-1])
    for _, value in parts:
        secret = value.split("//")[-1].split("@")[0] if "://" in value else value
        assert secret not in once.text
