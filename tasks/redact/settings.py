"""What redaction finds and how: the settings that go into a document's identity and `config_id`."""

from __future__ import annotations

from dataclasses import dataclass

# Bumped when a detector changes what it finds, so files redacted by an older version are read again.
REDACT_VERSION = 1
# Every type, in the order overlapping detections are resolved (the first wins the union of the
# overlap): checksummed or structurally certain kinds before phone numbers, which a library
# recognises by number plans alone.
TYPES = ("url_credentials", "email", "iban", "national_id", "card", "ip", "phone")
# Phone numbers without a country code are read as numbers of these regions: the users' corpora
# are English and Chinese. With no region only "+"-prefixed numbers would be found, and a national
# number such as 010-12345678 or (415) 555-0132 would be stored as it came.
DEFAULT_PHONE_REGIONS = ("US", "CN")


@dataclass(frozen=True)
class RedactSettings:
    types: tuple[str, ...] = TYPES
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in TYPES]
        if unknown:
            raise ValueError(f"unknown redaction types {unknown}; known: {', '.join(TYPES)}")

    @property
    def key(self) -> str:
        """These settings as a stable text: in `inbox_files.settings`, the doc_id and config_id."""
        types = ",".join(t for t in TYPES if t in self.types)
        return f"redact={REDACT_VERSION};types={types};regions={','.join(self.phone_regions)}"
