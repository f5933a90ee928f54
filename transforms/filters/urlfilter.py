"""URL filtering: domain and URL blocklists (UT1 format) and banned words in the URL.

UT1-style lists (the Université Toulouse 1 Capitole blacklists that datatrove and FineWeb use)
hold one entry a line: ``domains`` files a host name each (a listed domain blocks its
subdomains), ``urls`` files a host and path each (blocks that page and everything under it).
Lines starting with ``#`` are comments. A blocked document records which list matched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from thresher.transforms.filters.base import Filter, register_filter
from thresher.transforms.stage import check

_TOKENS = re.compile(r"[^\W_]+")


def read_list(path: str) -> set[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return {line.strip().lower() for line in fh if line.strip() and not line.lstrip().startswith("#")}


def _host_and_path(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url if "//" in url else "//" + url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:  # not a URL (an unbalanced "[" ...): no host to match
        return "", "/"
    if host.startswith("www."):
        host = host[4:]
    return host, parts.path or "/"


@register_filter(name="urlfilter", order=10, field="url",
                 description="domain/URL blocklists (UT1 format) and banned words in URLs",
                 details=("domain and URL blocklists in UT1 format (a listed domain blocks its "
                          "subdomains, a listed URL the pages under it), banned words (whole URL "
                          "tokens) and subwords; the detail names the list and entry. No list is "
                          "configured by default"),
                 reasons=("blocked_domain", "blocked_url", "banned_url_word", "banned_url_subword"))
@dataclass
class UrlFilter(Filter):
    domain_lists: list[str] = field(default_factory=list)  # files: one domain a line
    url_lists: list[str] = field(default_factory=list)  # files: one host/path a line
    banned_words: list[str] = field(default_factory=list)  # whole tokens of the URL
    banned_subwords: list[str] = field(default_factory=list)  # substrings of the URL

    def validate(self, path: str) -> None:
        if self.enabled:
            for key in ("domain_lists", "url_lists"):
                for i, f in enumerate(getattr(self, key)):
                    check(os.path.exists(f), f"{path}.{key}[{i}]", f"no such file: {f}")

    def __post_init__(self):
        self._loaded = False

    def _load(self) -> None:
        """The lists are read in the worker, on first use: the parameters travel with the config
        (to every worker), the tables (millions of entries for UT1) do not."""
        self._loaded = True
        self.domains: dict[str, str] = {}
        for path in self.domain_lists:
            name = os.path.basename(path)
            for entry in read_list(path):
                self.domains.setdefault(_host_and_path(entry)[0] or entry, name)
        self.urls: dict[str, str] = {}
        for path in self.url_lists:
            name = os.path.basename(path)
            for entry in read_list(path):
                host, p = _host_and_path(entry)
                self.urls.setdefault(host + p.rstrip("/"), name)
        self.words = {w.lower() for w in self.banned_words}
        self.subwords = [w.lower() for w in self.banned_subwords]

    def score(self, url: str | None, lang: str | None = None) -> dict:
        if not url:
            return {"match": None, "list": None}
        if not self._loaded:
            self._load()
        host, path = _host_and_path(url)
        labels = host.split(".")
        for i in range(len(labels) - 1):  # the host, then each parent domain
            d = ".".join(labels[i:])
            if d in self.domains:
                return {"match": "blocked_domain", "list": f"{self.domains[d]}:{d}"}
        if self.urls:
            segs = path.rstrip("/").split("/")
            for i in range(len(segs), 0, -1):  # the page, then each parent folder
                key = host + "/".join(segs[:i])
                if key in self.urls:
                    return {"match": "blocked_url", "list": f"{self.urls[key]}:{key}"}
        low = url.lower()
        if self.words:
            hit = sorted(self.words.intersection(_TOKENS.findall(low)))
            if hit:
                return {"match": "banned_url_word", "list": hit[0]}
        for w in self.subwords:
            if w in low:
                return {"match": "banned_url_subword", "list": w}
        return {"match": None, "list": None}

    def keep(self, s: dict, lang: str | None = None) -> str | None:
        return s["match"]
