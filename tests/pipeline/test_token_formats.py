"""Token shards in other trainers' formats (stages.tokenize.formats, `thresher export-shards`),
read back with those trainers' own readers: megatron-core's IndexedDataset and GPTDataset, and
numpy with llm.c's documented header."""

import json
import os
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from thresher.pipeline.cli import main
from thresher.pipeline.config import Config, ConfigError, from_dict
from thresher.pipeline.engines.run import run
from thresher.transforms.shards import open_shard, read_manifest, token_arrays, verify

pytestmark = pytest.mark.slow


def run_sample(out: Path, workers: int = 1, **tokenize) -> Path:
    cfg = Config()
    cfg.output = str(out)
    cfg.runner.workers = workers
    cfg.stages.tokenize.shard_tokens = 20_000
    for k, v in tokenize.items():
        setattr(cfg.stages.tokenize, k, v)
    return Path(run(cfg).output)


@pytest.fixture(scope="module")
def every_format(tmp_path_factory) -> Path:
    return run_sample(tmp_path_factory.mktemp("formats") / "run", formats=["flat", "megatron", "arrow"])


def arrow_documents(run_dir: Path) -> list[list[np.ndarray]]:
    """Each shard's documents' tokens, from the Arrow shards."""
    out = []
    for s in read_manifest(str(run_dir / "shards")).shards:
        flat, offsets = token_arrays(open_shard(str(run_dir / "shards" / s.file)))
        out.append([np.asarray(flat[offsets[i]:offsets[i + 1]]) for i in range(len(offsets) - 1)])
    return out


def megatron():
    pytest.importorskip("megatron.core")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Transformer Engine and Apex are not installed"
        from megatron.core.datasets import gpt_dataset, indexed_dataset
        from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    return indexed_dataset, gpt_dataset, BlendedMegatronDatasetBuilder


def test_every_format_is_listed_verified_and_agrees_with_arrow(every_format, capsys):
    m = read_manifest(str(every_format / "shards"))
    assert m.formats == ["arrow", "megatron", "flat"] and m.version == 3
    assert len(m.shards) >= 5
    for s in m.shards:
        names = sorted(f["file"] for f in s.files)
        stem = f"shard-{s.index:05d}"
        assert names == [f"flat/{stem}.bin", f"megatron/{stem}.bin", f"megatron/{stem}.idx", f"{stem}.arrow"]
        assert all(f["tokens"] == s.tokens for f in s.files)
    assert verify(str(every_format / "shards")) == []
    assert main(["inspect", str(every_format), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "Verify: OK" in out and "megatron" in out and "flat" in out
    prefixes = [str(every_format.resolve() / "shards" / "megatron" / f"shard-{s.index:05d}") for s in m.shards]
    assert "Megatron-LM: --data-path " + " ".join(f"{s.tokens} {p}" for s, p in zip(m.shards, prefixes)) in out


def test_megatron_core_reads_our_tokens_and_document_boundaries(every_format):
    indexed_dataset, _, _ = megatron()
    m = read_manifest(str(every_format / "shards"))
    for s, docs in zip(m.shards, arrow_documents(every_format)):
        ds = indexed_dataset.IndexedDataset(str(every_format / "shards" / "megatron" / f"shard-{s.index:05d}"))
        assert len(ds) == len(docs) == s.rows
        assert list(ds.document_indices) == list(range(s.rows + 1))  # one sequence per document
        assert ds.index.dtype == np.uint16  # the sample's vocabulary (8,453) fits
        for i, doc in enumerate(docs):
            assert np.array_equal(ds[i], doc)
            assert doc[-1] == m.tokenizer["eos_id"]


def test_megatron_gpt_dataset_builds_samples_from_our_files(every_format, tmp_path):
    """GPTDataset (CPU, one process) over the blend inspect prints: each sample is the window of
    its documents' token stream that Megatron's own sample index says it is."""
    import shutil

    _, gpt_dataset, builder = megatron()
    m = read_manifest(str(every_format / "shards"))
    docs = arrow_documents(every_format)
    # without a process group Megatron keeps its sample indexes beside the prefixes: a copy
    shutil.copytree(every_format / "shards" / "megatron", tmp_path / "megatron")
    tok = types.SimpleNamespace(eod=m.tokenizer["eos_id"], vocab_size=m.tokenizer["vocab_size"], pad=-1,
                                unique_identifiers={"class": "thresher-test"})
    seq = 128
    prefixes = [str(tmp_path / "megatron" / f"shard-{s.index:05d}") for s in m.shards]
    cfg = gpt_dataset.GPTDatasetConfig(
        random_seed=7, sequence_length=seq, blend=(prefixes, [float(s.tokens) for s in m.shards]), split="1,0,0",
        tokenizer=tok, reset_position_ids=False, reset_attention_mask=False, eod_mask_loss=False, path_to_cache=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blended, _, _ = builder(gpt_dataset.GPTDataset, [200, 0, 0], lambda: True, cfg).build()
    assert len(blended) >= 200
    checked = 0
    for g in range(0, 200, 7):
        d, i = int(blended.dataset_index[g]), int(blended.dataset_sample_index[g])
        ds = blended.datasets[d]
        shard_docs = docs[d]
        sample = ds[i]
        # Megatron's own bookkeeping: which (shuffled) documents and offsets make sample i
        start_doc, start_off = ds.sample_index[ds.shuffle_index[i]]
        stream = np.concatenate([shard_docs[int(j)] for j in ds.document_index[start_doc:start_doc + 200]])
        want = stream[start_off:start_off + seq + 1].astype(np.int64)
        got = np.concatenate([sample["tokens"].numpy(), sample["labels"].numpy()[-1:]])
        assert np.array_equal(got, want), (g, d, i)
        checked += 1
    assert checked == 29


def test_flat_files_read_with_the_documented_llmc_header(every_format):
    m = read_manifest(str(every_format / "shards"))
    for s, docs in zip(m.shards, arrow_documents(every_format)):
        path = every_format / "shards" / "flat" / f"shard-{s.index:05d}.bin"
        header = np.fromfile(path, dtype=np.int32, count=256)  # llm.c: 256 int32s, then uint16 tokens
        assert (header[0], header[1], header[2]) == (20240520, 1, s.tokens) and not header[3:].any()
        tokens = np.memmap(path, dtype=np.uint16, mode="r", offset=1024)  # nanoGPT's bare uint16 after it
        assert np.array_equal(tokens, np.concatenate(docs))


def test_formats_are_byte_identical_across_workers_and_export_shards_writes_the_same_files(every_format, tmp_path,
                                                                                          capsys):
    arrow_only = run_sample(tmp_path / "arrow", workers=2)
    assert read_manifest(str(arrow_only / "shards")).formats == ["arrow"]
    assert not (arrow_only / "shards" / "megatron").exists()
    out = tmp_path / "exported"
    assert main(["export-shards", str(arrow_only), "--format", "megatron", "--format", "flat",
                 "--output", str(out)]) == 0
    assert "Megatron-LM: --data-path" in capsys.readouterr().out
    for sub in ("megatron", "flat"):
        ours = sorted(p.name for p in (out / sub).iterdir())
        assert ours == sorted(p.name for p in (every_format / "shards" / sub).iterdir())
        for name in ours:
            assert (out / sub / name).read_bytes() == (every_format / "shards" / sub / name).read_bytes(), name
    exported = read_manifest(str(out))
    assert exported.formats == ["megatron", "flat"] and verify(str(out)) == []
    # the Arrow shards of the one-worker run with every format and the two-worker Arrow-only run
    for s in exported.shards:
        assert (arrow_only / "shards" / f"shard-{s.index:05d}.arrow").read_bytes() == \
            (every_format / "shards" / f"shard-{s.index:05d}.arrow").read_bytes()
    # a folder that is not empty is refused, naming it
    assert main(["export-shards", str(arrow_only), "--format", "flat", "--output", str(out)]) == 2
    assert str(out) in capsys.readouterr().err


def test_verify_names_a_format_whose_tokens_disagree(every_format, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(every_format / "shards", broken)
    victim = broken / "megatron" / "shard-00001.bin"
    data = np.fromfile(victim, dtype=np.uint16)
    data[len(data) // 2] = (int(data[len(data) // 2]) + 1) % 8000
    data.tofile(victim)
    problems = verify(str(broken))
    assert problems == ["megatron/shard-00001.bin: sha256 does not match the manifest"]
    # the manifest made to agree with the changed file: the tokens are then compared across formats
    m = json.loads((broken / "manifest.json").read_text())
    import hashlib
    for f in m["shards"][1]["files"]:
        if f["file"] == "megatron/shard-00001.bin":
            f["sha256"] = hashlib.sha256(victim.read_bytes()).hexdigest()
    (broken / "manifest.json").write_text(json.dumps(m))
    assert verify(str(broken)) == ["megatron/shard-00001.bin: tokens differ from the arrow shard's"]
    os.remove(broken / "flat" / "shard-00002.bin")
    assert "flat/shard-00002.bin: missing" in verify(str(broken))


def test_a_megatron_only_run_is_inspected_and_a_bad_format_is_a_config_error(tmp_path, capsys):
    only = run_sample(tmp_path / "megatron", formats=["megatron"])
    assert not list((only / "shards").glob("*.arrow"))
    assert main(["inspect", str(only), "--verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verify"]["ok"] and list(report["shards"]["formats"]) == ["megatron"]
    assert report["shards"]["doc_tokens"]["max"] > 0
    with pytest.raises(ConfigError, match="stages.tokenize.formats.*'parquet' is not one of arrow, megatron, flat"):
        from_dict({"stages": {"tokenize": {"formats": ["arrow", "parquet"]}}})


def test_the_shard_order_is_a_function_of_the_seed_and_ids_and_spreads_each_source(tmp_path):
    """DCLM's global shuffle: two sources' documents interleave in every shard, and the order is the
    same whichever order the inputs come in."""
    import random

    rng = random.Random(5)
    words = [f"w{i}" for i in range(3000)]
    for name in ("a", "b"):
        with open(tmp_path / f"{name}.jsonl", "w") as fh:
            for i in range(300):
                text = " ".join(rng.choice(words) for _ in range(rng.randint(40, 200)))
                fh.write(json.dumps({"id": f"{name}-{i}", "text": text}) + "\n")
    (tmp_path / "c.yaml").write_text("stages:\n  tokenize:\n    shard_tokens: 20000\n    formats: [arrow, megatron]\n")
    outs = []
    for order in (("a", "b"), ("b", "a")):
        out = tmp_path / "".join(order)
        inputs = sum((["--input", str(tmp_path / f"{n}.jsonl")] for n in order), [])
        assert main(["run", str(tmp_path / "c.yaml"), *inputs, "--only", "tokenize", "--output", str(out),
                     "--no-progress", "-q"]) == 0
        outs.append(out)
    m = read_manifest(str(outs[0] / "shards"))
    assert len(m.shards) >= 5
    for s in m.shards:
        for sub in (s.file, f"megatron/shard-{s.index:05d}.bin"):
            assert (outs[0] / "shards" / sub).read_bytes() == (outs[1] / "shards" / sub).read_bytes()
        ids = open_shard(str(outs[0] / "shards" / s.file)).column("id").to_pylist()
        sources = [i[0] for i in ids]
        assert {"a", "b"} == set(sources)  # every shard holds both sources
        switches = sum(x != y for x, y in zip(sources, sources[1:]))
        assert switches >= len(ids) / 4, sources  # interleaved, not two blocks
