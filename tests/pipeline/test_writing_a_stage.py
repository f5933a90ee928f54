"""A new filter is one file (tests/example_filter.py, docs/writing-a-stage.md's worked example) and its test:
registered by importing the file, it has a config section, a place in the recipe, a line in
`thresher stages`, stats keys and annotate columns, and it runs in a real pipeline."""

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from thresher.pipeline.cli import main
from thresher.pipeline.config import ConfigError, from_dict
from thresher.pipeline.engines.run import run
from thresher.transforms import stage as registry
from thresher.transforms.stage import Stage
from tests.stages import CURATION_FILTERS

ROOT = Path(__file__).resolve().parents[2]
LONG = "x" * 300


@pytest.fixture
def long_lines():
    """The example filter, registered for this test only (the registry is per process)."""
    module = importlib.import_module("tests.example_filter")
    if "long_lines" not in registry.names():
        importlib.reload(module)
    yield module
    registry.unregister("long_lines")


def test_the_docs_show_the_example_file_as_it_is():
    readme = (ROOT / "docs" / "writing-a-stage.md").read_text()
    block = re.search(r"```python\n(\"\"\"The `long_lines` stage.*?)```", readme, re.S).group(1)
    assert block == (ROOT / "tests" / "example_filter.py").read_text()


def test_registration_gives_config_order_and_listing(long_lines, capsys):
    names = registry.names()
    assert names.index("fineweb") < names.index("long_lines") < names.index("pii")
    cfg = from_dict({"stages": {"long_lines": {"max_line_chars": 200}}})
    assert cfg.stages.long_lines.max_line_chars == 200 and cfg.stages.long_lines.enabled
    assert yaml.safe_load(cfg.to_yaml())["stages"]["long_lines"] == {"enabled": True, "annotate": False,
                                                                    "languages": {}, "max_line_chars": 200}
    with pytest.raises(ConfigError, match=r"long_lines\.languages\.de\.enabled': not a numeric threshold"):
        from_dict({"stages": {"long_lines": {"languages": {"de": {"enabled": 1}}}}})
    with pytest.raises(ConfigError, match=r"stages\.long_lines\.max_line_chars': must be >= 1"):
        from_dict({"stages": {"long_lines": {"max_line_chars": 0}}})
    with pytest.raises(ConfigError, match=r"unknown config key 'stages\.long_lines\.max_chars'"):
        from_dict({"stages": {"long_lines": {"max_chars": 1}}})
    assert main(["stages"]) == 0
    assert re.search(r"^long_lines\s+drop documents with a line longer", capsys.readouterr().out, re.M)


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    texts = {"short": "A line.\nAnother line.", "long": f"A line.\n{LONG}\nThe end.", "edge": "y" * 200}
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in texts.items()))
    return path


def _config(tmp_path: Path, name: str, **long_lines):
    sections = {s: {"enabled": False} for s in ("extract", *CURATION_FILTERS, "dedup_exact", "dedup_minhash", "tokenize")}
    sections["long_lines"] = {"max_line_chars": 200, **long_lines}
    return from_dict({"input": [str(_corpus(tmp_path))], "output": str(tmp_path / name), "stages": sections})


@pytest.mark.slow
def test_the_new_filter_runs_in_a_pipeline(long_lines, tmp_path):
    stats = run(_config(tmp_path, "drop")).stats
    assert stats["run"]["stages"] == ["ingest", "long_lines"]
    assert stats["stages"]["long_lines"]["in"] == 3 and stats["stages"]["long_lines"]["kept"] == 2
    assert stats["stages"]["long_lines"]["dropped"] == {"line_too_long": 1}
    (rejected,) = pq.read_table(tmp_path / "drop" / "rejected").to_pylist()
    assert (rejected["id"], rejected["stage"], rejected["reason"]) == ("long", "long_lines", "line_too_long")
    assert json.loads(rejected["signals"])["long_lines_longest_line"] == 300
    kept = pq.read_table(tmp_path / "drop" / "documents").to_pylist()
    assert sorted(d["id"] for d in kept) == ["edge", "short"]

    stats = run(_config(tmp_path, "annotate", annotate=True)).stats
    assert stats["stages"]["long_lines"]["counters"] == {"would_drop:line_too_long": 1}
    docs = {d["id"]: d for d in pq.read_table(tmp_path / "annotate" / "documents").to_pylist()}
    assert docs["long"]["long_lines_longest_line"] == 300 and docs["long"]["long_lines_reason"] == "line_too_long"
    assert docs["edge"]["long_lines_longest_line"] == 200 and docs["edge"]["long_lines_reason"] is None


@dataclass
class ChunkParams:
    enabled: bool = True
    chunk: int = 3


def _build_chunked(params: ChunkParams, ctx):
    def fn(docs: list[dict]) -> list[dict]:
        for d in docs:
            d["batch_len"] = len(docs)
        return docs

    return fn


@pytest.fixture
def chunked():
    registry.register(Stage(name="chunked", order=76, params=ChunkParams, build=_build_chunked, batch="chunk",
                            description="records the size of the batch it saw", columns=(("batch_len", pa.int64()),)))
    yield
    registry.unregister("chunked")


@pytest.mark.slow
def test_a_batch_stage_gets_batches_of_its_own_size(chunked, tmp_path):
    """`batch` names the stage's own parameter (not the tokenizer's batch_docs, 256)."""
    off = {s.name: {"enabled": False} for s in registry.stages() if s.optional and s.name != "chunked"}
    cfg = from_dict({"input": [str(_corpus(tmp_path))], "output": str(tmp_path / "chunked"),
                     "stages": {**off, "chunked": {"chunk": 2}}})
    stats = run(cfg).stats
    assert stats["run"]["stages"] == ["ingest", "chunked"]
    sizes = sorted(d["batch_len"] for d in pq.read_table(tmp_path / "chunked" / "documents").to_pylist())
    assert sizes == [1, 2, 2]  # 3 documents in batches of at most 2
