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

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

import pyarrow as pa

from thresher.transforms.document import Drop
from thresher.transforms.stage import ConfigError, Stage, register

# Signals that are not columns: the text a line filter rewrote.
_NOT_COLUMNS = {"text"}


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


_LANG_CODE = re.compile(r"^[a-z]{2,3}$")


@dataclass
class Filter:
    """Base of the filters' parameter dataclasses: the switches every filter has, and per-language
    overrides of its numeric thresholds (``languages: {ja: {duplicated_5_n_grams: 0.2}}``; what
    `thresher calibrate` writes)."""

    name = ""  # set by register_filter
    # The rules `thresher calibrate` can move, one per threshold: {field: (signal, op[, exempt])},
    # the rule firing when ``signal op field`` (op "<" or ">"), as `keep` tests it, except on
    # documents whose signal `exempt` is true (a rule the filter skips for them).
    RULES = {}
    enabled: bool = True
    annotate: bool = False  # record the signals and would-be reason instead of dropping
    languages: dict[str, dict[str, float]] = field(default_factory=dict)

    def validate(self, path: str) -> None:
        self.validate_languages(path)

    def validate_languages(self, path: str) -> None:
        """(`register_filter` runs this before a filter's own `validate`, which need not call it.)"""
        numeric = self.numeric_fields()
        for lang, overrides in self.languages.items():
            if not _LANG_CODE.match(lang):
                raise ConfigError(f"config key '{path}.languages.{lang}': a language code (ISO 639-1, as langid writes)")
            for key, value in overrides.items():
                if key not in numeric:
                    raise ConfigError(f"config key '{path}.languages.{lang}.{key}': not a numeric threshold of "
                                      f"{self.name} (those are: {', '.join(numeric)})")
                if numeric[key] is int and float(value) != int(value):
                    raise ConfigError(f"config key '{path}.languages.{lang}.{key}': expected an integer, got {value!r}")

    @classmethod
    def numeric_fields(cls) -> dict[str, type]:
        """The thresholds a language may override: the int and float fields."""
        import typing

        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls) if hints[f.name] in (int, float)}

    def for_lang(self, lang: str | None) -> "Filter":
        """This filter with `lang`'s overrides applied (itself when it has none)."""
        overrides = self.languages.get(lang) if lang else None
        if not overrides:
            return self
        cache = self.__dict__.setdefault("_by_lang", {})
        if lang not in cache:
            numeric = self.numeric_fields()
            cache[lang] = dataclasses.replace(self, languages={},
                                              **{k: numeric[k](v) for k, v in overrides.items()})
        return cache[lang]

    def decides_with(self, field: str, lang: str | None) -> bool:
        """Whether threshold `field` decides anything for `lang`'s documents (`thresher calibrate`
        moves only those); a filter whose rules are off, or fixed, for some languages says so."""
        return True

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
        scorer = self.scorer.for_lang(lang)
        signals = scorer.score(value, lang)
        reason = scorer.keep(signals, lang)
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
        own = cls.__dict__.get("validate")
        if own is not None:  # a filter's own checks, after the per-language overrides'
            def validate(self, path: str, _own=own) -> None:
                self.validate_languages(path)
                _own(self, path)

            cls.validate = validate
        register(Stage(name=name, description=description, params=cls, order=order, reasons=tuple(reasons),
                       build=partial(_build, field), columns=partial(_columns, field), details=details))
        return cls

    return wrap
