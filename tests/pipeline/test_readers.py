"""The README's calls for reading a run directory, run as written, on a real run of the embedded
sample (partitioned by language, several shards): pyarrow, polars, DuckDB, pandas and Hugging Face
`datasets`."""

import glob
import os
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.pipeline.tools.card import dataset_card
from thresher.pipeline.config import Config
from thresher.pipeline.engines.run import run
from thresher.transforms.shards import open_shards, read_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """`thresher-out` of the README, as the working directory's run."""
    cwd = tmp_path_factory.mktemp("readers")
    cfg = Config()
    cfg.output = str(cwd / "thresher-out")
    cfg.stages.langid.partition = True
    cfg.stages.tokenize.shard_tokens = 40_000
    stats = run(cfg).stats
    old = os.getcwd()
    os.chdir(cwd)
    yield stats
    os.chdir(old)


def test_pyarrow_reads_documents_with_their_language_and_the_shards_zero_copy(out):
    docs = pq.read_table("thresher-out/documents")
    assert docs.num_rows == out["totals"]["kept"]
    langs = Counter(docs.column("lang").to_pylist())
    folders = {p.split("lang=")[1].split("/")[0] for p in glob.glob("thresher-out/documents/lang=*/*.parquet")}
    assert set(langs) == folders and len(folders) >= 8
    rejected = pq.read_table("thresher-out/rejected").to_pandas()
    assert rejected.groupby(["stage", "reason"]).size().sum() == out["totals"]["dropped"]

    before = pa.total_allocated_bytes()
    shard = pa.ipc.open_stream(pa.memory_map("thresher-out/shards/shard-00000.arrow")).read_all()  # zero copy
    tokens = shard.column("tokens").chunk(0).values.to_numpy()
    offsets = shard.column("tokens").chunk(0).offsets.to_numpy()
    assert pa.total_allocated_bytes() == before and not tokens.flags.owndata
    assert offsets[-1] == len(tokens) == read_manifest("thresher-out/shards").shards[0].tokens

    every = open_shards("thresher-out")
    m = read_manifest("thresher-out/shards")
    assert len(m.shards) >= 3 and every.num_rows == m.rows
    assert every.column("tokens").num_chunks == len(m.shards)
    assert pa.total_allocated_bytes() == before


def test_polars_and_duckdb(out):
    import duckdb
    import polars as pl

    docs = pl.read_parquet("thresher-out/documents/**/*.parquet")
    assert docs.height == out["totals"]["kept"] and docs["lang"].null_count() == 0
    shard = pl.read_ipc_stream("thresher-out/shards/shard-00000.arrow")
    assert shard.height == read_manifest("thresher-out/shards").shards[0].rows
    by_lang = dict(duckdb.sql("select lang, count(*) from 'thresher-out/documents/**/*.parquet' group by lang").fetchall())
    assert by_lang == dict(Counter(docs["lang"].to_list()))


def test_hugging_face_datasets_loads_the_run_directory(out, tmp_path):
    import datasets

    # a cache of this test's own: datasets keys its cache by the folder's name, and a run of another
    # version of the recipe left under ~/.cache would be "verified" against this one
    docs = datasets.load_dataset("thresher-out", split="train", cache_dir=str(tmp_path))
    rejected = datasets.load_dataset("thresher-out", "rejected", split="train", cache_dir=str(tmp_path))
    shards = datasets.concatenate_datasets(
        [datasets.Dataset.from_file(f) for f in sorted(glob.glob("thresher-out/shards/*.arrow"))])
    assert docs.num_rows == out["totals"]["kept"]
    assert Counter(docs["lang"]) == Counter(pq.read_table("thresher-out/documents").column("lang").to_pylist())
    assert rejected.num_rows == out["totals"]["dropped"]
    m = read_manifest("thresher-out/shards")
    assert shards.num_rows == m.rows
    assert sum(len(t) for t in shards.with_format("numpy")["tokens"]) == m.tokens
    first = pa.ipc.open_stream(pa.memory_map("thresher-out/shards/shard-00000.arrow")).read_all()
    assert np.array_equal(shards.with_format("numpy")[0]["tokens"], first.column("tokens")[0].values.to_numpy())


def test_the_card_lists_only_outputs_with_rows():
    stats = {"totals": {"read": 3, "kept": 2, "dropped": 1, "errored": 0},
             "output": {"documents": 2, "rejected": 0, "clusters_rows": 4}, "run": {"stages": ["ingest"]}}
    card = dataset_card(stats, ("documents", "rejected", "dedup"))
    head = card.split("---")[1]
    assert "config_name: documents" in head and "config_name: clusters" in head
    assert "rejected" not in head  # datasets cannot load a config without rows
    assert card == dataset_card(stats, ("documents", "rejected", "dedup"))
    empty = dataset_card({"output": {}}, ("documents", "rejected"))
    assert empty.split("---")[1].count("config_name") == 1  # documents stays the default, even empty
