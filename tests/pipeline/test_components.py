"""The parallel connected components in Beam against a single-process union-find (the oracle)."""

import random

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.pipeline.graph.dedup_shuffle import ConnectedComponents
from thresher.pipeline.graph.counting import MergeCounts
from tests.oracles import UnionFind


def oracle(edges):
    uf = UnionFind()
    for a, b in edges:
        if a != b:  # a self-loop is no edge: such a node is in no cluster
            uf.union(a, b)
    return sorted(uf.components().items())


def _converged_within(rounds):
    def check(merged):
        (counts,) = merged
        changed = [int(k[2]) for k in counts if k[1] == "cc_changes"]
        if changed and max(changed) >= rounds:
            raise AssertionError(f"edges still changed in round {max(changed)} of {rounds}")

    return check


def run_components(edges, rounds=20, check_labels=True):
    """Labels from the Beam graph equal the oracle's, and the last round changed nothing."""
    with beam.Pipeline(runner=FnApiRunner()) as p:
        labels, counts = p | beam.Create(edges) | ConnectedComponents(rounds, "cc")
        if check_labels:
            assert_that(labels, equal_to(oracle(edges)))
        merged = counts | beam.Flatten() | beam.CombineGlobally(MergeCounts())
        assert_that(merged, _converged_within(rounds), label="Converged")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=120))
def test_random_graphs_match_union_find(edges):
    run_components([(f"n{a:03d}", f"n{b:03d}") for a, b in edges], rounds=10)


def test_long_chain_in_shuffled_order():
    rng = random.Random(1)
    nodes = [f"d{i:05d}" for i in range(3000)]
    rng.shuffle(nodes)  # a path whose ids are in random order: the hard case for label propagation
    edges = list(zip(nodes, nodes[1:]))
    rng.shuffle(edges)
    run_components(edges)


def test_sorted_chain_and_large_star():
    chain = [(f"c{i:05d}", f"c{i + 1:05d}") for i in range(2000)]
    star = [("s00000", f"s{i:05d}") for i in range(1, 3000)] + [(f"t{i:05d}", "t99999") for i in range(2000)]
    run_components(chain + star)


def test_many_small_components():
    rng = random.Random(2)
    edges = []
    for c in range(500):
        members = [f"g{c:03d}-{k}" for k in range(rng.randint(2, 6))]
        edges += [(rng.choice(members), m) for m in members]
    run_components(edges)


def test_too_few_rounds_is_detected():
    nodes = [f"d{i:05d}" for i in range(3000)]
    random.Random(3).shuffle(nodes)
    edges = list(zip(nodes, nodes[1:]))
    # the labels cannot be right after one round, and the round's own count of changed edges says so
    with pytest.raises(AssertionError, match="edges still changed in round 1 of 1"):
        run_components(edges, rounds=1, check_labels=False)
