"""Spill files: the rows a shuffle would carry, written by a bundle and read back by reference."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thresher.transforms.hashing import TOKEN_BUCKETS, seeded_hash, shard_of, shards_of_bucket
from thresher.pipeline.graph import heap, spill
from thresher.pipeline.graph.spill import SpillBuffer, read_rows, read_segments


def test_rows_come_back_by_key_in_order(tmp_path):
    buf = SpillBuffer(str(tmp_path / "spill"), max_bytes=10**9)
    rows = [{"id": f"d{i}", "text": "x" * i, "tokens": np.arange(i, dtype=np.uint16)} for i in range(30)]
    for r in rows:
        buf.add(int(r["id"][1:]) % 3, r)
    refs = dict(buf.flush())
    assert buf.flush() == [] and len(buf) == 0
    assert len({r.path for r in refs.values()}) == 1  # one file per flush
    for key, ref in refs.items():
        want = [r for r in rows if int(r["id"][1:]) % 3 == key]
        got = read_rows([ref])
        assert [g["id"] for g in got] == [w["id"] for w in want]
        assert all(np.array_equal(g["tokens"], w["tokens"]) for g, w in zip(got, want))
        assert ref.rows == len(want) and ref.tokens == sum(len(w["tokens"]) for w in want)
    assert [len(s) for s in read_segments([refs[2], refs[0]])] == [refs[2].rows, refs[0].rows]


def test_released_segments_are_files_of_their_own_that_go_once_read(tmp_path):
    """The Parquet writers' spill on the local runner: each shard's segment is a file, deleted when
    that shard has read it, so the spill does not sit beside the output written from it."""
    folder = tmp_path / "spill"
    buf = SpillBuffer(str(folder), max_bytes=10**9, release=True)
    rows = [{"id": f"d{i}", "text": "y" * i} for i in range(40)]
    for r in rows:
        buf.add(int(r["id"][1:]) % 4, r)
    refs = dict(buf.flush())
    assert len({r.path for r in refs.values()}) == 4 and all(r.own_file and r.offset == 0 for r in refs.values())
    for n, key in enumerate(sorted(refs), 1):
        assert [g["id"] for g in read_rows([refs[key]])] == [r["id"] for r in rows if int(r["id"][1:]) % 4 == key]
        assert len(os.listdir(folder)) == 4 - n  # this shard's file went, the others wait for their readers


def test_buffer_says_when_it_is_full(tmp_path):
    buf = SpillBuffer(str(tmp_path), max_bytes=5_000)
    n = 0
    while not buf.full:
        buf.add(0, {"text": "y" * 1000})
        n += 1
    assert 3 <= n <= 5


def test_buffers_of_one_process_share_a_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "PROCESS_BYTES", spill._process_bytes + 3_000_000)
    a, b = SpillBuffer(str(tmp_path)), SpillBuffer(str(tmp_path))
    a.add(0, {"text": "a" * 2_000_000})
    assert not a.full  # far below its own 16 MB
    b.add(0, {"text": "b" * 1_500_000})
    assert a.full and b.full  # together over the process budget
    a.flush()
    assert not b.full
    b.flush()


def test_a_short_segment_is_an_error_not_silent_loss(tmp_path):
    buf = SpillBuffer(str(tmp_path))
    buf.add(0, {"text": "z" * 100})
    (_, ref), = buf.flush()
    with open(ref.path, "r+b") as fh:
        fh.truncate(ref.length - 10)
    with pytest.raises(IOError, match="expected"):
        read_rows([ref])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.integers(0, 2**31), st.integers(1, 10_000), st.sampled_from([1, 7, TOKEN_BUCKETS]))
def test_a_rows_shard_is_among_its_buckets_shards(doc_id, seed, shards, buckets):
    bucket = shard_of(doc_id, seed, buckets)
    assert shard_of(doc_id, seed, shards) in shards_of_bucket(bucket, buckets, shards)
    assert 0 <= bucket < buckets and shard_of(doc_id, seed, shards) == (seeded_hash(doc_id, seed) * shards) >> 64


def test_buckets_partition_the_shards():
    for shards in (1, 3, 4095, 4096, 4097, 10_000):
        covered = [s for b in range(TOKEN_BUCKETS) for s in shards_of_bucket(b, TOKEN_BUCKETS, shards)]
        assert set(covered) == set(range(shards))  # every shard is read from some bucket


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(heap._libc() is None, reason="needs glibc")
def test_freed_rows_go_back_to_the_system():
    # texts between 512 B and glibc's mmap threshold come from the malloc heap; dropping four in
    # five leaves holes that glibc keeps (RSS stays) until they are trimmed
    texts = [str(i).rjust(20_000, "x") for i in range(10_000)]  # 200 MB
    kept = texts[::5]
    del texts
    before = _rss_mb()
    heap.give_back_memory()
    assert before - _rss_mb() > 100
    assert len(kept) == 2_000


MALLINFO = """
import ctypes
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
"""

MAPPED_AFTER_A_BIG_FREE = MALLINFO + """
import sys
from thresher.pipeline.graph import heap
if sys.argv[1] == "tuned":
    assert heap.tune_heap()
big = bytearray(8 << 20)  # mapped on its own; freeing it raises glibc's sliding threshold to 8 MB
del big
before = libc.mallinfo2().hblkhd
buf = bytearray(2 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(heap._libc() is None or not hasattr(heap._libc(), "mallinfo2"), reason="needs glibc 2.33+")
@pytest.mark.parametrize("mode", ["default", "tuned"])
def test_big_buffers_stay_mapped_after_a_bigger_one_is_freed(mode):
    # A 2 MB buffer after an 8 MB one was freed: glibc alone puts it in the heap (which then keeps its
    # pages); with the tuned heap it is mapped on its own and unmapped when freed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's own defaults
    out = subprocess.run([sys.executable, "-c", MAPPED_AFTER_A_BIG_FREE, mode], capture_output=True, text=True,
                         env=env, check=True).stdout
    mapped = int(out)
    if mode == "tuned":
        assert mapped >= 2 << 20
    else:
        assert mapped == 0


RUN_AS_A_LIBRARY = MALLINFO + """
import sys
from thresher.pipeline.config import from_dict
from thresher.pipeline.engines.run import run
from thresher.transforms import stage as registry
off = {s.name: {"enabled": False} for s in registry.stages() if s.optional}
run(from_dict({"input": [sys.argv[1]], "output": sys.argv[2], "stages": off}))
big = bytearray(8 << 20)
del big
before = libc.mallinfo2().hblkhd
buf = bytearray(2 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.slow
@pytest.mark.skipif(heap._libc() is None or not hasattr(heap._libc(), "mallinfo2"), reason="needs glibc 2.33+")
def test_run_as_a_library_call_leaves_the_callers_heap_alone(tmp_path):
    """run() in a notebook or a test keeps glibc's own settings (thresher run tunes its own process):
    a 2 MB buffer after an 8 MB one was freed comes from the heap, as glibc does by default."""
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(f'{{"id": "d{i}", "text": "Document {i}."}}\n' for i in range(3)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", RUN_AS_A_LIBRARY, str(data), str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) == 0
