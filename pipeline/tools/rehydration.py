"""dup_count across runs curated dump by dump (`--dedup-against`): what each kept document stands
for in all of them, as one run over every dump would count it.

A run curated against earlier ones drops its copies of their documents as `earlier_duplicate` and
writes, per earlier document, how many of its own documents went to it
(``dedup/earlier_copies/STAGE/*.parquet``: run, id, copies). An earlier document named there may be
one its run dropped later as a near duplicate (the MinHash index holds every document that stage
saw): its copies go to its cluster's representative (``dedup/clusters.parquet``).
"""

from __future__ import annotations

import glob
import os

import pyarrow.parquet as pq

from thresher.transforms.dedup import DUP_COUNT, EARLIER_COPIES


def _run_key(path: str) -> str:
    return os.path.abspath(path).rstrip("/")


def dup_counts(runs: list[str]) -> dict[tuple[str, str], int]:
    """``(run folder, id) -> documents it stands for`` for every kept document of `runs` (each
    curated against the ones before it), with the copies the later runs found added."""
    runs = [_run_key(r) for r in runs]
    totals: dict[tuple[str, str], int] = {}
    representative: dict[str, dict[str, str]] = {}
    for run in runs:
        table = pq.read_table(os.path.join(run, "documents"))
        counts = table.column(DUP_COUNT).to_pylist() if DUP_COUNT in table.column_names else [1] * table.num_rows
        for doc_id, n in zip(table.column("id").to_pylist(), counts):
            totals[(run, str(doc_id))] = int(n or 1)
        clusters = os.path.join(run, "dedup", "clusters.parquet")
        if os.path.exists(clusters):
            rows = pq.read_table(clusters, columns=["id", "cluster_id"]).to_pylist()
            representative[run] = {r["id"]: r["cluster_id"] for r in rows}
    for later in runs:
        for path in sorted(glob.glob(os.path.join(later, EARLIER_COPIES, "*", "*.parquet"))):
            for row in pq.read_table(path).to_pylist():
                run = _run_key(row["run"])
                if run not in runs:
                    continue  # a run not given here
                doc_id = representative.get(run, {}).get(row["id"], row["id"])
                totals[(run, doc_id)] = totals.get((run, doc_id), 1) + row["copies"]
    return totals
