"""The run configuration: YAML in, typed dataclasses out, every mistake named by its key.

Loading is strict: an unknown key, a value of the wrong type or out of range fails before any
job starts, with the dotted path of the key (``stages.extract.backend``). YAML is read with
``safe_load``: a config can never construct Python objects.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from transforms.extract import BACKENDS
from transforms.pii import PiiRedactor
from transforms.quality import C4Quality, FineWebQuality, GopherQuality


class ConfigError(ValueError):
    pass


@dataclass
class IngestConfig:
    keep_status: list[int] = field(default_factory=lambda: [200])
    keep_content_types: list[str] = field(default_factory=lambda: ["text/html", "text/plain"])
    max_record_bytes: int = 64 * 1024 * 1024
    max_control_ratio: float = 0.05
    split_bytes: int = 4 * 1024 * 1024  # gzip WARC files are read in ranges of this size, in parallel

    def validate(self, path: str) -> None:
        _check(self.max_record_bytes > 0, f"{path}.max_record_bytes", "must be > 0")
        _check(self.split_bytes >= 65536, f"{path}.split_bytes", "must be >= 65536")
        _check(0 <= self.max_control_ratio <= 1, f"{path}.max_control_ratio", "must be within [0, 1]")
        _check(bool(self.keep_content_types), f"{path}.keep_content_types", "must name at least one type")


@dataclass
class ExtractConfig:
    enabled: bool = True
    backend: str = "resiliparse"
    main_content: bool = True
    timeout_s: float = 10.0
    min_chars: int = 1

    def validate(self, path: str) -> None:
        _check(self.backend in BACKENDS, f"{path}.backend", f"must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.enabled and self.backend == "trafilatura":
            _check(_importable("trafilatura", "lxml.html.clean"), f"{path}.backend",
                   "trafilatura is not installed: pip install 'thresher[trafilatura]'")
        _check(self.timeout_s >= 0, f"{path}.timeout_s", "must be >= 0 (0: no limit)")
        _check(self.min_chars >= 0, f"{path}.min_chars", "must be >= 0")


@dataclass
class UrlfilterConfig:
    enabled: bool = True
    annotate: bool = False  # record the match instead of dropping
    domain_lists: list[str] = field(default_factory=list)  # UT1-style files: one domain a line
    url_lists: list[str] = field(default_factory=list)  # UT1-style files: one host/path a line
    banned_words: list[str] = field(default_factory=list)  # whole tokens of the URL
    banned_subwords: list[str] = field(default_factory=list)  # substrings of the URL

    def validate(self, path: str) -> None:
        if self.enabled:
            for key in ("domain_lists", "url_lists"):
                for i, f in enumerate(getattr(self, key)):
                    _check(os.path.exists(f), f"{path}.{key}[{i}]", f"no such file: {f}")


@dataclass
class LangidConfig:
    enabled: bool = True
    annotate: bool = False  # record lang/lang_score and the would-be reason, drop nothing
    keep: list[str] = field(default_factory=list)  # language codes to keep (ISO 639-1; empty: all)
    min_score: float = 0.65
    second_opinion: str = "langid"  # langid.py on close calls (Latin-script relatives, low scores); or none
    consult_below: float = 0.9  # lid.176 scores below this get the second opinion
    partition: bool = False  # write documents/lang=xx/ folders

    def validate(self, path: str) -> None:
        _check(0 <= self.min_score <= 1, f"{path}.min_score", "must be within [0, 1]")
        _check(0 <= self.consult_below <= 1, f"{path}.consult_below", "must be within [0, 1]")
        _check(self.second_opinion in ("langid", "none"), f"{path}.second_opinion", "must be langid or none")
        for i, code in enumerate(self.keep):
            _check(bool(code) and code.isascii() and code.replace("-", "").isalnum(), f"{path}.keep[{i}]",
                   f"not a language code: {code!r}")


@dataclass
class GopherRepetitionConfig:
    enabled: bool = True
    annotate: bool = False
    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_2_gram: float = 0.20
    top_3_gram: float = 0.18
    top_4_gram: float = 0.16
    duplicated_5_n_grams: float = 0.15
    duplicated_6_n_grams: float = 0.14
    duplicated_7_n_grams: float = 0.13
    duplicated_8_n_grams: float = 0.12
    duplicated_9_n_grams: float = 0.11
    duplicated_10_n_grams: float = 0.10


@dataclass
class GopherQualityConfig(GopherQuality):
    """Gopher quality: the thresholds and their published defaults are GopherQuality's fields."""

    enabled: bool = True
    annotate: bool = False


@dataclass
class C4Config(C4Quality):
    """C4: the settings and their defaults are C4Quality's fields."""

    enabled: bool = True
    annotate: bool = False  # record signals; the text keeps all its lines


@dataclass
class FinewebConfig(FineWebQuality):
    """FineWeb: the thresholds and their defaults are FineWebQuality's fields."""

    enabled: bool = True
    annotate: bool = False


@dataclass
class PiiConfig(PiiRedactor):
    """PII redaction: the settings are PiiRedactor's fields."""

    enabled: bool = True


@dataclass
class DedupExactConfig:
    enabled: bool = True
    lowercase: bool = True
    whitespace: bool = True
    punctuation: bool = True
    digits: bool = True
    unicode_nfkc: bool = True
    by_url: bool = False  # first keep only the newest capture (WARC-Date) of each URL


@dataclass
class DedupMinhashConfig:
    enabled: bool = True
    ngram: int = 5  # word n-gram shingles (character n-grams in scripts without spaces)
    bands: int = 14
    rows: int = 8
    auto_bands: bool = False  # derive bands x rows from `threshold` for `num_perm` (datasketch's optimiser)
    num_perm: int = 112
    threshold: float = 0.8  # target Jaccard similarity
    verify: bool = True  # drop candidate pairs whose estimated Jaccard is below `threshold`
    keep: str = "lowest_id"  # lowest_id | longest
    rounds: int = 20  # connected-components rounds unrolled in the graph
    seed: int = 1

    def resolved_bands(self) -> tuple[int, int]:
        if self.auto_bands:
            from transforms.dedup import optimal_bands

            return optimal_bands(self.threshold, self.num_perm)
        return self.bands, self.rows

    def validate(self, path: str) -> None:
        _check(self.ngram >= 1, f"{path}.ngram", "must be >= 1")
        _check(self.bands >= 1 and self.rows >= 1, f"{path}.bands", "bands and rows must be >= 1")
        _check(0 < self.threshold <= 1, f"{path}.threshold", "must be within (0, 1]")
        _check(self.num_perm >= 2, f"{path}.num_perm", "must be >= 2")
        _check(self.keep in ("lowest_id", "longest"), f"{path}.keep", "must be lowest_id or longest")
        _check(1 <= self.rounds <= 200, f"{path}.rounds", "must be within [1, 200]")


@dataclass
class TokenizeConfig:
    enabled: bool = True
    tokenizer: str = ""  # path to a tokenizer.json; empty: the small default shipped in the package
    eos_token: str = "<|endoftext|>"
    shard_tokens: int = 50_000_000  # target tokens per shard
    batch_docs: int = 256  # documents per encode_batch call

    def validate(self, path: str) -> None:
        _check(self.shard_tokens >= 1, f"{path}.shard_tokens", "must be >= 1")
        _check(self.shard_tokens < 2**31, f"{path}.shard_tokens", "must be < 2**31 (Arrow list offsets are int32)")
        _check(self.batch_docs >= 1, f"{path}.batch_docs", "must be >= 1")
        if self.enabled and self.tokenizer:
            _check(os.path.exists(self.tokenizer) or "://" in self.tokenizer, f"{path}.tokenizer",
                   f"no such file: {self.tokenizer}")


@dataclass
class StagesConfig:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    urlfilter: UrlfilterConfig = field(default_factory=UrlfilterConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    langid: LangidConfig = field(default_factory=LangidConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FinewebConfig = field(default_factory=FinewebConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    dedup_exact: DedupExactConfig = field(default_factory=DedupExactConfig)
    dedup_minhash: DedupMinhashConfig = field(default_factory=DedupMinhashConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)


@dataclass
class WriteConfig:
    # Files per output folder: a fixed count, or 0 for one file per `shard_input_mb` MB of input
    # (the count then grows with the corpus, and a writer's memory does not).
    document_shards: int = 0
    rejected_shards: int = 0
    shard_input_mb: int = 16
    rejected_sample: float = 1.0  # fraction of dropped documents written to rejected/ (seeded)
    rejected_text_chars: int = 0  # cut the text of rejected documents to this many chars (0: keep all)
    compression: str = "zstd"
    seed: int = 0

    def validate(self, path: str) -> None:
        _check(self.document_shards >= 0, f"{path}.document_shards", "must be >= 0 (0: by shard_input_mb)")
        _check(self.rejected_shards >= 0, f"{path}.rejected_shards", "must be >= 0 (0: by shard_input_mb)")
        _check(self.shard_input_mb >= 1, f"{path}.shard_input_mb", "must be >= 1")
        _check(0 <= self.rejected_sample <= 1, f"{path}.rejected_sample", "must be within [0, 1]")
        _check(self.rejected_text_chars >= 0, f"{path}.rejected_text_chars", "must be >= 0")
        _check(self.compression in ("zstd", "snappy", "gzip", "none"), f"{path}.compression",
               "must be one of zstd, snappy, gzip, none")


@dataclass
class RunnerConfig:
    name: str = "direct"  # direct | portable | any Beam runner name (DataflowRunner, SparkRunner, ...)
    workers: int = 1  # local worker processes for the direct runner

    def validate(self, path: str) -> None:
        _check(self.workers >= 1, f"{path}.workers", "must be >= 1")
        _check(bool(self.name), f"{path}.name", "must not be empty")


@dataclass
class Config:
    input: list[str] = field(default_factory=list)  # paths or globs; empty: the embedded sample
    output: str = "thresher-out"
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    write: WriteConfig = field(default_factory=WriteConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)

    def validate(self) -> "Config":
        _check(bool(self.output), "output", "must not be empty")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                _validate_tree(value, f.name)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _importable(*modules: str) -> bool:
    try:
        for m in modules:
            importlib.import_module(m)
    except ImportError:
        return False
    return True


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}': {message}")


def _validate_tree(obj: Any, path: str) -> None:
    if hasattr(obj, "validate"):
        obj.validate(path)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _validate_tree(value, f"{path}.{f.name}")


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, path)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{path}': {value!r} is not a valid {tp}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and item_tp in (str, int):
            value = [value]  # a single value where a list is expected
        if not isinstance(value, list):
            raise ConfigError(f"config key '{path}': expected a list, got {type(value).__name__}")
        return [_coerce(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{path}': expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{path}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{path}': expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{path}': expected a string, got {value!r}")
        return value
    raise ConfigError(f"config key '{path}': unsupported type {tp}")  # a bug in this module, not the user's


def _from_dict(cls: type, data: Any, path: str = "") -> Any:
    where = f"'{path}'" if path else "the top level"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config key {where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            full = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"unknown config key '{full}' (known at {where}: {', '.join(names)})")
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def from_dict(data: Any) -> Config:
    return _from_dict(Config, data).validate()


def load(path: str | None) -> Config:
    if path is None:
        return Config().validate()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    return from_dict(data)
