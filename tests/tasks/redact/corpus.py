"""A generated corpus full of personal values (English and Chinese; txt, jsonl with values in
other fields, in record ids and file names, html with one in its title), the values it holds,
and decoys that only look like such values; and a search of a directory for any of them.

Every value is made valid by its own rule (Luhn, mod 97, ISO 7064, number plans) with a seeded
generator, so the corpus is the same on every run.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DECOYS = [
    "4111 1111 1111 1112",  # fails Luhn
    "110105194912310021",  # fails the PRC ID checksum
    "DE00 3704 0044 0532 0130 00",  # IBAN with wrong check digits
    "3.10.2",  # a version
    "2024-01-15",  # a date
    "2024/01/15",
    "978-3-16-148410-0",  # an ISBN
    "12:30:45",  # a time
    "000-12-3456",  # not a social security number (area 000)
]


@dataclass
class Corpus:
    values: dict[str, str] = field(default_factory=dict)  # value -> type
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content

    def add(self, type_: str, value: str) -> str:
        self.values[value] = type_
        return value

    def write(self, root: Path) -> Path:
        for name, data in self.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root


class Values:
    def __init__(self, corpus: Corpus, seed: int) -> None:
        self.corpus, self.rng = corpus, random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def email(self) -> str:
        first = self.rng.choice(["alice", "bob", "zhang.wei", "li_na", "carol", "wang.fang"])
        domain = self.rng.choice(["example.com", "mail.example.org", "qq.com", "corp.example.cn"])
        return self.corpus.add("email", f"{first}{self.digits(3)}@{domain}")

    def phone(self, style: str) -> str:
        import phonenumbers

        while True:
            if style == "cn_mobile":
                value = f"+86 1{self.rng.choice('3589')}{self.digits(1)} {self.digits(4)} {self.digits(4)}"
            elif style == "cn_plain":
                value = f"1{self.rng.choice('3589')}{self.digits(9)}"
            elif style == "cn_fullwidth":
                value = f"1{self.rng.choice('3589')}{self.digits(9)}".translate({c: c + 0xFEE0 for c in range(48, 58)})
            elif style == "cn_landline":
                value = f"0{self.rng.choice(['10', '21'])}-{self.rng.choice('2345678')}{self.digits(7)}"
            else:  # us
                area, exchange = self.rng.choice(["212", "415", "617"]), self.rng.choice("2345678") + self.digits(2)
                value = f"({area}) {exchange}-{self.digits(4)}"
            plain = value.translate({c + 0xFEE0: c for c in range(48, 58)})
            region = "US" if style == "us" else "CN"
            if phonenumbers.is_valid_number(phonenumbers.parse(plain, region)):
                return self.corpus.add("phone", value)

    def card(self, sep: str) -> str:
        from stdnum import luhn

        body = self.rng.choice("45") + self.digits(14)
        number = body + luhn.calc_check_digit(body)
        return self.corpus.add("card", sep.join(number[i : i + 4] for i in range(0, 16, 4)))

    def iban(self) -> str:
        from stdnum import iban

        bban = self.digits(18)
        number = f"DE{iban.calc_check_digits('DE00' + bban)}{bban}"
        return self.corpus.add("iban", " ".join(number[i : i + 4] for i in range(0, len(number), 4)))

    def prc_id(self) -> str:
        from stdnum.cn import ric

        born = f"{self.rng.randint(1950, 2005)}{self.rng.randint(1, 12):02d}{self.rng.randint(1, 28):02d}"
        first = f"110105{born}{self.digits(3)}"
        return self.corpus.add("national_id", first + ric.calc_check_digit(first + "0"))

    def ssn(self) -> str:
        from stdnum.us import ssn

        while True:
            value = f"{self.rng.randint(1, 665):03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"
            if ssn.is_valid(value):
                return self.corpus.add("national_id", value)

    def ipv4(self) -> str:
        return self.corpus.add("ip", ".".join(str(self.rng.randint(11, 223)) for _ in range(4)))

    def ipv6(self) -> str:
        return self.corpus.add("ip", "2001:db8:" + ":".join(f"{self.rng.randint(1, 0xFFFF):x}" for _ in range(6)))

    def url_credentials(self) -> tuple[str, str]:
        password = f"Pw{self.digits(6)}x"
        self.corpus.add("url_credentials", password)
        return f"https://svc{self.digits(2)}:{password}@db.example.net/reports", password


def make_corpus(seed: int = 19, documents: int = 4) -> Corpus:
    corpus = Corpus()
    v = Values(corpus, seed)
    decoys = " ".join(DECOYS)
    for n in range(documents):
        email, url = v.email(), v.url_credentials()[0]
        corpus.files[f"en/case-{n}.txt"] = (
            f"Case {n}. The customer wrote from {email} and asked us to call {v.phone('us')} or "
            f"{v.phone('cn_mobile')}. Card on file: {v.card(' ')}; second card {v.card('-')}; "
            f"refund to IBAN {v.iban()}. SSN {v.ssn()}. Logged in from {v.ipv4()} and {v.ipv6()}. "
            f"The export used {url}. Please reply to {email} again.\n\n"
            f"Things that only look like values stay: {decoys}.\n"
        ).encode()
        corpus.files[f"zh/工单-{n}.txt"] = (
            f"客户{n}来电，手机{v.phone('cn_plain')}，座机{v.phone('cn_landline')}，"
            f"全角号码{v.phone('cn_fullwidth')}。身份证号{v.prc_id()}，邮箱{v.email()}。"
            f"银行卡{v.card(' ')}，登录地址{v.ipv4()}。\n\n版本号 3.10.2，日期 2024-01-15，"
            f"校验失败的身份证 110105194912310021 和卡号 4111 1111 1111 1112 保留。\n"
        ).encode()
    records = []
    for n in range(documents):
        records.append(
            {
                "id": v.email(),  # the id goes into source_uri (percent-encoded) and the title
                "text": f"Ticket {n}: caller {v.phone('cn_mobile')} disputes a charge on {v.card(' ')}. {decoys}",
                "customer": {"email": v.email(), "phones": [v.phone("us"), int(v.phone("cn_plain"))]},
                "note": f"备注：身份证{v.prc_id()}",
            }
        )
    dup = records[0]["id"]  # a second record with a taken id: a reject whose message names the id
    lines = [json.dumps(r, ensure_ascii=n % 2 == 0) for n, r in enumerate(records)]
    lines.append(json.dumps({"id": dup, "text": "duplicate"}))
    corpus.files["records/tickets.jsonl"] = ("\n".join(lines) + "\n").encode()
    title_email = v.email()
    corpus.files["web/contact.html"] = (
        f"<html><head><title>Contact {title_email}</title></head><body><main><h1>Support</h1>"
        f"<p>Write to {v.email()} or call {v.phone('us')}.</p><p>服务热线 {v.phone('cn_landline')}。</p>"
        f"<p>{decoys}</p></main></body></html>"
    ).encode()
    corpus.files[f"named/{v.email()}.txt"] = b"A file whose name is an address; its text holds none. 3.10.2\n"
    return corpus


def search_forms(value: str) -> set[bytes]:
    """How a value could lie in a file: UTF-8, JSON-escaped (\\u4e2d), percent-encoded, and for
    numbers their digits alone."""
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value)}
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) >= 9 and value.translate({c + 0xFEE0: c for c in range(48, 58)}) != value:
        forms.add(value.translate({c + 0xFEE0: c for c in range(48, 58)}))
    if len(digits) >= 9:
        forms.add(digits.translate({c + 0xFEE0: c for c in range(48, 58)}))
    return {f.encode("utf-8") for f in forms}


def decoded(path: Path) -> bytes:
    """A file's bytes, and for compressed containers their values as text (Parquet is zstd,
    DuckDB compresses strings): a value cannot hide in compression."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        data += json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False).encode()
    elif path.suffix in (".duckdb", ".ducklake"):  # the lake's catalog: snapshots, commit messages, stats
        import duckdb

        con = duckdb.connect(str(path), read_only=True)
        try:
            for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
                data += repr(con.execute(f'SELECT * FROM "{table}"').fetchall()).encode()
        finally:
            con.close()
    return data


def leaks(roots: list[Path], values: list[str], skip: tuple[Path, ...] = ()) -> dict[str, list[str]]:
    """Which values (in any search form) lie in which files under `roots`."""
    forms = {value: search_forms(value) for value in values}
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if any(path.is_relative_to(s) for s in skip) or path.suffix in (".lock", ".wal"):
                continue
            data = decoded(path)
            for value, value_forms in forms.items():
                if any(f in data for f in value_forms):
                    found.setdefault(value, []).append(str(path))
    return found
