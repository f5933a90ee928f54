"""docs/learned-curation.md's recipes run as written: each bash block is run by bash in a fresh folder
whose `crawl/` holds the embedded sample, with this install's `thresher` on the PATH."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import yaml

from thresher.pipeline.engines.run import embedded_sample

pytestmark = pytest.mark.slow
DOC = (Path(__file__).resolve().parents[2] / "docs" / "learned-curation.md").read_text()


def _block(containing: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", DOC, re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"one bash block of docs/learned-curation.md has {containing!r}"
    return found[0]


def _run_as_written(script: str, folder: Path) -> None:
    (folder / "crawl").mkdir(parents=True)
    (folder / "crawl" / "sample.warc.gz").symlink_to(embedded_sample())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]


def _kept(run: Path) -> int:
    return ds.dataset(str(run / "documents"), format="parquet", partitioning="hive").count_rows()


def test_the_learned_curation_recipe(tmp_path):
    pytest.importorskip("floret")
    _run_as_written(_block("classifier train"), tmp_path)
    assert sum(1 for _ in open(tmp_path / "reference.jsonl")) > 100
    assert (tmp_path / "quality.bin").stat().st_size > 0
    assert 0 < _kept(tmp_path / "curated") < _kept(tmp_path / "raw")


def test_the_calibration_recipe_and_min_docs(tmp_path):
    _run_as_written(_block("thresher calibrate"), tmp_path)
    assert _kept(tmp_path / "curated") > 0
    # with the default --min-docs only the reference language has enough documents: nothing moves
    assert not (yaml.safe_load((tmp_path / "thresholds.yaml").read_text()) or {}).get("stages")
    # as the page says, --min-docs 20 calibrates the sample's larger languages
    done = subprocess.run([sys.executable, "-m", "thresher.pipeline", "calibrate", "annotated", "--reference", "en",
                           "--min-docs", "20", "--output", "small.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    moved = yaml.safe_load((tmp_path / "small.yaml").read_text())["stages"]
    assert {lang for f in moved.values() for lang in f["languages"]} - {"en"}
