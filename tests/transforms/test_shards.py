import json
import os

import numpy as np
import pyarrow as pa
import pytest

from thresher.transforms.shards import (Manifest, ShardInfo, encode_shard, open_shard, read_flat, read_manifest,
                               read_megatron, sha256_file, shard_name, token_arrays, verify, write_shard)


def rows(n=50, vocab=1000, seed=0):
    rng = np.random.default_rng(seed)
    return [{"id": f"doc{i}", "url": f"http://x/{i}", "lang": "en", "source": "s.warc.gz",
             "tokens": rng.integers(0, vocab, size=int(rng.integers(1, 300)), dtype=np.uint16)} for i in range(n)]


def write_dir(folder, shards_rows, dtype="uint16", vocab=1000):
    infos = []
    for i, rs in enumerate(shards_rows):
        data = encode_shard(rs, dtype)
        (folder / shard_name(i)).write_bytes(data)
        infos.append(ShardInfo(shard_name(i), len(rs), int(sum(len(r["tokens"]) for r in rs)), len(data),
                               sha256_file(str(folder / shard_name(i)))))
    m = Manifest({"name": "t", "sha256": "x", "vocab_size": vocab, "eos_token": "<e>", "eos_id": 0}, dtype, 0, 1000, infos)
    (folder / "manifest.json").write_text(m.to_json())
    return m


def test_round_trip_zero_copy(tmp_path):
    rs = rows()
    (tmp_path / "s.arrow").write_bytes(encode_shard(rs, "uint16"))
    table = open_shard(str(tmp_path / "s.arrow"))
    flat, offsets = token_arrays(table)
    assert flat.dtype == np.uint16 and not flat.flags.owndata  # a view of the mapped file
    for i, r in enumerate(rs):
        assert np.array_equal(flat[offsets[i]:offsets[i + 1]], r["tokens"])
    assert table.column("id").to_pylist() == [r["id"] for r in rs]
    assert table.schema.metadata[b"thresher.format"] == b"thresher-shards/2"


def test_uint32_shards(tmp_path):
    rs = [{"id": "a", "url": None, "lang": None, "source": "s", "tokens": np.array([70_000, 1], dtype=np.uint32)}]
    (tmp_path / "s.arrow").write_bytes(encode_shard(rs, "uint32"))
    flat, _ = token_arrays(open_shard(str(tmp_path / "s.arrow")))
    assert flat.dtype == np.uint32 and flat.tolist() == [70_000, 1]


def test_manifest_round_trip_and_verify_ok(tmp_path):
    m = write_dir(tmp_path, [rows(30), rows(20, seed=1)])
    again = read_manifest(str(tmp_path))
    assert again == m and json.loads(m.to_json())["totals"]["rows"] == 50
    assert verify(str(tmp_path)) == []


def test_verify_names_a_corrupted_shard(tmp_path):
    write_dir(tmp_path, [rows(30), rows(20, seed=1)])
    p = tmp_path / shard_name(1)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    problems = verify(str(tmp_path))
    assert problems and all(x.startswith("shard-00001.arrow") for x in problems)
    assert any("sha256" in x for x in problems)


@pytest.mark.parametrize("break_it,expect", [
    (lambda d, m: m["shards"][0].update(rows=31), "31"),
    (lambda d, m: m["shards"][0].update(tokens=1), "tokens, manifest says 1"),
    (lambda d, m: m.update(dtype="uint32"), "manifest says uint32"),
    (lambda d, m: m["tokenizer"].update(vocab_size=10), ">= vocab_size 10"),
    (lambda d, m: (d / "stray.arrow").write_bytes(b"x"), "stray.arrow: not in manifest.json"),
    (lambda d, m: os.remove(d / shard_name(0)), "shard-00000.arrow: missing"),
])
def test_verify_names_each_mismatch(tmp_path, break_it, expect):
    write_dir(tmp_path, [rows(30)])
    m = json.loads((tmp_path / "manifest.json").read_text())
    break_it(tmp_path, m)
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    problems = verify(str(tmp_path))
    assert any(expect in p for p in problems), problems


def test_not_a_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    assert verify(str(tmp_path))[0].startswith("manifest.json: not a thresher-shards manifest")


def test_other_arrow_readers_open_a_shard(tmp_path):
    import duckdb
    import polars as pl

    rs = rows(10)
    path = str(tmp_path / "s.arrow")
    with open(path, "wb") as fh:
        fh.write(encode_shard(rs, "uint16"))
    df = pl.read_ipc_stream(path)
    assert df["id"].to_list() == [r["id"] for r in rs]
    assert df["tokens"][3].to_list() == rs[3]["tokens"].tolist()
    shard = pa.ipc.open_stream(pa.memory_map(path)).read_all()  # noqa: F841 (DuckDB finds it by name)
    total = duckdb.sql("select sum(len(tokens)) from shard").fetchall()[0][0]
    assert total == sum(len(r["tokens"]) for r in rs)


def test_hugging_face_maps_a_shard_without_copying(tmp_path):
    datasets = pytest.importorskip("datasets")
    rs = rows(20)
    path = str(tmp_path / shard_name(0))
    with open(path, "wb") as fh:
        fh.write(encode_shard(rs, "uint16"))
    before = pa.total_allocated_bytes()
    ds = datasets.Dataset.from_file(path)  # the IPC stream format is datasets' own cache format
    assert pa.total_allocated_bytes() == before  # memory-mapped, nothing read into Arrow's pool
    assert ds.num_rows == 20 and ds.column_names == ["id", "url", "lang", "source", "tokens"]
    assert ds[7]["tokens"] == rs[7]["tokens"].tolist()
    np_ds = ds.with_format("numpy")
    assert np_ds[3]["tokens"].tolist() == rs[3]["tokens"].tolist()


def test_version_1_shards_in_the_file_format_still_open_and_verify(tmp_path):
    rs = rows(12)
    m = write_dir(tmp_path, [rs])
    table = open_shard(str(tmp_path / shard_name(0)))
    sink = pa.BufferOutputStream()  # rewrite it as a version 1 run wrote it: an IPC file
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue().to_pybytes()
    (tmp_path / shard_name(0)).write_bytes(data)
    d = json.loads(m.to_json())
    d["version"] = 1  # as version 1 wrote it: no formats, no files per shard
    del d["formats"], d["shards"][0]["files"], d["shards"][0]["index"]
    d["shards"][0].update(bytes=len(data), sha256=sha256_file(str(tmp_path / shard_name(0))))
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    assert verify(str(tmp_path)) == []
    flat, offsets = token_arrays(open_shard(str(tmp_path / shard_name(0))))
    assert np.array_equal(flat[offsets[5]:offsets[6]], rs[5]["tokens"])
    d["version"] = 4
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    assert "manifest version 4 is not one this Thresher reads" in verify(str(tmp_path))[0]


@pytest.mark.parametrize("vocab, megatron_dtype, flat_header", [(1000, np.uint16, (20240520, 1)),
                                                                (2**16, np.uint16, (20240520, 1)),
                                                                (2**16 + 1, np.int32, (20240801, 7)),
                                                                (128_256, np.int32, (20240801, 7))])
def test_megatron_and_flat_formats_round_trip(tmp_path, vocab, megatron_dtype, flat_header):
    rs = rows(40, vocab=min(vocab, 2**16), seed=3)
    for r in rs:
        r["tokens"] = r["tokens"].astype(np.uint32) * (vocab // min(vocab, 2**16))
    rs[5]["tokens"] = np.array([vocab - 1], dtype=np.uint32)  # the largest id survives
    dtype = "uint16" if vocab <= 2**16 else "uint32"
    written = {}
    info = ShardInfo(**write_shard(rs, 3, ["flat", "megatron", "arrow"], dtype, vocab,
                                   lambda name, data: written.__setitem__(name, data)))
    assert sorted(written) == ["flat/shard-00003.bin", "megatron/shard-00003.bin", "megatron/shard-00003.idx",
                               "shard-00003.arrow"]
    for name, data in written.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    flat, offsets = read_megatron(str(tmp_path), 3)
    assert flat.dtype == megatron_dtype and len(offsets) == 41
    for i, r in enumerate(rs):
        assert np.array_equal(flat[offsets[i]:offsets[i + 1]], r["tokens"])
    idx = (tmp_path / "megatron/shard-00003.idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00" and idx[9:17] == (1).to_bytes(8, "little")
    header = np.frombuffer(written["flat/shard-00003.bin"][:1024], dtype=np.int32)
    assert tuple(header[:2]) == flat_header and header[2] == info.tokens
    assert np.array_equal(read_flat(str(tmp_path), 3), np.concatenate([r["tokens"] for r in rs]))
    m = Manifest({"name": "t", "sha256": "x", "vocab_size": vocab, "eos_token": "<e>", "eos_id": 0}, dtype, 0, 1000,
                 [info], formats=["arrow", "megatron", "flat"])
    (tmp_path / "manifest.json").write_text(m.to_json())
    assert read_manifest(str(tmp_path)) == m
    assert verify(str(tmp_path)) == []
    (tmp_path / "flat" / "shard-00009.bin").write_bytes(written["flat/shard-00003.bin"])
    assert verify(str(tmp_path)) == ["flat/shard-00009.bin: not in manifest.json"]


def test_a_version_2_manifest_still_reads(tmp_path):
    m = write_dir(tmp_path, [rows(30), rows(20, seed=1)])
    old = json.loads(m.to_json())
    old["version"] = 2
    del old["formats"]
    for s in old["shards"]:
        del s["files"], s["index"]
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    again = read_manifest(str(tmp_path))
    assert again.formats == ["arrow"] and [s.index for s in again.shards] == [0, 1]
    assert again.shards[1].files == m.shards[1].files
    assert verify(str(tmp_path)) == []
