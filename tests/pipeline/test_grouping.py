"""Groupings on disk (pipeline/graph/grouping.py): the same groups as Beam's own transforms, on
Beam's local runner with two worker processes, their files gone once read, and partitions larger
than the read budget split before they are grouped."""

import os
import subprocess
import sys
from collections import defaultdict

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from thresher.pipeline.graph.grouping import (CoGroupOnDisk, DistinctOnDisk, FlattenOnDisk, GroupOnDisk, OnDisk,
                                              key_hash)


def _pipeline():
    return beam.Pipeline(runner="DirectRunner", options=PipelineOptions(
        [], direct_num_workers=2, direct_running_mode="multi_processing"))


def _sorted_groups(kv):
    key, values = kv
    return key, sorted(values)


PAIRS = [((i % 7, f"k{i % 13}".encode()), (f"doc-{i}", "x" * (i % 50))) for i in range(3000)]


def _expected_groups(pairs):
    groups = defaultdict(list)
    for k, v in pairs:
        groups[k].append(v)
    return [(k, sorted(v)) for k, v in groups.items()]


@pytest.mark.parametrize("read_bytes", [10**9, 20_000])  # the second splits every partition
def test_group_on_disk_gives_beams_groups_and_leaves_no_file(tmp_path, read_bytes):
    disk = OnDisk(str(tmp_path / "groups"), partitions=4, buffer_bytes=50_000, read_bytes=read_bytes)
    half = len(PAIRS) // 2
    with _pipeline() as p:
        a = p | "A" >> beam.Create(PAIRS[:half])
        b = p | "B" >> beam.Create(PAIRS[half:])
        grouped = (a, b) | "Group" >> GroupOnDisk(disk) | beam.Map(_sorted_groups)
        assert_that(grouped, equal_to(_expected_groups(PAIRS)))
    left = [f for _, _, files in os.walk(tmp_path / "groups") for f in files]
    assert left == []


def test_cogroup_distinct_and_flatten_on_disk_match_beams(tmp_path):
    disk = OnDisk(str(tmp_path / "groups"), partitions=3, buffer_bytes=10_000, read_bytes=30_000)
    left = [(f"k{i % 11}", i) for i in range(500)]
    right = [(f"k{i % 5}", -i) for i in range(40)]
    extra = [(f"k{i % 17}", 1000 + i) for i in range(60)]
    with _pipeline() as p:
        pl = p | "L" >> beam.Create(left)
        pr = p | "R" >> beam.Create(right)
        pe = p | "E" >> beam.Create(extra)
        joined = ({"left": pl, "right": pr, "left_more": pe}
                  | "Join" >> CoGroupOnDisk(disk, merge={"left_more": "left"})
                  | "Sort" >> beam.MapTuple(lambda k, g: (k, sorted(g["left"]), sorted(g["right"]))))
        want = {}
        for k, v in left + extra:
            want.setdefault(k, ([], []))[0].append(v)
        for k, v in right:
            want.setdefault(k, ([], []))[1].append(v)
        assert_that(joined, equal_to([(k, sorted(a), sorted(b)) for k, (a, b) in want.items()]), label="joined")

        words = p | "W" >> beam.Create([("a", "b"), ("b", "a"), ("a", "b")] * 50 + [("c", "c")])
        more = p | "W2" >> beam.Create([("a", "b"), ("d", "e")])
        assert_that((words, more) | "Distinct" >> DistinctOnDisk(disk),
                    equal_to([("a", "b"), ("b", "a"), ("c", "c"), ("d", "e")]), label="distinct")

        flat = (pl, pr) | "Flat" >> FlattenOnDisk(disk)
        assert_that(flat, equal_to(left + right), label="flat")


def test_key_hash_is_the_same_in_every_process():
    keys = [(3, b"\x00\xffab"), "doc-1", ("a", 1, 2.5), b"", "é漢字"]
    here = [key_hash(k) for k in keys]
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", "from thresher.pipeline.graph.grouping import key_hash; "
             f"print([key_hash(k) for k in {keys!r}])"],
            env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True).stdout
        assert out.strip() == str(here)
