"""The stage registry: names users select with --only/--skip, in the order the recipe runs them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Callable

import pyarrow as pa

from pipeline.config import Config, ConfigError
from transforms.extract import ExtractText
from transforms.ingest import decode_payload
from transforms.tokenize import TokenizeDocuments


@dataclass(frozen=True)
class StageSpec:
    name: str
    description: str
    # Builds the per-document callable (doc -> doc | Drop) inside a worker, once per DoFn instance.
    make: Callable[[Config], Callable] | None
    columns: tuple[tuple[str, pa.DataType], ...] = ()  # signal columns the stage adds to documents/
    optional: bool = True  # ingest and writing always run
    batch: int = 0  # > 0: `make` builds a callable over lists of documents, called with up to this many
    corpus: Callable | None = None  # a corpus-level stage: (cfg, common kwargs) -> PTransform


def _make_decode(cfg: Config):
    ratio = cfg.stages.ingest.max_control_ratio
    html_field = "html" if cfg.stages.extract.enabled else "text"

    def decode(doc: dict):
        return decode_payload(doc, ratio, html_field)

    return decode


def _make_extract(cfg: Config):
    c = cfg.stages.extract
    return ExtractText(c.backend, c.main_content, c.timeout_s, c.min_chars)


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


STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest", "read WARC/WET/JSONL/Parquet records; keep HTTP 200 text responses; decode charsets",
              _make_decode, optional=False),
    StageSpec("extract", "HTML to main text (resiliparse, or trafilatura)", _make_extract),
    StageSpec("dedup_exact", "one document per normalised-text hash (optionally newest capture per URL)", None,
              corpus=_corpus("ExactDedup")),
    StageSpec("dedup_minhash", "MinHash LSH near-duplicate removal, components clustered in parallel; writes dedup/",
              None, corpus=_corpus("MinHashDedup")),
    StageSpec("tokenize", "token ids with a Hugging Face tokenizer, EOS appended; writes shards/",
              _make_tokenize, columns=(("n_tokens", pa.int32()),), batch=256),
)

STAGE_NAMES = tuple(s.name for s in STAGES)


def parse_stage_list(value: str | None, flag: str) -> list[str]:
    if not value:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    for n in names:
        if n not in STAGE_NAMES:
            raise ConfigError(f"{flag}: unknown stage '{n}' (stages: {', '.join(STAGE_NAMES)})")
    return names


def enabled_stages(cfg: Config) -> list[StageSpec]:
    """The stages this run executes, in recipe order (``--only``/``--skip`` were applied to the config)."""
    return [spec for spec in STAGES if not spec.optional or getattr(cfg.stages, spec.name).enabled]
