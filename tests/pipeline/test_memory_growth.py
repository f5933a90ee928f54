"""The local runner's memory does not grow with the corpus (issue: a million documents on one
machine). The dedup stages run on 2,000 and on 20,000 generated documents with two worker
processes; the runner process's peak may grow by at most GROWTH_BYTES a document between them.

Measured (docs/benchmarks.md, Scale): before the groupings went to disk the runner grew by ~6.8 KB
a document (this test would see ~120 MB more at 20k); since, its peak is the same at 10k and 100k
documents within a few MB. The bound leaves room for the sampler's noise and nothing for a
collection of documents or band keys held in the runner again.
"""

import json
import random
import subprocess
import sys

import pytest

GROWTH_BYTES = 1_500  # a document, runner process, between the two sizes

PEAKS = r"""
import json, resource, sys
from thresher.pipeline.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "runner_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "worker_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _corpus(path, n: int, seed: int = 0) -> None:
    """n documents of a few KB: new texts, exact copies and near-duplicates of earlier ones."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                  for _ in range(5000)]
    made = []
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            kind = i % 10
            if made and kind == 0:
                text = rng.choice(made)
            elif made and kind < 4:
                words = rng.choice(made).split(" ")
                for j in rng.sample(range(len(words)), max(1, len(words) // 100)):
                    words[j] = rng.choice(vocabulary)
                text = " ".join(words)
            else:
                text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(300, 700)))
            made = (made + [text])[-2000:]
            fh.write(json.dumps({"id": f"doc-{i:06d}", "text": text}) + "\n")


def _peaks(tmp_path, n: int) -> dict:
    corpus = tmp_path / f"corpus-{n}.jsonl"
    _corpus(corpus, n)
    out = subprocess.run([sys.executable, "-c", PEAKS, "run", "--input", str(corpus), "--output",
                          str(tmp_path / f"out-{n}"), "--only", "dedup_exact,dedup_minhash", "--workers", "2",
                          "--no-progress", "-q"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    peaks = json.loads(out.stdout.strip().splitlines()[-1])
    assert peaks["code"] == 0
    stats = json.loads((tmp_path / f"out-{n}" / "stats.json").read_text())
    assert stats["totals"]["read"] == n and stats["totals"]["kept"] < n * 0.75  # the copies went
    return peaks


@pytest.mark.slow
def test_the_runner_does_not_grow_with_the_corpus(tmp_path):
    small, large = _peaks(tmp_path, 2_000), _peaks(tmp_path, 20_000)
    growth = (large["runner_kb"] - small["runner_kb"]) * 1024 / 18_000
    assert growth <= GROWTH_BYTES, (
        f"the runner's peak grew {growth:,.0f} bytes a document ({small['runner_kb'] // 1024} MB at 2,000 "
        f"documents, {large['runner_kb'] // 1024} MB at 20,000): something holds documents or their keys in it")
