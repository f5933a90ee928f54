"""The stage contract: a stage is declared once, in the module that implements it.

A `Stage` names everything the rest of Thresher needs to know about a stage: its parameters (a
dataclass whose fields are the config section ``stages.<name>``, with defaults and ``validate``),
its place in the recipe, how a worker builds its per-document callable, its drop reasons, the
columns it adds to ``documents/``, the folders it writes and how the driver finishes its statistics.
Config sections, ``thresher stages``, the recipe order and the stats keys come from the registry;
no code outside a stage's module compares its name.

Registration happens when the stage's module is imported. The built-in stages live in the modules
named in `BUILTIN` (every module of ``thresher.transforms.filters`` is imported, so a new filter is
one new file there); other packages add stages through the ``thresher.stages`` entry-point group.

Stages are pure: this module, like all of ``transforms/``, never imports Beam. A corpus-level stage
(dedup) names its Beam composite by import path (``"thresher.pipeline.graph.dedup_shuffle:MinHashDedup"``), which
only the pipeline resolves.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable


class ConfigError(ValueError):
    """A mistake in the run's configuration, named by its dotted key."""


def check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}': {message}")


@dataclass(frozen=True)
class Stage:
    name: str
    description: str  # one line, for `thresher stages`
    params: type  # a dataclass: the config section stages.<name>; `validate(path)` if it has one
    order: int  # stages run by ascending order
    # Builds the callable a worker runs, once per DoFn instance: (params, StageContext) -> callable.
    # The callable maps doc -> doc | Drop, or, with `batch`, a list of documents to a list of outcomes.
    build: Callable | None = None
    reasons: tuple[str, ...] = ()  # why it drops documents (Drop.reason)
    errors: tuple[str, ...] = ()  # why a record can be an error rather than a drop
    columns: Callable | tuple = ()  # ((name, pyarrow type), ...) added to documents/, or params -> that
    batch: str | None = None  # the params field holding the batch size: `build` then takes lists
    corpus: str | None = None  # "module:PTransform" over parked references (a corpus-level stage)
    prepare: Callable | None = None  # corpus stages: params -> (doc -> reference fields), run at parking
    writes: str | None = None  # "module:PTransform" run on the stage's output: writes an extra output
    outputs: tuple[str, ...] = ()  # run-directory folders the stage writes besides documents/, rejected/
    # params -> a resource the driver loads once and ships to workers. A large one (an n-gram index)
    # has `to_files(folder, write) -> handle`: the driver writes it into the run's staging folder and
    # the workers get the small handle, whose `load(open_file)` reads it, never the job's graph.
    resolve: Callable | None = None
    finish: Callable | None = None  # (stage's stats, params) -> problems; on the driver after the job
    partition: Callable | None = None  # params -> a column to partition documents/ by (Hive layout), or None
    optional: bool = True  # False: always runs (ingest), not selectable with --only/--skip
    dedup: bool = False  # removes duplicates: counted in inspect's dedup summary
    details: str = ""  # what it does, in full (Markdown): the README's stage table

    def enabled(self, params) -> bool:
        return not self.optional or getattr(params, "enabled", True)

    def document_columns(self, params) -> tuple:
        return tuple(self.columns(params)) if callable(self.columns) else tuple(self.columns)


@dataclass(frozen=True)
class StageContext:
    """What a stage's callable or composite gets besides its parameters."""

    config: Any  # the run's whole config (a stage that depends on another's switch reads it here)
    resource: Any = None  # what the stage's `resolve` returned on the driver (or its `to_files` handle)
    open_file: Callable | None = None  # path -> a binary file object (the pipeline's: local, gs://, s3://)

    def stage_enabled(self, name: str) -> bool:
        section = getattr(self.config.stages, name, None)
        return section is not None and getattr(section, "enabled", True)


_REGISTRY: dict[str, Stage] = {}
# Modules that hold the built-in stages; importing them registers them.
BUILTIN = ("thresher.transforms.ingest", "thresher.transforms.extract", "thresher.transforms.holdout",
           "thresher.transforms.filters", "thresher.transforms.decontaminate",
           "thresher.transforms.classifier", "thresher.transforms.dedup", "thresher.transforms.tokenization")
ENTRY_POINTS = "thresher.stages"
_loaded = False


def register(stage: Stage) -> Stage:
    """Adds a stage to the registry (re-registering the same name replaces it: a module reloaded)."""
    if not dataclasses.is_dataclass(stage.params):
        raise TypeError(f"stage {stage.name}: params must be a dataclass")
    if not stage.name.isidentifier():
        raise ValueError(f"stage name {stage.name!r} must be an identifier (it is a config key)")
    other = next((s for s in _REGISTRY.values() if s.order == stage.order and s.name != stage.name), None)
    if other is not None:
        raise ValueError(f"stage {stage.name}: order {stage.order} is taken by {other.name}")
    _REGISTRY[stage.name] = stage
    return stage


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN:
        importlib.import_module(module)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINTS):
        ep.load()


def stages() -> tuple[Stage, ...]:
    """Every registered stage, in recipe order."""
    _load()
    return tuple(sorted(_REGISTRY.values(), key=lambda s: s.order))


def get(name: str) -> Stage:
    _load()
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    return tuple(s.name for s in stages())


def resolve_object(path: str):
    """``"package.module:Name"`` -> the object (how corpus stages name their Beam composites)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def unregister(name: str) -> None:
    """Removes a stage (a test's own, registered for that test only)."""
    _REGISTRY.pop(name, None)
