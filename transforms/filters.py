"""Curation stages as ``doc -> doc | Drop`` callables: language ID, URL filter, quality filters, PII.

A filter stage scores a document, then keeps or drops it. Either way the signals it computed
travel with the document (as ``{stage}_{signal}`` fields), so a rejected row shows why it went and
what the earlier stages measured (``lang``, ``lang_score``). In *annotate* mode nothing is
dropped: the signals and the reason the document *would* have been dropped for
(``{stage}_reason``) become columns of ``documents/``, to choose thresholds afterwards.
"""

from __future__ import annotations

from collections import Counter

from transforms.document import Drop

# Signals that are not numbers or flags (kept out of the typed annotate columns).
_NOT_COLUMNS = {"text", "doc_reason"}


def signal_fields(stage: str, signals: dict, keep_none: bool = True) -> dict:
    return {f"{stage}_{k}": v for k, v in signals.items()
            if k not in _NOT_COLUMNS and (keep_none or v is not None)}


class _Counting:
    """A stage's own counters (redactions, would-be drops), drained by the runner into stats.json."""

    def __init__(self):
        self.counters: Counter = Counter()

    def pop_counters(self) -> dict:
        out, self.counters = dict(self.counters), Counter()
        return out


class FilterStage(_Counting):
    """A scorer with ``score(text, lang)`` / ``keep(signals, lang)`` as a document stage."""

    def __init__(self, scorer, annotate: bool = False, field: str = "text"):
        super().__init__()
        self.scorer = scorer
        self.stage = scorer.name
        self.annotate = annotate
        self.field = field  # what is scored: the text, or the url (urlfilter)

    def __call__(self, doc: dict):
        value = doc.get(self.field) or ""
        lang = doc.get("lang")
        signals = self.scorer.score(value, lang)
        reason = self.scorer.keep(signals, lang)
        doc.update(signal_fields(self.stage, signals, keep_none=self.annotate))
        if self.annotate:
            doc[f"{self.stage}_reason"] = reason
            if reason:
                self.counters[f"would_drop:{reason}"] += 1
            return doc
        if reason:
            detail = signals.get("list") or ""
            return Drop(reason, str(detail))
        if "text" in signals and self.field == "text":  # a line filter (C4) rewrote the text
            if signals["text"] != doc["text"]:
                self.counters["texts_rewritten"] += 1
            doc["text"] = signals["text"]
        return doc


class LanguageStage(_Counting):
    """``lang`` and ``lang_score`` for every document; drops languages not kept or scores too low."""

    stage = "langid"

    def __init__(self, identifier, keep: list[str] | None = None, min_score: float = 0.65,
                 annotate: bool = False):
        super().__init__()
        self.identifier = identifier
        self.keep_langs = set(keep or [])
        self.min_score = min_score
        self.annotate = annotate

    def __call__(self, doc: dict):
        p = self.identifier.predict(doc.get("text") or "")
        if p is None:
            doc["lang"], doc["lang_score"] = None, 0.0
            reason = "no_text"
        else:
            doc["lang"], doc["lang_score"] = p.lang, round(p.score, 4)
            if p.by != "lid176":
                self.counters["second_opinion"] += 1
                if p.lang != p.raw:
                    self.counters["second_opinion_changed"] += 1
            reason = None
            if self.keep_langs and p.lang not in self.keep_langs:
                reason = "language_not_kept"
            elif p.score < self.min_score:
                reason = "low_language_score"
        if reason and not self.annotate:
            return Drop(reason, f"{doc['lang']} {doc['lang_score']}")
        if self.annotate:
            doc["langid_reason"] = reason
        return doc


class PiiStage(_Counting):
    stage = "pii"

    def __init__(self, redactor):
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
