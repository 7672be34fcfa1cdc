"""Each detector on real positives and near misses: what only looks like a value stays."""

from __future__ import annotations

import pytest

from tasks.redact import RedactSettings, detect
from tasks.redact.detectors import DETECTORS

SETTINGS = RedactSettings()


def found(type_: str, text: str, settings: RedactSettings = SETTINGS) -> list[str]:
    return [text[d.start : d.end] for d in DETECTORS[type_](text, settings)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail Jane.Doe+tag@Example.co.uk now", ["Jane.Doe+tag@Example.co.uk"]),
        ("请发邮件至li.si@qq.com谢谢", ["li.si@qq.com"]),  # Chinese right against it
        ("<a@b.io>, x_y-z@sub.domain.example.org.", ["a@b.io", "x_y-z@sub.domain.example.org"]),
        ("file ann@example.com.txt, ann@mail.example.co.uk.pdf", ["ann@example.com", "ann@mail.example.co.uk"]),
        ("not an address: user@localhost, @handle, a@b, name@-bad.com", []),
    ],
)
def test_emails(text: str, expected: list[str]) -> None:
    assert found("email", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +86 138 0013 8000 today", ["+86 138 0013 8000"]),
        ("手机13800138000，座机010-12345678。", ["13800138000", "010-12345678"]),
        ("US office (415) 555-0132 or +1 212-555-0199", ["(415) 555-0132", "+1 212-555-0199"]),
        ("London +44 20 7946 0958", ["+44 20 7946 0958"]),
        ("全角１３８００１３８０００号", ["１３８００１３８０００"]),
        ("version 3.10.2, on 2024-01-15 or 2024/01/15 at 12:30:45, ISBN 978-3-16-148410-0", []),
        ("order 42, room 1203, year 2024", []),
        ("周期为(13.109777±3.8×10-6)h, 95% CI:2.892~470.454", []),  # measurements, not numbers
        ("dots 415.555.0132", ["415.555.0132"]),
    ],
)
def test_phones(text: str, expected: list[str]) -> None:
    assert sorted(found("phone", text)) == sorted(expected)


def test_phone_regions_decide_national_numbers() -> None:
    text = "Beijing 010-12345678, US (415) 555-0132, intl +86 138 0013 8000"
    assert found("phone", text, RedactSettings(phone_regions=())) == ["+86 138 0013 8000"]
    assert "010-12345678" not in found("phone", text, RedactSettings(phone_regions=("US",)))
    assert "010-12345678" in found("phone", text, RedactSettings(phone_regions=("CN",)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Visa 4111 1111 1111 1111.", ["4111 1111 1111 1111"]),
        ("MC 5555-5555-5555-4444 and Amex 378282246310005", ["5555-5555-5555-4444", "378282246310005"]),
        ("bad Luhn 4111 1111 1111 1112, all zeros 0000 0000 0000 0000", []),
        ("too short 4111 1111 11, a phone 13800138000", []),
    ],
)
def test_cards(text: str, expected: list[str]) -> None:
    assert found("card", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 AND MORE", ["DE89 3704 0044 0532 0130 00"]),
        (
            "GB82WEST12345698765432, FR1420041010050500013M02606",
            ["GB82WEST12345698765432", "FR1420041010050500013M02606"],
        ),
        ("wrong check DE00 3704 0044 0532 0130 00, lowercase de89370400440532013000", []),
    ],
)
def test_ibans(text: str, expected: list[str]) -> None:
    assert found("iban", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证号11010519491231002X。", ["11010519491231002X"]),
        ("id 11010519491231002x and SSN 536-22-1234", ["11010519491231002x", "536-22-1234"]),
        ("bad checksum 110105194912310021, bad date 110105194913310029", []),
        ("SSN-like 000-12-3456, 666-12-3456, 123-00-4567, 900-12-3456", []),
    ],
)
def test_national_ids(text: str, expected: list[str]) -> None:
    assert found("national_id", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 192.168.1.10, 8.8.8.8.", ["192.168.1.10", "8.8.8.8"]),
        ("v6 2001:db8::8a2e:370:7334 and fe80::1", ["2001:db8::8a2e:370:7334", "fe80::1"]),
        ("::ffff:192.0.2.1 mapped", ["192.0.2.1", "::ffff:192.0.2.1"]),  # one span once merged
        ("s3c2440-Linux2.6.30.4, 地址10.1.2.3", ["10.1.2.3"]),
        ("version 3.10.2, v1.2.3.4, 999.1.1.1, time 12:30:45, std::vector, a::b", []),
    ],
)
def test_ips(text: str, expected: list[str]) -> None:
    assert found("ip", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("db https://admin:s3cret@db.example.com/x", ["admin:s3cret"]),
        ("ftp://bob@files.example.org and postgres://u:p%40ss@h:5432/db", ["bob", "u:p%40ss"]),
        ("plain https://example.com/a@b and mailto:x", []),
    ],
)
def test_url_credentials(text: str, expected: list[str]) -> None:
    assert found("url_credentials", text) == expected


def test_the_host_of_a_url_with_credentials_stays() -> None:
    text = "https://admin:s3cret@db.example.com/x"
    (only,) = detect(text, SETTINGS)
    assert (only.type, text[only.start : only.end]) == ("url_credentials", "admin:s3cret")


def test_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown redaction types"):
        RedactSettings(types=("email", "names"))
