"""`thresher ablate`: does a recipe give a better model? Curate each recipe, train the same model
with the same seed on the same number of tokens of each, and evaluate every checkpoint on one
held-out set none of them trained on (FineWeb's and DCLM's method, end to end).

The evaluation set is, by default, a held-out share of the raw input: the ``holdout`` stage puts
a seeded share of the extracted documents aside in every recipe's run (``keep: rest``) and an
evaluation run keeps only that share with every filter off (extracted, not filtered), tokenized
with the recipes' tokenizer. ``--eval-data`` names a run directory to evaluate on instead (needed
with ``--runs``, whose raw input is unknown).

Layout of ``--output``::

    runs/NAME/            each recipe's run directory (NAME: the recipe file's name)
    runs/NAME.recipe.yaml the configuration that run was made with (a rerun skips a run that matches)
    eval/                 the evaluation run
    train/NAME/           checkpoints and metrics.jsonl of the model trained on NAME
    ablation.json         the table's numbers, ablation.html the eval-loss curves

An interrupted ablation continues where it stopped: finished runs are skipped, training resumes
from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import subprocess
import sys

import yaml

from thresher.pipeline.config import Config, ConfigError, load


def _name(path: str, taken: set) -> str:
    base = os.path.basename(os.path.normpath(path))
    for ext in (".yaml", ".yml"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    name, i = base or "run", 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    taken.add(name)
    return name


def _flatten(d, prefix="") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def recipe_differences(configs: dict[str, dict]) -> dict[str, dict]:
    """Per recipe, the config keys whose values differ between the recipes (input and output aside)."""
    flat = {name: _flatten(c) for name, c in configs.items()}
    keys = sorted(set().union(*flat.values())) if flat else []
    differing = [k for k in keys if not k.startswith(("input", "output", "stages.holdout"))
                 and len({json.dumps(f.get(k), sort_keys=True) for f in flat.values()}) > 1]
    return {name: {k: f.get(k) for k in differing} for name, f in flat.items()}


def run_config(cfg: Config, marker: str) -> None:
    """Curate `cfg` with `thresher run` in its own process (tools never import Beam), then write
    its resolved config to `marker`: a rerun of the ablation skips a run whose marker matches."""
    pending = marker + ".pending"
    with open(pending, "w", encoding="utf-8") as fh:
        fh.write(cfg.to_yaml())
    proc = subprocess.run([sys.executable, "-m", "thresher.pipeline", "run", pending, "--overwrite", "--quiet"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ConfigError(f"curating {cfg.output} failed (exit {proc.returncode}):\n{tail}")
    os.replace(pending, marker)


def curate(recipes: list[str], inputs: list[str], out: str, holdout: float, seed: int) -> dict[str, str]:
    """Each recipe's run directory, curated unless a finished run of the same config is there."""
    runs, taken = {}, set()
    for recipe in recipes:
        name = _name(recipe, taken)
        cfg = load(recipe)
        if inputs:
            cfg.input = list(inputs)
        if not cfg.stages.tokenize.enabled:
            raise ConfigError(f"{recipe}: an ablation trains on the recipe's shards; enable stages.tokenize")
        cfg.output = os.path.join(out, "runs", name)
        h = cfg.stages.holdout
        h.enabled, h.fraction, h.seed, h.keep = True, holdout, seed, "rest"
        cfg.validate()
        runs[name] = cfg.output
        marker = cfg.output + ".recipe.yaml"
        if _same(marker, cfg.to_yaml()) and os.path.exists(os.path.join(cfg.output, "stats.json")):
            print(f"ablate: {name}: curated already ({cfg.output})", file=sys.stderr)
            continue
        print(f"ablate: {name}: curating {recipe} -> {cfg.output}", file=sys.stderr)
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        run_config(cfg, marker)
    return runs


def _same(path: str, text: str) -> bool:
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as fh:
        return fh.read() == text


def eval_run(first_recipe: str, inputs: list[str], out: str, holdout: float, seed: int) -> str:
    """The held-out share of the raw input, extracted but not filtered, tokenized like the recipes."""
    from thresher.transforms import stage as registry

    recipe = load(first_recipe)
    cfg = Config()
    cfg.input = list(inputs) if inputs else list(recipe.input)
    cfg.input_root = recipe.input_root
    for name in ("ingest", "extract", "tokenize"):  # read, extract and tokenize as the first recipe does
        for f in dataclasses.fields(getattr(recipe.stages, name)):
            setattr(getattr(cfg.stages, name), f.name, getattr(getattr(recipe.stages, name), f.name))
    for s in registry.stages():
        if s.optional and s.name not in ("extract", "holdout", "tokenize"):
            getattr(cfg.stages, s.name).enabled = False
    cfg.stages.tokenize.shard_tokens = min(cfg.stages.tokenize.shard_tokens, 1_000_000)
    h = cfg.stages.holdout
    h.enabled, h.fraction, h.seed, h.keep = True, holdout, seed, "held_out"
    cfg.output = os.path.join(out, "eval")
    cfg.validate()
    marker = cfg.output + ".recipe.yaml"
    if _same(marker, cfg.to_yaml()) and os.path.exists(os.path.join(cfg.output, "stats.json")):
        return cfg.output
    print(f"ablate: evaluation set: the held-out {holdout:.0%} of the input, extracted, not filtered -> {cfg.output}",
          file=sys.stderr)
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    run_config(cfg, marker)
    return cfg.output


def train_each(runs: dict[str, str], eval_dir: str, out: str, args) -> dict[str, str]:
    """Train the same model on every run for the same number of tokens; returns the output folders."""
    from thresher.pipeline.tools import training

    steps = max(1, args.tokens // (args.batch_size * args.seq_len * args.nproc))
    every = max(1, steps // args.evals)
    folders = {}
    for name, run_dir in runs.items():
        folder = os.path.join(out, "train", name)
        folders[name] = folder
        done = training.trained_steps(folder)
        if done is not None and done >= steps:
            print(f"ablate: {name}: trained already ({folder})", file=sys.stderr)
            continue
        flags = ["--data", run_dir, "--eval-data", eval_dir, "--model", args.model, "--objective", args.objective,
                 "--steps", str(steps), "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
                 "--seed", str(args.seed), "--eval-every", str(every), "--eval-batches", str(args.eval_batches),
                 "--ckpt-every", str(every), "--keep", "1", "--log-every", str(every), "--output", folder]
        if args.lr:
            flags += ["--lr", str(args.lr)]
        if done is not None:
            flags.append("--resume")
        elif os.path.exists(os.path.join(folder, "metrics.jsonl")):
            flags.append("--overwrite")  # killed before its first checkpoint: start it again
        launcher = training.launcher(args.nproc)
        print(f"ablate: {name}: training {args.model} ({args.objective}) for {steps} steps "
              f"({steps * args.batch_size * args.seq_len * args.nproc:,} tokens)", file=sys.stderr)
        proc = subprocess.run(launcher + flags, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise ConfigError(f"training on {name} failed (exit {proc.returncode}):\n{tail}")
    return folders


def _metrics(folder: str) -> tuple[dict[int, float], dict[int, float]]:
    """(train loss by step, eval loss by step); the last row of a step wins (a resumed run repeats some)."""
    train, evals = {}, {}
    with open(os.path.join(folder, "metrics.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if "eval_loss" in r:
                evals[r["step"]] = r["eval_loss"]
            elif "loss" in r:
                train[r["step"]] = r["loss"]
    return train, evals


def results(runs: dict[str, str], folders: dict[str, str], configs: dict[str, dict]) -> dict:
    from thresher.transforms.shards import read_manifest

    rows = []
    diffs = recipe_differences(configs)
    for name, run_dir in runs.items():
        with open(os.path.join(run_dir, "stats.json"), encoding="utf-8") as fh:
            stats = json.load(fh)
        m = read_manifest(os.path.join(run_dir, "shards"))
        train, evals = _metrics(folders[name])
        last = [train[s] for s in sorted(train)][-5:]
        rows.append({"recipe": name, "run": run_dir, "documents": stats["totals"]["kept"], "tokens": m.tokens,
                     "train_loss": sum(last) / len(last) if last else None,
                     "eval_loss": evals[max(evals)] if evals else None,
                     "eval_curve": [[s, evals[s]] for s in sorted(evals)], "differences": diffs.get(name, {})})
    return {"rows": rows}


def render_table(res: dict) -> str:
    rows = res["rows"]
    steps = sorted({s for r in rows for s, _ in r["eval_curve"]})
    shown = steps[-4:-1] if len(steps) > 1 else []
    w = max([len(r["recipe"]) for r in rows] + [6])
    head = (f"{'recipe':<{w}} {'documents':>10} {'tokens':>12} {'train loss':>11} {'eval loss':>10}"
            + "".join(f" {'eval@' + str(s):>10}" for s in shown))
    out = [head]
    for r in rows:
        curve = dict(r["eval_curve"])
        out.append(f"{r['recipe']:<{w}} {r['documents']:>10,} {r['tokens']:>12,} "
                   f"{_f(r['train_loss']):>11} {_f(r['eval_loss']):>10}" + "".join(f" {_f(curve.get(s)):>10}" for s in shown))
    best = min((r for r in rows if r["eval_loss"] is not None), key=lambda r: r["eval_loss"], default=None)
    if best is not None and len(rows) > 1:
        out.append(f"lowest eval loss: {best['recipe']}")
    return "\n".join(out)


def _f(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def render_html(res: dict, title: str) -> str:
    """One self-contained page: every variant's eval-loss curve on one plot, the table, and the
    recipes' differences."""
    rows = res["rows"]
    points = [p for r in rows for p in r["eval_curve"]]
    colors = ["#3b6ea8", "#c9822b", "#3f8f4f", "#b8333a", "#7a55a8", "#4d8f96", "#8a6d3b"]
    W, H, L, B, T, R = 900, 320, 60, 40, 10, 20
    svg = [f'<svg viewBox="0 0 {W} {H + B + T}" role="img" style="width:100%;height:auto">']
    if points:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = 0, max(xs)
        y0, y1 = min(ys), max(ys)
        pad = (y1 - y0) * 0.05 or 0.1
        y0, y1 = y0 - pad, y1 + pad

        def px(x):
            return L + (W - L - R) * (x - x0) / max(x1 - x0, 1)

        def py(y):
            return T + H - H * (y - y0) / (y1 - y0)

        svg.append(f'<line x1="{L}" y1="{T + H}" x2="{W - R}" y2="{T + H}" stroke="#888"/>'
                   f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + H}" stroke="#888"/>')
        for k in range(5):
            y = y0 + (y1 - y0) * k / 4
            svg.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end" font-size="11">{y:.3f}</text>')
            x = x0 + (x1 - x0) * k / 4
            svg.append(f'<text x="{px(x):.1f}" y="{T + H + 16}" text-anchor="middle" font-size="11">{x:.0f}</text>')
        svg.append(f'<text x="{(W + L) / 2}" y="{T + H + 34}" text-anchor="middle" font-size="12">training step</text>')
        svg.append(f'<text x="14" y="{T + H / 2}" transform="rotate(-90 14 {T + H / 2})" text-anchor="middle" '
                   f'font-size="12">eval loss</text>')
        for i, r in enumerate(rows):
            c = colors[i % len(colors)]
            pts = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in r["eval_curve"])
            svg.append(f'<polyline class="curve" fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
            for s, v in r["eval_curve"]:
                svg.append(f'<circle cx="{px(s):.1f}" cy="{py(v):.1f}" r="3" fill="{c}">'
                           f'<title>{html.escape(r["recipe"])} step {s}: {v:.4f}</title></circle>')
    svg.append("</svg>")
    legend = "".join(f'<span style="margin-right:1.5em"><i style="display:inline-block;width:14px;height:4px;'
                     f'background:{colors[i % len(colors)]};vertical-align:middle"></i> {html.escape(r["recipe"])}</span>'
                     for i, r in enumerate(rows))
    table = "".join(
        f"<tr><td>{html.escape(r['recipe'])}</td><td>{r['documents']:,}</td><td>{r['tokens']:,}</td>"
        f"<td>{_f(r['train_loss'])}</td><td>{_f(r['eval_loss'])}</td><td><code>"
        + html.escape("; ".join(f"{k}: {json.dumps(v)}" for k, v in r["differences"].items()) or "(none)")
        + "</code></td></tr>" for r in rows)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Thresher ablation: '
            f'{html.escape(title)}</title><style>body{{font:14px/1.45 system-ui,sans-serif;margin:1.5em 2em}}'
            f'table{{border-collapse:collapse;width:100%}}td,th{{padding:3px 8px;border-bottom:1px solid #ddd;'
            f'text-align:left;vertical-align:top}}</style></head><body><h1>Thresher ablation</h1>'
            f'<p>{html.escape(title)}</p><h2>Eval loss on the common held-out set</h2><div id="legend">{legend}</div>'
            f'<div id="curves">{"".join(svg)}</div><h2>Recipes</h2><table id="table"><tr><th>recipe</th>'
            f'<th>documents</th><th>tokens</th><th>train loss</th><th>eval loss</th><th>differs from the others in'
            f'</th></tr>{table}</table></body></html>')


def ablate(args) -> dict:
    # the configs it writes under --output are read from there: their paths must not be relative
    # (a config file's relative paths are relative to its folder)
    out = os.path.abspath(args.output)
    args.input = [p if "://" in p else os.path.abspath(p) for p in args.input or []]
    os.makedirs(out, exist_ok=True)
    if args.runs:
        if not args.eval_data:
            raise ConfigError("--runs needs --eval-data: the raw input of existing runs is not known, so no "
                              "held-out set can be cut from it")
        taken: set = set()
        runs = {_name(d, taken): d for d in args.runs}
        eval_dir = args.eval_data
    else:
        if len(args.recipes) < 1:
            raise ConfigError("name the recipes to compare (RECIPE.yaml ...) or existing runs (--runs DIR ...)")
        runs = curate(args.recipes, args.input or [], out, args.holdout, args.seed)
        eval_dir = args.eval_data or eval_run(args.recipes[0], args.input or [], out, args.holdout, args.seed)
    shas = {}
    from thresher.transforms.shards import read_manifest

    for name, d in {**runs, "evaluation set": eval_dir}.items():
        try:
            shas[name] = read_manifest(os.path.join(d, "shards")).tokenizer.get("sha256")
        except (OSError, ValueError) as e:
            raise ConfigError(f"{name}: {d} has no readable shards/manifest.json ({e})") from None
    if len(set(shas.values())) > 1:
        raise ConfigError("the runs were tokenized with different tokenizers: "
                          + ", ".join(f"{k} {str(v)[:12]}" for k, v in shas.items()))
    folders = train_each(runs, eval_dir, out, args)
    configs = {}
    for name, d in runs.items():
        with open(os.path.join(d, "config.yaml"), encoding="utf-8") as fh:
            configs[name] = yaml.safe_load(fh)
    res = results(runs, folders, configs)
    res.update(model=args.model, objective=args.objective, tokens=args.tokens, eval=eval_dir, seed=args.seed)
    with open(os.path.join(out, "ablation.json"), "w", encoding="utf-8") as fh:
        json.dump(res, fh, indent=2)
    title = (f"{args.model} ({args.objective}), {args.tokens:,} training tokens per recipe, seed {args.seed}; "
             f"evaluated on {eval_dir}")
    with open(os.path.join(out, "ablation.html"), "w", encoding="utf-8") as fh:
        fh.write(render_html(res, title))
    return res
