"""The sources `thresher classifier train` reads: run directories and selections of them, JSONL, Parquet."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.pipeline.config import from_dict
from thresher.pipeline.engines.run import run
from thresher.pipeline.tools.texts import read_texts
from thresher.transforms.stage import ConfigError

PROSE = ("The river runs past the old mill, and in the evening the children walk along its bank to watch "
         "the boats come home. They talk about the day, the weather and the fish they hope to catch. ")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("texts")
    docs = [{"id": "long-1", "text": PROSE * 6}, {"id": "long-2", "text": (PROSE * 6).replace("river", "stream")},
            {"id": "short", "text": "Too short to keep."}]
    (tmp / "in.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    out = tmp / "run"
    run(from_dict({"input": [str(tmp / "in.jsonl")], "output": str(out), "stages": {
        **{name: {"enabled": False} for name in ("gopher_repetition", "c4", "fineweb", "dedup_minhash", "tokenize")}}}))
    return out


def test_a_run_its_languages_and_its_drops(run_dir):
    assert sorted(t[:20] for t in read_texts(str(run_dir))) == sorted([PROSE[:20], PROSE.replace("river", "stream")[:20]])
    assert len(read_texts(f"{run_dir}:lang=en")) == 2
    assert read_texts(f"{run_dir}:lang=de") == []
    assert read_texts(f"{run_dir}:reason=gopher_short_doc") == ["Too short to keep."]
    assert read_texts(f"{run_dir}:reason=gopher_quality.gopher_short_doc") == ["Too short to keep."]
    with pytest.raises(ConfigError, match="RUN:reason=REASON or RUN:lang=LANG"):
        read_texts(f"{run_dir}:url=x")


def test_jsonl_and_parquet_with_a_named_field(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"body": "one"}\n\n{"body": "two"}\n{"other": 1}\n')
    assert read_texts(str(tmp_path / "a.jsonl"), field="body") == ["one", "two"]
    pq.write_table(pa.table({"body": ["x", None, "y"]}), tmp_path / "b.parquet")
    assert read_texts(str(tmp_path / "b.parquet"), field="body") == ["x", "y"]
    with pytest.raises(ConfigError, match="no column 'text'"):
        read_texts(str(tmp_path / "b.parquet"))
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match="bad.jsonl:1: not a JSON object"):
        read_texts(str(tmp_path / "bad.jsonl"))
    with pytest.raises(ConfigError, match="no such file"):
        read_texts(str(tmp_path / "missing.jsonl"))
