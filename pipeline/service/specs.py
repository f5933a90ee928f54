"""A job as submitted, checked before it is queued: the recipe loads (YAML read safely, every
value validated by the config module, as for `thresher run`: one set of rules and errors), the
Beam options exist, and every path the job would read or write lies under one of the service's
roots. `JobSpec` is also the API's request body: FastAPI checks the field types from its
annotations, `check` everything else."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import yaml

from thresher.pipeline.config import ConfigError, apply_overrides, load, resolve_paths

MAX_RECIPE_BYTES = 256 * 1024
MAX_INPUTS, MAX_OPTIONS = 1000, 100
# Config keys that hold a path the job reads or writes (input, benchmarks' path, a model, a tokenizer)
PATH_KEYS = {"input", "input_root", "output", "path", "model", "tokenizer"}


@dataclass
class Roots:
    """Folders (or gs:// / s3:// prefixes) the service may read inputs from and write runs to."""

    paths: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.paths = [p if "://" in p else os.path.realpath(p) for p in self.paths]

    def check(self, path: str, what: str) -> str:
        if "://" in path:
            if any(p.endswith("/") and path.startswith(p) or path.startswith(p + "/") for p in self.paths if "://" in p):
                return path
            raise ConfigError(f"{what} {path!r} is not under the service's roots ({', '.join(self.paths)})")
        if "\x00" in path:
            raise ConfigError(f"{what}: not a path")
        # the part before any glob character is what a pattern can reach
        fixed = path
        for ch in "*?[":
            fixed = fixed.split(ch, 1)[0]
        real = os.path.realpath(fixed or ".")
        for root in self.paths:
            if "://" not in root and os.path.commonpath([real, root]) == root:
                return path
        raise ConfigError(f"{what} {path!r} is outside the service's roots ({', '.join(self.paths)}); "
                          "start thresher serve with --root to allow another folder")


@dataclass
class JobSpec:
    """A curation job: `thresher run` with these arguments."""

    name: str = ""  # a label for the runs list
    recipe: str = ""  # YAML text; "" : the built-in defaults
    inputs: list[str] = field(default_factory=list)  # "" : the recipe's, or the embedded sample
    output: str = ""  # "" : HOME/runs/<job id>
    runner: str = ""
    workers: int = 0
    only: str = ""
    skip: str = ""
    options: list[str] = field(default_factory=list)  # Beam pipeline options, --name=value
    overwrite: bool = False

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _paths_in(node, key: str | None = None):
    """(key, value) for every path-valued entry of a config tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths_in(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _paths_in(v, key)
    elif isinstance(node, str) and key in PATH_KEYS and node:
        yield key, node


def check(spec: JobSpec, roots: Roots) -> JobSpec:
    """The spec, checked (ConfigError says what is wrong, as the CLI would)."""
    if len(spec.name) > 200:
        raise ConfigError("name: at most 200 characters")
    if len(spec.recipe.encode()) > MAX_RECIPE_BYTES:
        raise ConfigError(f"recipe: larger than {MAX_RECIPE_BYTES // 1024} KB")
    if len(spec.inputs) > MAX_INPUTS or len(spec.options) > MAX_OPTIONS:
        raise ConfigError(f"inputs: at most {MAX_INPUTS}; options: at most {MAX_OPTIONS}")
    for opt in spec.options:
        if not opt.startswith("--") or "\n" in opt:
            raise ConfigError(f"options: {opt!r} is not a --name=value pipeline option")
    if spec.workers < 0 or spec.workers > 64:
        raise ConfigError("workers: between 1 and 64")
    paths = []
    with tempfile.TemporaryDirectory(prefix="thresher-recipe-") as tmp:
        configs = []
        if spec.recipe.strip():
            try:
                tree = yaml.safe_load(spec.recipe)
            except yaml.YAMLError as e:
                raise ConfigError(f"recipe: not valid YAML: {e}") from None
            if tree is not None and not isinstance(tree, dict):
                raise ConfigError("recipe: a YAML mapping of config sections (input, stages, write, ...)")
            # A submitted recipe has no folder of its own: its relative paths are the service's
            # (its working folder), written out absolute so that the job's copy means the same.
            absolute = resolve_paths(tree or {}, os.getcwd())
            if absolute != (tree or {}):
                spec.recipe = yaml.safe_dump(absolute, sort_keys=False, allow_unicode=True)
            path = os.path.join(tmp, "recipe.yaml")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(spec.recipe)
            configs.append(path)
        cfg = load(configs or None)
        apply_overrides(cfg, input=list(spec.inputs) or None, output=spec.output or None, runner=spec.runner or None,
                        workers=spec.workers or None, only=spec.only or None, skip=spec.skip or None)
        resolved = yaml.safe_load(cfg.to_yaml())
    resolved.pop("output", None)  # the job's output is checked below: the service names it
    paths += list(_paths_in(resolved))
    for key, value in paths:
        roots.check(value, key)
    if spec.output:
        roots.check(spec.output, "output")
    for pattern in cfg.input:
        if "://" not in pattern and not glob.glob(pattern, recursive=True):
            raise ConfigError(f"input {pattern!r} matches no file")
    spec.inputs = [p if "://" in p else os.path.abspath(p) for p in cfg.input]
    if spec.output and "://" not in spec.output:
        spec.output = os.path.abspath(spec.output)
    # Beam's option classes say which exist: read in a process of its own (the service never
    # imports Beam), only when a job names options
    bad = unknown_beam_flags(spec.options) if spec.options else []
    if bad:
        raise ConfigError(f"unknown option(s): {' '.join(bad)} (not a Beam pipeline option)")
    return spec


def unknown_beam_flags(options: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "thresher.pipeline.engines.runners", *options],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise ConfigError(f"options: could not be checked: {last}")
    return proc.stdout.split()
