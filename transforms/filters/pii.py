"""PII redaction: e-mail addresses and public IP addresses become placeholders.

IP addresses are validated with ``ipaddress``: private, loopback, link-local, documentation and
other non-global ranges stay (they identify nobody), as do dotted numbers that are not addresses
(``1.2.3.4.5``, ``256.1.1.1``, octets with leading zeros) and version numbers (``v1.2.3.4``,
``version 10.0.0.1``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import pyarrow as pa

from thresher.transforms.filters.base import Counting
from thresher.transforms.stage import Stage, register

EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\w.])({_OCTET}(?:\.{_OCTET}){{3}})(?![\w]|\.\d)")
IPV6 = re.compile(r"(?<![\w:.])((?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4}){0,6})(?![\w:])")
_VERSION_BEFORE = re.compile(r"(?:\bv|\bver\.?|\bversion|\brelease|\bbuild)\s*$", re.I)


def _is_public(candidate: str) -> bool:
    try:
        return ipaddress.ip_address(candidate).is_global
    except ValueError:
        return False


@dataclass
class PiiRedactor:
    name = "pii"
    enabled: bool = True
    emails: bool = True
    ips: bool = True
    email_placeholder: str = "<EMAIL>"
    ip_placeholder: str = "<IP_ADDRESS>"

    def redact(self, text: str) -> tuple[str, dict]:
        counts = {"emails": 0, "ips": 0}
        if self.emails and "@" in text:
            text, counts["emails"] = EMAIL.subn(self.email_placeholder, text)
        if self.ips:
            def ip(m: re.Match) -> str:
                if _VERSION_BEFORE.search(text[max(0, m.start() - 12):m.start()]) or not _is_public(m.group(1)):
                    return m.group(0)
                counts["ips"] += 1
                return self.ip_placeholder

            if "." in text:
                text = IPV4.sub(ip, text)
            if "::" in text or text.count(":") >= 3:
                text = IPV6.sub(ip, text)
        return text, counts


class PiiStage(Counting):
    stage = "pii"

    def __init__(self, redactor: PiiRedactor):
        super().__init__()
        self.redactor = redactor

    def __call__(self, doc: dict):
        text, counts = self.redactor.redact(doc.get("text") or "")
        doc["text"] = text
        doc["pii_emails"], doc["pii_ips"] = counts["emails"], counts["ips"]
        for k, v in counts.items():
            if v:
                self.counters[f"{k}_redacted"] += v
                self.counters[f"documents_with_{k}"] += 1
        return doc


def _build(params: PiiRedactor, ctx) -> PiiStage:
    return PiiStage(params)


register(Stage(name="pii", order=80, params=PiiRedactor, build=_build,
               description="redact e-mail addresses and public IP addresses",
               details=("e-mail addresses and public IP addresses (v4 and v6; not private, "
                        "loopback, documentation ranges, version numbers) replaced by `<EMAIL>` / "
                        "`<IP_ADDRESS>`; per-document counts in `pii_emails`, `pii_ips`, totals in"
                        " `stats.json`"),
               columns=(("pii_emails", pa.int32()), ("pii_ips", pa.int32()))))
