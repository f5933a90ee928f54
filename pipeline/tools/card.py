"""``README.md`` of a run directory: a Hugging Face dataset card, so ``datasets.load_dataset(RUN_DIR)``
loads the curated documents (and ``load_dataset(RUN_DIR, "rejected")`` the drops), and a run pushed
to the Hub as it is reads the same way.

Without the card, ``load_dataset`` sweeps every Parquet file of the folder into one table: the
documents, the rejected rows and ``dedup/clusters.parquet`` have different columns and it fails.
The card's ``configs`` name one output each. ``datasets`` gives every config of a dataset the
builder of the first (Parquet here), so the token shards, Arrow IPC streams, are not a config:
``datasets.Dataset.from_file`` maps them directly (the card says how). ``datasets`` cannot load
an output without rows, so a config is listed only when its output has some.

The card depends only on the run's config and counts, never on timings: the same run writes the
same bytes.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

FILENAME = "README.md"


def _version() -> str:
    try:
        return version("thresher")
    except PackageNotFoundError:
        return "unknown"


def dataset_card(stats: dict, folders: tuple[str, ...]) -> str:
    """The card for a run with these `stats` (stats.json) whose data folders are `folders`."""
    out = stats.get("output", {})
    totals = stats.get("totals", {})
    run = stats.get("run", {})
    configs = [("documents", "documents/**/*.parquet", out.get("documents", 0))]
    configs.append(("rejected", "rejected/*.parquet", out.get("rejected", 0)))
    if "dedup" in folders:
        configs.append(("clusters", "dedup/clusters.parquet", out.get("clusters_rows", 0)))
    listed = [c for c in configs if c[2] > 0] or configs[:1]
    yaml = ["---", "configs:"]
    for i, (name, pattern, _) in enumerate(listed):
        yaml += [f"- config_name: {name}", "  data_files:", "  - split: train", f'    path: "{pattern}"']
        if i == 0:
            yaml.append("  default: true")
    yaml.append("---")
    inputs = run.get("inputs", [])
    lines = [
        "# Thresher run",
        "",
        f"Curated by Thresher {_version()} from {totals.get('read', 0):,} input records in {len(inputs):,} "
        f"file{'s' if len(inputs) != 1 else ''}: {totals.get('kept', 0):,} documents kept, "
        f"{totals.get('dropped', 0):,} dropped, {totals.get('errored', 0):,} errored.",
        "",
        f"Stages: {', '.join(run.get('stages', [])) or '(none)'}. `config.yaml` is the full configuration "
        "(`thresher run config.yaml` reruns it), `stats.json` accounts for every input record, and "
        "`thresher inspect` reports on this folder.",
        "",
        "| folder | rows | what |",
        "| --- | ---: | --- |",
        f"| `documents/` | {out.get('documents', 0):,} | the curated documents (Parquet) |",
        f"| `rejected/` | {out.get('rejected', 0):,} | dropped documents and unreadable spans: stage, reason, "
        "detail, signals |",
    ]
    if "dedup_minhash" in run.get("stages", []):
        lines.append(f"| `dedup/clusters.parquet` | {out.get('clusters_rows', 0):,} | near-duplicate clusters: id, "
                     "cluster_id |")
    if "dedup_exact" in run.get("stages", []):
        lines.append(f"| `dedup/index/` | {out.get('index_exact_rows', 0):,} | exact keys and ids (and MinHash band keys, "
                     "signatures and shingles) for a later run's `--dedup-against` |")
    if "shards" in folders:
        lines.append(f"| `shards/` | {out.get('shard_rows', 0):,} | {out.get('shard_tokens', 0):,} tokens in "
                     f"{out.get('shards', 0):,} Arrow IPC stream shards, with `manifest.json` |")
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "import glob, datasets",
        'run = "path/to/this/folder"',
        f'{listed[0][0]} = datasets.load_dataset(run, split="train")  # the default config',
    ]
    lines += [f'{name} = datasets.load_dataset(run, "{name}", split="train")' for name, _, _ in listed[1:]]
    if "shards" in folders:
        lines += [
            "# the token shards, memory-mapped, nothing copied:",
            'shards = datasets.concatenate_datasets(',
            '    [datasets.Dataset.from_file(f) for f in sorted(glob.glob(f"{run}/shards/*.arrow"))])',
        ]
    lines += ["```", ""]
    return "\n".join(yaml + [""] + lines)
