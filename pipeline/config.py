"""The run configuration: YAML in, typed dataclasses out, every mistake named by its key.

Loading is strict: an unknown key, a value of the wrong type or out of range fails before any
job starts, with the dotted path of the key (``stages.extract.backend``). YAML is read with
``safe_load``: a config can never construct Python objects.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from thresher.transforms import stage as stage_registry
from thresher.transforms.stage import ConfigError, check as _check

__all__ = ["Config", "ConfigError", "RunnerConfig", "StagesConfig", "WriteConfig", "apply_overrides", "from_dict", "load"]


class StagesConfig:
    """``stages.<name>``: one section per registered stage (transforms/stage.py), in recipe order.

    Each section is the stage's own parameters dataclass; nothing here names a stage."""

    def __init__(self, sections: dict | None = None):
        given = dict(sections or {})
        self.__dict__["_sections"] = {s.name: given.pop(s.name, None) or s.params() for s in stage_registry.stages()}
        if given:
            raise ConfigError(f"unknown stage section(s): {', '.join(given)}")

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("stage sections are fixed by the registry; change their fields instead")

    def items(self):
        return self.__dict__["_sections"].items()

    def __eq__(self, other) -> bool:
        return isinstance(other, StagesConfig) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"StagesConfig({dict(self.items())!r})"

    def to_dict(self) -> dict:
        return {name: dataclasses.asdict(section) for name, section in self.items()}

    @classmethod
    def from_dict(cls, data, path: str) -> "StagesConfig":
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"config key '{path}': expected a mapping, got {type(data).__name__}")
        known = {s.name: s for s in stage_registry.stages()}
        for key in data:
            if key not in known:
                raise ConfigError(f"unknown config key '{path}.{key}'{did_you_mean(str(key), known)} "
                                  f"(known at '{path}': {', '.join(known)})")
        return cls({k: _from_dict(known[k].params, v, f"{path}.{k}") for k, v in data.items()})

    def validate(self, path: str) -> None:
        for name, section in self.items():
            _validate_tree(section, f"{path}.{name}")


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
    # Kept documents sharing an id (ids given by the input: a JSONL or Parquet `id` field): warn
    # names them on stderr and in stats.json; error fails the run before anything is published.
    duplicate_ids: str = "warn"

    def validate(self, path: str) -> None:
        _check(self.duplicate_ids in ("warn", "error"), f"{path}.duplicate_ids",
               f"must be warn or error, not {self.duplicate_ids!r}")
        _check(self.document_shards >= 0, f"{path}.document_shards", "must be >= 0 (0: by shard_input_mb)")
        _check(self.rejected_shards >= 0, f"{path}.rejected_shards", "must be >= 0 (0: by shard_input_mb)")
        _check(self.shard_input_mb >= 1, f"{path}.shard_input_mb", "must be >= 1")
        _check(0 <= self.rejected_sample <= 1, f"{path}.rejected_sample", "must be within [0, 1]")
        _check(self.rejected_text_chars >= 0, f"{path}.rejected_text_chars", "must be >= 0")
        _check(self.compression in ("zstd", "snappy", "gzip", "none"), f"{path}.compression",
               "must be one of zstd, snappy, gzip, none")


LOCAL_RUNNERS = ("direct",)  # Beam's Python runner in this process, or local worker processes
# A local run's fixed memory, measured (docs/benchmarks.md, Scale): the runner process holds ~250 MB
# whatever the corpus's size, a worker ~300 MB before its share of the data; a worker's share must
# leave room for the groupings' buffers (pipeline/graph/grouping.py).
RUNNER_MB = 400
WORKER_MB = 350
MIN_WORKER_MB = 100


def machine_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        return 8192


@dataclass
class RunnerConfig:
    name: str = "direct"  # direct | spark | flink | portable | any Beam runner name (DataflowRunner, ...)
    workers: int = 1  # local worker processes for the direct runner; spark/flink: local[N] / parallelism
    # Bulk rows between stages (documents around the dedup shuffles, rows to the writers) travel
    # through spill files in the run's staging folder (on), or through the runner's own shuffle
    # (off); auto: on for the local runner, which holds a shuffle in memory, off elsewhere.
    spill: str = "auto"
    # A rerun after a crash reuses the document stages' results of the input ranges (gzip WARC byte
    # ranges) the crashed run finished: each range's checkpoint waits in the staging folder until
    # the run is published. Needs spill files and a corpus stage (dedup), where documents park.
    resume: bool = True
    # What a local run may hold in memory, its processes together, in MB (0: half of this machine's).
    # The groupings kept on disk size their write buffers and what they group at once from each
    # worker's share; a budget that cannot hold the runner and its workers fails before the run.
    memory_mb: int = 0

    def validate(self, path: str) -> None:
        _check(self.workers >= 1, f"{path}.workers", "must be >= 1")
        _check(bool(self.name), f"{path}.name", "must not be empty")
        _check(self.spill in ("auto", "on", "off"), f"{path}.spill", f"must be auto, on or off, not {self.spill!r}")
        _check(self.memory_mb >= 0, f"{path}.memory_mb", "must be >= 0 (0: half of this machine's memory)")

    def worker_memory_mb(self) -> int:
        """Each local worker's share of `memory_mb` beyond what a worker holds anyway (its libraries
        and models, and the runner process's own), in MB; a ConfigError when there is too little."""
        total = self.memory_mb or machine_memory_mb() // 2
        share = (total - RUNNER_MB) // self.workers - WORKER_MB
        if share < MIN_WORKER_MB:
            least = RUNNER_MB + self.workers * (WORKER_MB + MIN_WORKER_MB)
            raise ConfigError(f"runner.memory_mb: {total:,} MB cannot hold a local run of {self.workers} worker(s): "
                              f"it needs at least {least:,} MB (the runner {RUNNER_MB} MB, each worker "
                              f"{WORKER_MB + MIN_WORKER_MB} MB); raise runner.memory_mb or lower runner.workers")
        return share

    def spill_files(self) -> bool:
        return self.spill == "on" or (self.spill == "auto" and self.name in LOCAL_RUNNERS)


@dataclass
class Config:
    input: list[str] = field(default_factory=list)  # paths or globs; empty: the embedded sample
    # Documents' `source` (and so their ids) is the input file's path relative to this folder;
    # empty: the deepest folder holding every input (for inputs in one folder, the file's name).
    input_root: str = ""
    # thresher run exits 1 when more than this share of the records read were errors (broken files),
    # or when nothing was read: a scheduler notices (the results are published all the same)
    max_error_fraction: float = 0.1
    output: str = "thresher-out"
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    write: WriteConfig = field(default_factory=WriteConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)

    def validate(self) -> "Config":
        _check(bool(self.output), "output", "must not be empty")
        _check(0 <= self.max_error_fraction <= 1, "max_error_fraction", "must be within [0, 1]")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                _validate_tree(value, f.name)
        self.stages.validate("stages")
        return self

    def to_dict(self) -> dict:
        return {f.name: (getattr(self, f.name).to_dict() if f.name == "stages" else
                         dataclasses.asdict(getattr(self, f.name)) if dataclasses.is_dataclass(getattr(self, f.name))
                         else copy.deepcopy(getattr(self, f.name)))
                for f in dataclasses.fields(self)}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _validate_tree(obj: Any, path: str) -> None:
    if hasattr(obj, "validate"):
        obj.validate(path)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _validate_tree(value, f"{path}.{f.name}")


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is StagesConfig:
        return StagesConfig.from_dict(value, path)
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
    if origin is dict:
        key_tp, item_tp = typing.get_args(tp)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{path}': expected a mapping, got {type(value).__name__}")
        return {_coerce(key_tp, k, path): _coerce(item_tp, v, f"{path}.{k}") for k, v in value.items()}
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
        if isinstance(value, bool):  # YAML 1.1 reads an unquoted no, yes, off, on as false or true
            hint = " (Norwegian is nb)" if value is False and ("keep" in path or "languages" in path) else ""
            raise ConfigError(f"config key '{path}': expected a string, got {value}: YAML read an unquoted "
                              f"{'no, off or false' if value is False else 'yes, on or true'} as {str(value).lower()}"
                              f"; quote the value{hint}")
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
            raise ConfigError(f"unknown config key '{full}'{did_you_mean(str(key), names)} "
                              f"(known at {where}: {', '.join(names)})")
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def from_dict(data: Any) -> Config:
    return _from_dict(Config, data).validate()


def merge(base: Any, over: Any) -> Any:
    """`over` laid on `base`: mappings merge key by key, anything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return over


# The keys whose values are paths ("[]": each item of a list). In a config file a
# relative path is relative to the file's folder, so a recipe works from any current folder; on
# the command line (--input, --output) relative paths are relative to the current folder.
PATH_KEYS = (
    ("input", "[]"), ("input_root",), ("output",),
    ("stages", "urlfilter", "domain_lists", "[]"), ("stages", "urlfilter", "url_lists", "[]"),
    ("stages", "decontaminate", "benchmarks", "[]", "path"),
    ("stages", "quality_classifier", "model"), ("stages", "quality_classifier", "models", "[]", "model"),
    ("stages", "tokenize", "tokenizer"), ("stages", "dedup_exact", "against", "[]"),
    ("stages", "dedup_minhash", "against", "[]"),
)


def _relative_to(value, folder: str):
    if not isinstance(value, str) or not value or "://" in value:
        return value
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(folder, value))


def resolve_paths(data, folder: str, keys=PATH_KEYS):
    """`data` (a config file's mapping) with the relative paths under `keys` made relative to `folder`."""
    def walk(node, path):
        if not path:
            return node
        head, rest = path[0], path[1:]
        if head == "[]":
            if not isinstance(node, list):
                return node
            return [_relative_to(v, folder) if not rest else walk(v, rest) for v in node]
        if not isinstance(node, dict) or head not in node:
            return node
        node = dict(node)
        node[head] = _relative_to(node[head], folder) if not rest else walk(node[head], rest)
        return node

    for key in keys:
        data = walk(data, key)
    return data


def load(path: str | list[str] | None) -> Config:
    """A config file, or several laid on each other in order (a recipe, then `thresher calibrate`'s
    per-language thresholds). Relative paths in a file are relative to its folder (PATH_KEYS)."""
    paths = [path] if isinstance(path, str) else list(path or [])
    data: Any = {}
    for p in paths:
        try:
            with open(p, encoding="utf-8") as fh:
                part = yaml.safe_load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if part is not None and not isinstance(part, dict):
            raise ConfigError(f"config file {p}: expected a mapping at the top level, got {type(part).__name__}")
        data = merge(data, resolve_paths(part or {}, os.path.dirname(os.path.abspath(p))))
    return from_dict(data)


def stage_list(value: str | None, what: str) -> list[str]:
    """``a,b`` -> the stage names, each checked against the registry (``what`` names the flag)."""
    if not value:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    known = stage_registry.names()
    for n in names:
        if n not in known:
            raise ConfigError(f"{what}: unknown stage '{n}' (stages: {', '.join(known)})")
    return names


def apply_overrides(cfg: Config, input: list[str] | None = None, output: str | None = None,
                    runner: str | None = None, workers: int | None = None, only: str | None = None,
                    skip: str | None = None, memory_mb: int | None = None,
                    dedup_against: list[str] | None = None) -> Config:
    """What `thresher run`'s flags (and a service job's fields) change in a loaded config, checked
    the same way as the config itself: ``only``/``skip`` name stages (``a,b``; ingest and writing
    always run). Returns `cfg`, changed in place and validated."""
    if input:
        cfg.input = list(input)
    if output:
        cfg.output = output
    if runner:
        cfg.runner.name = runner
    if workers is not None:
        cfg.runner.workers = workers
    if memory_mb is not None:
        cfg.runner.memory_mb = memory_mb
    if dedup_against:  # both dedup stages
        cfg.stages.dedup_exact.against = list(dedup_against)
        cfg.stages.dedup_minhash.against = list(dedup_against)
    chosen, skipped = stage_list(only, "--only"), stage_list(skip, "--skip")
    if chosen and skipped:
        raise ConfigError("--only and --skip cannot be used together")
    for stage in stage_registry.stages():
        if not stage.optional:
            continue
        section = getattr(cfg.stages, stage.name)
        if chosen:
            section.enabled = stage.name in chosen
        elif stage.name in skipped:
            section.enabled = False
    cfg.validate()
    return cfg
