"""Filters: a scorer class that is its own parameters, registered as a document stage.

A filter is a dataclass whose fields are its thresholds (the config section ``stages.<name>``,
with ``enabled`` and ``annotate``), with ``score(value, lang) -> signals`` and
``keep(signals, lang) -> None | reason`` (scoring is split from keeping, as in NeMo Curator).
`register_filter` makes it a stage. The stage scores a document, then keeps or drops it; either way
the signals travel with the document (as ``{stage}_{signal}`` fields), so a rejected row shows why
it went and what the earlier stages measured (``lang``, ``lang_score``). In *annotate* mode nothing
is dropped: the signals and the reason the document *would* have been dropped for
(``{stage}_reason``) become columns of ``documents/``, to choose thresholds afterwards.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial

import pyarrow as pa

from thresher.transforms.document import Drop
from thresher.transforms.stage import Stage, register

# Signals that are not numbers or flags (kept out of the typed annotate columns).
_NOT_COLUMNS = {"text", "doc_reason"}


def signal_fields(stage: str, signals: dict, keep_none: bool = True) -> dict:
    return {f"{stage}_{k}": v for k, v in signals.items()
            if k not in _NOT_COLUMNS and (keep_none or v is not None)}


class Reason(str):
    """A drop reason that also says which signal crossed which threshold (`detail`)."""

    detail: str = ""


def fired(reason: str, signal: str, value, op: str, limit) -> Reason:
    """`keep`'s answer for a threshold rule: the reason, with e.g. ``alpha_words 0.779 < 0.8``
    as the rejected row's detail."""
    r = Reason(reason)
    r.detail = f"{signal} {_short(value)} {op} {_short(limit)}"
    return r


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Counting:
    """A stage's own counters (redactions, would-be drops), drained by the runner into stats.json."""

    def __init__(self):
        self.counters: Counter = Counter()

    def pop_counters(self) -> dict:
        out, self.counters = dict(self.counters), Counter()
        return out


@dataclass
class Filter:
    """Base of the filters' parameter dataclasses: the two switches every filter has."""

    name = ""  # set by register_filter
    enabled: bool = True
    annotate: bool = False  # record the signals and would-be reason instead of dropping

    def score(self, value: str, lang: str | None = None) -> dict:
        raise NotImplementedError

    def keep(self, signals: dict, lang: str | None = None) -> str | None:
        raise NotImplementedError


class FilterStage(Counting):
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
            doc[f"{self.stage}_reason"] = str(reason) if reason else reason
            if reason:
                self.counters[f"would_drop:{reason}"] += 1
            return doc
        if reason:
            detail = getattr(reason, "detail", "") or signals.get("list") or ""
            return Drop(str(reason), str(detail))
        if "text" in signals and self.field == "text":  # a line filter (C4) rewrote the text
            if signals["text"] != doc["text"]:
                self.counters["texts_rewritten"] += 1
            doc["text"] = signals["text"]
        return doc


# The text a filter scores to learn its signals' types (the columns annotate mode writes).
_SAMPLE = ("The quick brown fox jumps over the lazy dog. It has to be said that the dog was with us.\n" * 3
           + "- a list item\nA line without an end")
_SAMPLE_URL = "http://example.com/a"


def arrow_type(value) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


def _build(field: str, params: Filter, ctx) -> FilterStage:
    return FilterStage(params, params.annotate, field=field)


def _columns(field: str, params: Filter) -> tuple:
    """In annotate mode: one column per signal and ``{stage}_reason``."""
    if not params.annotate:
        return ()
    signals = signal_fields(params.name, params.score(_SAMPLE_URL if field == "url" else _SAMPLE, "en"))
    return tuple((k, arrow_type(v)) for k, v in signals.items()) + ((f"{params.name}_reason", pa.string()),)


def register_filter(*, name: str, order: int, description: str, reasons: tuple[str, ...], field: str = "text",
                    details: str = ""):
    """Class decorator: the `Filter` subclass becomes the stage `name` (its fields: the config section)."""

    def wrap(cls: type) -> type:
        cls.name = name
        register(Stage(name=name, description=description, params=cls, order=order, reasons=tuple(reasons),
                       build=partial(_build, field), columns=partial(_columns, field), details=details))
        return cls

    return wrap
