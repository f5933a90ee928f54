"""stats.json: the run's funnel, assembled from the counts that travelled with the data."""

from __future__ import annotations


class AccountingError(RuntimeError):
    pass


DUPLICATE_EXAMPLES = 20  # ids kept more than once that stats.json names (and each bundle counts by name)


def assemble(counts: dict, stage_names: list[str]) -> dict:
    """Counts keyed ``(stage, kind[, reason])`` -> the stats.json document."""
    stages: dict[str, dict] = {}
    for name in stage_names:
        dropped = {k[2]: int(v) for k, v in counts.items() if k[0] == name and k[1] == "dropped"}
        errored = {k[2]: int(v) for k, v in counts.items() if k[0] == name and k[1] == "errored"}
        stages[name] = {
            "in": int(counts.get((name, "in"), 0)),
            "kept": int(counts.get((name, "kept"), 0)),
            "dropped": dict(sorted(dropped.items())),
            "errored": dict(sorted(errored.items())),
            "seconds": round(float(counts.get((name, "seconds"), 0.0)), 3),
        }
        info = {k[2]: v for k, v in counts.items() if k[0] == name and k[1] == "info"}
        sizes = {int(k[2]): int(v) for k, v in counts.items() if k[0] == name and k[1] == "cluster_size"}
        changes = {int(k[2]): int(v) for k, v in counts.items() if k[0] == name and k[1] == "cc_changes"}
        if info:
            stages[name].update(sorted(info.items()))
        counters = {k[2]: int(v) for k, v in counts.items() if k[0] == name and k[1] == "counter"}
        if counters:
            stages[name]["counters"] = dict(sorted(counters.items()))
        if sizes:
            stages[name]["cluster_sizes"] = {str(k): v for k, v in sorted(sizes.items())}
        if changes:
            stages[name]["edges_changed_per_round"] = {str(k): v for k, v in sorted(changes.items())}
    first = stages[stage_names[0]] if stage_names else {"in": 0}
    last = stages[stage_names[-1]] if stage_names else {"kept": 0}
    by_reason = {}
    for name, s in stages.items():
        for kind in ("dropped", "errored"):
            for reason, n in s[kind].items():
                by_reason[f"{name}.{reason}"] = n
    return {
        "stages": stages,
        "totals": {
            "read": first["in"],
            "kept": last["kept"],
            "dropped": sum(sum(s["dropped"].values()) for s in stages.values()),
            "errored": sum(sum(s["errored"].values()) for s in stages.values()),
            "by_reason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        },
        "input": {
            "files": int(counts.get(("input", "files"), 0)),
            "bytes": int(counts.get(("input", "bytes"), 0)),
        },
        "output": {
            "documents": int(counts.get(("output", "documents"), 0)),
            "document_files": int(counts.get(("output", "documents_files"), 0)),
            "rejected": int(counts.get(("output", "rejected"), 0)),
            "rejected_files": int(counts.get(("output", "rejected_files"), 0)),
            "shards": int(counts.get(("output", "shards"), 0)),
            "shard_rows": int(counts.get(("output", "shard_rows"), 0)),
            "shard_tokens": int(counts.get(("output", "shard_tokens"), 0)),
            "clusters_rows": int(counts.get(("output", "clusters"), 0)),
            "index_exact_rows": int(counts.get(("output", "index_exact"), 0)),
            "index_minhash_rows": int(counts.get(("output", "index_minhash"), 0)),
        },
        "duplicate_ids": {
            "ids": int(counts.get(("output", "duplicate_ids"), 0)),
            "documents": int(counts.get(("output", "duplicate_id_documents"), 0)),
            "examples": dict(sorted((k[2], int(v)) for k, v in counts.items()
                                    if k[:2] == ("output", "duplicate_id"))[:DUPLICATE_EXAMPLES]),
        },
    }


def accounting_problems(stats: dict) -> list[str]:
    """Every broken identity: per stage in = kept + dropped + errored; stages chain; kept = rows written."""
    problems = []
    prev = None
    for name, s in stats["stages"].items():
        out = s["kept"] + sum(s["dropped"].values()) + sum(s["errored"].values())
        if s["in"] != out:
            problems.append(f"stage {name}: in {s['in']} != kept + dropped + errored {out}")
        if prev is not None and s["in"] != prev[1]:
            problems.append(f"stage {name}: in {s['in']} != kept {prev[1]} of stage {prev[0]}")
        prev = (name, s["kept"])
    if stats["totals"]["kept"] != stats["output"]["documents"]:
        problems.append(f"kept {stats['totals']['kept']} != rows written to documents/ {stats['output']['documents']}")
    return problems  # stages add their own checks (Stage.finish)


def duplicate_ids_line(stats: dict) -> str | None:
    """One line naming the ids that more than one kept document has, or None."""
    dup = stats.get("duplicate_ids") or {}
    if not dup.get("ids"):
        return None
    named = ", ".join(f"{i!r} ({n})" for i, n in list(dup["examples"].items())[:5])
    more = ", ..." if dup["ids"] > min(5, len(dup["examples"])) else ""
    return (f"{dup['ids']:,} id{'s' if dup['ids'] != 1 else ''} shared by {dup['documents']:,} kept documents: "
            f"{named}{more} (the input gives these ids; stats.json lists up to {DUPLICATE_EXAMPLES})")
