"""The stage registry: names users select with --only/--skip, in the order the recipe runs them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from typing import Callable

import pyarrow as pa

from pipeline.config import Config, ConfigError
from transforms.extract import ExtractText
from transforms.filters import FilterStage, LanguageStage, PiiStage, signal_fields
from transforms.ingest import decode_payload
from transforms.pii import PiiRedactor
from transforms.quality import C4Quality, FineWebQuality, GopherQuality, GopherRepetition
from transforms.tokenize import TokenizeDocuments
from transforms.urlfilter import UrlFilter


@dataclass(frozen=True)
class StageSpec:
    name: str
    description: str
    # Builds the per-document callable (doc -> doc | Drop) inside a worker, once per DoFn instance.
    make: Callable[[Config], Callable] | None
    # Signal columns the stage adds to documents/ (or a function of the config giving them).
    columns: tuple[tuple[str, pa.DataType], ...] | Callable[[Config], tuple] = ()
    optional: bool = True  # ingest and writing always run
    batch: int = 0  # > 0: `make` builds a callable over lists of documents, called with up to this many
    corpus: Callable | None = None  # a corpus-level stage: (cfg, common kwargs) -> PTransform
    # A corpus stage sees documents' references (pipeline.dofns.Park); this builds the callable that
    # computes, from the whole document, the reference fields the stage needs: cfg -> (doc -> dict).
    prepare: Callable[[Config], Callable] | None = None


def _make_decode(cfg: Config):
    ratio = cfg.stages.ingest.max_control_ratio
    html_field = "html" if cfg.stages.extract.enabled else "text"

    def decode(doc: dict):
        return decode_payload(doc, ratio, html_field)

    return decode


def _make_extract(cfg: Config):
    c = cfg.stages.extract
    return ExtractText(c.backend, c.main_content, c.timeout_s, c.min_chars)


def _settings(c, *skip: str) -> dict:
    """A config section's fields minus the stage switches: the scorer's constructor arguments."""
    return {f.name: getattr(c, f.name) for f in dataclasses.fields(c) if f.name not in ("enabled", "annotate", *skip)}


def _scorer(name: str, cfg: Config):
    """The scorer of a filter stage, built from its config section."""
    c = getattr(cfg.stages, name)
    if name == "urlfilter":
        return UrlFilter(**_settings(c))
    if name == "gopher_repetition":
        top = {n: getattr(c, f"top_{n}_gram") for n in (2, 3, 4)}
        dup = {n: getattr(c, f"duplicated_{n}_n_grams") for n in range(5, 11)}
        return GopherRepetition(c.dup_line_frac, c.dup_para_frac, c.dup_line_char_frac, c.dup_para_char_frac, top, dup)
    if name == "gopher_quality":
        return GopherQuality(**_settings(c))
    if name == "c4":
        return C4Quality(**_settings(c))
    if name == "fineweb":
        return FineWebQuality(**_settings(c))
    raise KeyError(name)


def _make_filter(name: str):
    def make(cfg: Config):
        return FilterStage(_scorer(name, cfg), getattr(cfg.stages, name).annotate,
                           field="url" if name == "urlfilter" else "text")

    return make


_SAMPLE = ("The quick brown fox jumps over the lazy dog. It has to be said that the dog was with us.\n" * 3
           + "- a list item\nA line without an end")


def _arrow_type(value) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


def _filter_columns(name: str):
    """In annotate mode: one column per signal and ``{stage}_reason``."""

    def columns(cfg: Config) -> tuple:
        if not getattr(cfg.stages, name).annotate:
            return ()
        scorer = _scorer(name, cfg)
        sample = "http://example.com/a" if name == "urlfilter" else _SAMPLE
        signals = signal_fields(name, scorer.score(sample, "en"))
        return tuple((k, _arrow_type(v)) for k, v in signals.items()) + ((f"{name}_reason", pa.string()),)

    return columns


def _make_langid(cfg: Config):
    from transforms.langid import LanguageIdentifier

    c = cfg.stages.langid
    second = None if c.second_opinion == "none" else c.second_opinion
    return LanguageStage(LanguageIdentifier(second=second, consult_below=c.consult_below), c.keep, c.min_score,
                         c.annotate)


def _langid_columns(cfg: Config) -> tuple:
    cols = (("lang", pa.string()), ("lang_score", pa.float32()))
    return cols + ((("langid_reason", pa.string()),) if cfg.stages.langid.annotate else ())


def _make_pii(cfg: Config):
    return PiiStage(PiiRedactor(**_settings(cfg.stages.pii)))


def default_tokenizer() -> str:
    return str(resources.files("pipeline") / "data" / "tokenizer.json")


def tokenizer_json(cfg: Config) -> tuple[str, str]:
    """(tokenizer.json text, its file name) for this run; gs:// and s3:// paths work too."""
    from apache_beam.io.filesystems import FileSystems

    path = cfg.stages.tokenize.tokenizer or default_tokenizer()
    with FileSystems.open(path) as fh:
        return fh.read().decode("utf-8"), path.rsplit("/", 1)[-1]


def _make_tokenize(cfg: Config):
    return TokenizeDocuments(*tokenizer_json(cfg), cfg.stages.tokenize.eos_token)


def _corpus(name: str):
    def build(cfg: Config, common: dict):
        from pipeline import dedup  # Beam code: imported only when a graph is built

        return getattr(dedup, name)(cfg, common)

    return build


def _prepare(name: str):
    def make(cfg: Config):
        from pipeline import dedup

        return getattr(dedup, name)(cfg)

    return make


STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest", "read WARC/WET/JSONL/Parquet records; keep HTTP 200 text responses; decode charsets",
              _make_decode, optional=False),
    StageSpec("urlfilter", "domain/URL blocklists (UT1 format) and banned words in URLs", _make_filter("urlfilter"),
              columns=_filter_columns("urlfilter")),
    StageSpec("extract", "HTML to main text (resiliparse, or trafilatura)", _make_extract),
    StageSpec("langid", "language and score (fastText lid.176; langid.py on close calls); keep languages",
              _make_langid, columns=_langid_columns),
    StageSpec("gopher_repetition", "Gopher repetition: duplicate lines/paragraphs/n-grams", _make_filter("gopher_repetition"),
              columns=_filter_columns("gopher_repetition")),
    StageSpec("gopher_quality", "Gopher quality: length, word length, symbols, bullets, stop words",
              _make_filter("gopher_quality"), columns=_filter_columns("gopher_quality")),
    StageSpec("c4", "C4: drop lines without terminal punctuation, boilerplate; documents with too few sentences",
              _make_filter("c4"), columns=_filter_columns("c4")),
    StageSpec("fineweb", "FineWeb: line punctuation, short lines, duplicated lines, list-like documents",
              _make_filter("fineweb"), columns=_filter_columns("fineweb")),
    StageSpec("pii", "redact e-mail addresses and public IP addresses", _make_pii,
              columns=(("pii_emails", pa.int32()), ("pii_ips", pa.int32()))),
    StageSpec("dedup_exact", "one document per normalised-text hash (optionally newest capture per URL)", None,
              corpus=_corpus("ExactDedup"), prepare=_prepare("exact_prepare")),
    StageSpec("dedup_minhash", "MinHash LSH near-duplicate removal, components clustered in parallel; writes dedup/",
              None, corpus=_corpus("MinHashDedup"), prepare=_prepare("minhash_prepare")),
    StageSpec("tokenize", "token ids with a Hugging Face tokenizer, EOS appended; writes shards/",
              _make_tokenize, columns=(("n_tokens", pa.int32()),), batch=256),
)

STAGE_NAMES = tuple(s.name for s in STAGES)
# The stages that judge content (language and quality): tests of other stages on synthetic text
# switch these off.
CURATION_FILTERS = ("urlfilter", "langid", "gopher_repetition", "gopher_quality", "c4", "fineweb", "pii")


def parse_stage_list(value: str | None, flag: str) -> list[str]:
    if not value:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    for n in names:
        if n not in STAGE_NAMES:
            raise ConfigError(f"{flag}: unknown stage '{n}' (stages: {', '.join(STAGE_NAMES)})")
    return names


def stage_columns(spec: StageSpec, cfg: Config) -> tuple:
    return spec.columns(cfg) if callable(spec.columns) else spec.columns


def enabled_stages(cfg: Config) -> list[StageSpec]:
    """The stages this run executes, in recipe order (``--only``/``--skip`` were applied to the config)."""
    return [spec for spec in STAGES if not spec.optional or getattr(cfg.stages, spec.name).enabled]
