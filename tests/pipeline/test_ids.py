"""Document ids are unique across a run's inputs: files of the same name in different folders
(CC-MAIN-2024-10/000.parquet beside CC-MAIN-2024-18/000.parquet) get different sources and ids."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from thresher.pipeline.cli import main
from thresher.pipeline.config import ConfigError
from thresher.pipeline.engines.run import resolve_inputs
from thresher.transforms.document import input_root, source_names


def test_sources_are_paths_under_the_common_root():
    paths = ["/data/CC-MAIN-2024-10/000.parquet", "/data/CC-MAIN-2024-18/000.parquet"]
    assert input_root(paths) == "/data"
    assert source_names(paths) == {paths[0]: "CC-MAIN-2024-10/000.parquet", paths[1]: "CC-MAIN-2024-18/000.parquet"}
    assert source_names(["/data/crawl/a.warc.gz"]) == {"/data/crawl/a.warc.gz": "a.warc.gz"}  # one folder: the name
    gs = ["gs://b/crawl/x/1.jsonl", "gs://b/crawl/y/1.jsonl"]
    assert source_names(gs) == {gs[0]: "x/1.jsonl", gs[1]: "y/1.jsonl"}
    two_buckets = ["gs://a/1.jsonl", "gs://b/1.jsonl"]
    assert source_names(two_buckets) == {p: p for p in two_buckets}  # nothing shared: the whole URI
    assert source_names(paths, "/data/CC-MAIN-2024-10")[paths[1]] == paths[1]  # not under the root


def _two_folders(tmp_path: Path) -> Path:
    for folder, text in (("a", "The first text, from folder a."), ("b", "Another text, from folder b.")):
        (tmp_path / "data" / folder).mkdir(parents=True)
        (tmp_path / "data" / folder / "part-0.jsonl").write_text(json.dumps({"text": text}) + "\n")
    return tmp_path / "data"


def test_an_input_root_the_inputs_are_not_under_is_refused(tmp_path):
    data = _two_folders(tmp_path)
    files, skipped = resolve_inputs([str(data / "*" / "part-0.jsonl")], str(data))
    assert [f.source for f in files] == ["a/part-0.jsonl", "b/part-0.jsonl"] and skipped == []
    with pytest.raises(ConfigError, match="input_root.*is not under"):
        resolve_inputs([str(data / "*" / "part-0.jsonl")], str(data / "a"))


@pytest.mark.slow
def test_same_file_name_in_two_folders_gives_two_ids(tmp_path, capsys):
    data = _two_folders(tmp_path)
    out = tmp_path / "run"
    assert main(["run", "--input", str(data / "*" / "part-0.jsonl"), "--only", "dedup_exact", "--output", str(out),
                 "-q", "--no-progress"]) == 0
    docs = pq.read_table(out / "documents").to_pylist()
    assert len(docs) == 2 and len({d["id"] for d in docs}) == 2
    assert sorted(d["source"] for d in docs) == ["a/part-0.jsonl", "b/part-0.jsonl"]
    assert json.loads((out / "stats.json").read_text())["run"]["input_root"] == str(data)
    assert main(["inspect", str(out), "--verify"]) == 0


@pytest.mark.slow
def test_verify_fails_on_duplicate_ids(tmp_path, capsys):
    data = tmp_path / "docs.jsonl"  # user-supplied ids are kept as they are: these repeat
    data.write_text("".join(json.dumps({"id": "same", "text": t}) + "\n" for t in ("One text.", "Another text.")))
    out = tmp_path / "run"
    assert main(["run", "--input", str(data), "--only", "extract", "--output", str(out), "-q", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out), "--verify"]) == 1
    assert "1 id(s) appear more than once, e.g. same from docs.jsonl and docs.jsonl" in capsys.readouterr().err


def test_a_run_names_the_ids_it_kept_twice(tmp_path, capsys):
    data = tmp_path / "docs.jsonl"
    rows = [("a", "One text."), ("a", "Another text."), ("b", "A third."), ("c", "Fourth."), ("c", "Fifth."),
            ("c", "Sixth.")]
    data.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
    out = tmp_path / "run"
    assert main(["run", "--input", str(data), "--only", "dedup_exact", "--output", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "thresher: warning: 2 ids shared by 5 kept documents: 'a' (2), 'c' (3)" in err
    dup = json.loads((out / "stats.json").read_text())["duplicate_ids"]
    assert dup == {"ids": 2, "documents": 5, "examples": {"a": 2, "c": 3}}

    (tmp_path / "strict.yaml").write_text("write:\n  duplicate_ids: error\n")
    strict = tmp_path / "strict"
    assert main(["run", str(tmp_path / "strict.yaml"), "--input", str(data), "--only", "dedup_exact", "--output",
                 str(strict), "-q", "--no-progress"]) == 1
    assert "write.duplicate_ids is error: nothing was published" in capsys.readouterr().err
    assert not (strict / "documents").exists()


def test_unique_ids_give_no_warning(tmp_path, capsys):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": f"Text number {i}."}) + "\n" for i in "xyz"))
    assert main(["run", "--input", str(data), "--only", "dedup_exact", "--output", str(tmp_path / "r"),
                 "-q", "--no-progress"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads((tmp_path / "r" / "stats.json").read_text())["duplicate_ids"]["ids"] == 0
