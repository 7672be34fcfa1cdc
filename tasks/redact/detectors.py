"""Detectors: each finds one type of personal value in a text, as character spans.

A detector prefers a real check to a pattern: a checksum (cards: Luhn; IBAN: mod 97; PRC
resident identity numbers: ISO 7064 and a birth date), a library's number plans (phone numbers:
`phonenumbers`), Python's `ipaddress`. What only looks like such a value (a card number failing
Luhn, a version number, a date) is not found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tasks.redact.settings import RedactSettings


@dataclass(frozen=True)
class Detection:
    start: int
    end: int
    type: str
    key: str  # the value normalized: the same value written differently gets the same placeholder


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
# scheme://userinfo@ : userinfo is everything of the authority before its last "@".
_URL_USERINFO = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://([^\s/?#@\[\]]+(?:@[^\s/?#@\[\]]+)*)@(?=[^\s/?#@])")
FILE_SUFFIXES = {"txt", "md", "html", "htm", "pdf", "docx", "json", "jsonl", "ndjson", "parquet", "csv", "eml"}
_USERINFO_BEFORE = re.compile(r"://[^\s/?#@]*$")
_CARD = re.compile(
    r"(?<!\d)(?:\d{13,19}"
    r"|\d{4}(?P<a>[ \-])\d{6}(?P=a)\d{4,5}"
    r"|\d{4}(?P<s>[ \-])\d{4}(?P=s)\d{4}(?P=s)\d{4}(?P<tail>(?P=s)\d{1,3})?)(?!\d)"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")
_PRC_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_SSN = re.compile(r"(?<![\d\-])\d{3}-\d{2}-\d{4}(?![\d\-])")
_IPV4 = re.compile(r"(?<![A-Za-z0-9.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)")


def _ascii_digits(text: str) -> str:
    """Only the digits (full-width ones read as ASCII)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())


def find_emails(text: str, settings: RedactSettings) -> Iterator[Detection]:
    for m in _EMAIL.finditer(text):
        if _USERINFO_BEFORE.search(text, max(0, m.start() - 256), m.start()):
            continue  # "user:pass@host" of a URL: its credentials are found as such, the host stays
        end = m.end()
        head, _, last = m.group().rpartition(".")
        if last.lower() in FILE_SUFFIXES and "." in head.partition("@")[2]:
            end -= len(last) + 1  # a file named by an address: "ann@example.com.txt"
        yield Detection(m.start(), end, "email", text[m.start() : end].lower())


def find_url_credentials(text: str, settings: RedactSettings) -> Iterator[Detection]:
    """The user (and password) part of a URL; the scheme, host and path stay readable."""
    for m in _URL_USERINFO.finditer(text):
        yield Detection(m.start(1), m.end(1), "url_credentials", m.group(1))


def find_cards(text: str, settings: RedactSettings) -> Iterator[Detection]:
    """Card numbers as they are written: 13-19 digits together, or in groups of four (4-4-4-4,
    with a short last group for 17-19 digits), or American Express/Diners 4-6-5 and 4-6-4, one
    separator throughout; Luhn-checked. A longer candidate that fails is tried without its
    last group ("4111 1111 1111 1111 2 pieces")."""
    from stdnum import luhn

    for m in _CARD.finditer(text):
        for end in (m.end(), m.start("tail")) if m.group("tail") else (m.end(),):
            digits = _ascii_digits(text[m.start() : end])
            if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn.is_valid(digits):
                yield Detection(m.start(), end, "card", digits)
                break


def find_ibans(text: str, settings: RedactSettings) -> Iterator[Detection]:
    """The longest prefix of each candidate that is a valid IBAN (a candidate may run on into
    the capitals and digits of the words after it)."""
    from stdnum import iban

    at = 0
    while m := _IBAN.search(text, at):
        candidate, at = m.group(), m.start() + 1
        for end in range(len(candidate), 14, -1):
            if candidate[end - 1] != " " and iban.is_valid(candidate[:end]):
                yield Detection(m.start(), m.start() + end, "iban", iban.compact(candidate[:end]))
                at = m.start() + end
                break


def find_national_ids(text: str, settings: RedactSettings) -> Iterator[Detection]:
    """PRC resident identity numbers (checksum and birth date checked) and US social security
    numbers written 123-45-6789 (no checksum exists: python-stdnum's area/group/serial rules and
    its list of numbers known to be invalid)."""
    from stdnum.cn import ric
    from stdnum.us import ssn

    for m in _PRC_ID.finditer(text):
        if ric.is_valid(m.group()):
            yield Detection(m.start(), m.end(), "national_id", m.group().upper())
    for m in _SSN.finditer(text):
        if ssn.is_valid(m.group()):
            yield Detection(m.start(), m.end(), "national_id", m.group().replace("-", ""))


def find_ips(text: str, settings: RedactSettings) -> Iterator[Detection]:
    import ipaddress

    for m in _IPV4.finditer(text):
        try:
            address = ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield Detection(m.start(), m.end(), "ip", str(address))
    for m in _IPV6.finditer(text):
        groups = [group for group in m.group().split(":") if group]
        if len(groups) < 3 and not any(len(group) >= 3 for group in groups):
            continue  # "::", "a::b", "1:2::": a C++ scope or a ratio sooner than an address
        try:
            address6 = ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        yield Detection(m.start(), m.end(), "ip", str(address6))


def find_phones(text: str, settings: RedactSettings) -> Iterator[Detection]:
    """Numbers valid in their number plan (phonenumbers' VALID leniency, which also leaves out
    dates and times); a number without a country code is read as one of `phone_regions`'."""
    import phonenumbers

    seen: set[tuple[int, int]] = set()
    for region in settings.phone_regions or (None,):
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            raw = match.raw_string  # may begin with a space it took for a separator
            start = match.start + len(raw) - len(raw.lstrip())
            end = match.start + len(raw.rstrip())
            if (start, end) in seen or _DECIMALS.search(text[start:end]):
                continue
            seen.add((start, end))
            key = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            yield Detection(start, end, "phone", key)
    yield from _phones_among_groups(text, settings, seen)


# "13.109777", "2.892~470.454": measurements the matcher takes for numbers; "415.555.0132" stays a number
_DECIMALS = re.compile(r"^[(]?\d+\.\d+(?:\D+\d+\.\d+)?$")
_DIGIT_GROUPS = re.compile(r"(?<![A-Za-z0-9])[+(]?\d[\d()\-]*(?: [+(]?\d[\d()\-]*)*")
MAX_PHONE_GROUPS = 4  # "+86 138 0013 8000", "+1 212 555 0199": no plan is written in more
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 7, 17  # a local number without its area code .. E.164 and a prefix


def _phones_among_groups(text: str, settings: RedactSettings, seen: set[tuple[int, int]]) -> Iterator[Detection]:
    """Numbers the matcher refuses for what runs on from them ("(415) 555-0132 0", "... )0"):
    each run of whole digit groups is put to the matcher alone, longest first."""
    import phonenumbers

    for m in _DIGIT_GROUPS.finditer(text):
        groups = [(g.start() + m.start(), g.end() + m.start()) for g in re.finditer(r"\S+", m.group())]
        runs = [(i, j) for i in range(len(groups)) for j in range(i + 1, min(len(groups), i + MAX_PHONE_GROUPS) + 1)]
        taken: list[tuple[int, int]] = [span for span in seen if m.start() <= span[0] < m.end()]
        for i, j in sorted(runs, key=lambda r: (-(groups[r[1] - 1][1] - groups[r[0]][0]), r[0])):
            start, end = groups[i][0], groups[j - 1][1]
            if any(start < b and a < end for a, b in taken):
                continue
            piece = text[start:end]
            if not MIN_PHONE_DIGITS <= sum(ch.isdigit() for ch in piece) <= MAX_PHONE_DIGITS:
                continue  # no number plan has such a number: spare the matcher
            for region in settings.phone_regions or (None,):
                whole = [
                    match
                    for match in phonenumbers.PhoneNumberMatcher(piece, region, leniency=phonenumbers.Leniency.VALID)
                    if match.raw_string.strip() == piece
                ]
                if whole:
                    taken.append((start, end))
                    key = phonenumbers.format_number(whole[0].number, phonenumbers.PhoneNumberFormat.E164)
                    yield Detection(start, end, "phone", key)
                    break


DETECTORS: dict[str, Callable[[str, RedactSettings], Iterator[Detection]]] = {
    "url_credentials": find_url_credentials,
    "email": find_emails,
    "iban": find_ibans,
    "national_id": find_national_ids,
    "card": find_cards,
    "ip": find_ips,
    "phone": find_phones,
}
