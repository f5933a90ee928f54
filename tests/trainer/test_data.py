"""The shard loader: windows, coverage across ranks and workers, mixtures, exact resume."""

import numpy as np
import pytest

from thresher.trainer.data import DataError, Mixture, TokenLoader, TokenSource, global_indices
from thresher.transforms.shards import open_shard, read_manifest, token_arrays


def stream(run_dir) -> np.ndarray:
    folder = run_dir / "shards"
    return np.concatenate([token_arrays(open_shard(str(folder / s.file)))[0]
                           for s in read_manifest(str(folder)).shards]).astype(np.int64)


def test_windows_tile_the_token_stream_across_shard_boundaries(sample_shards):
    src = TokenSource(str(sample_shards), seq_len=97)
    tokens = stream(sample_shards)
    assert src.tokens == len(tokens)
    assert src.n_windows == (len(tokens) - 1) // 97
    assert len(read_manifest(str(sample_shards / "shards")).shards) > 3  # boundaries are crossed
    for k in list(range(0, src.n_windows, 37)) + [src.n_windows - 1]:
        np.testing.assert_array_equal(src.window(k), tokens[k * 97: k * 97 + 98])


def batches_of(loader, n):
    out = []
    for i, batch in enumerate(loader):
        x, y = batch["inputs"], batch["targets"]
        assert (x[:, 1:] == y[:, :-1]).all()  # targets are inputs shifted by one
        out.append(np.concatenate([x.numpy(), y.numpy()[:, -1:]], axis=1))
        if i + 1 == n:
            break
    return out


@pytest.mark.parametrize("world,workers,batch", [(1, 0, 5), (2, 2, 3), (3, 2, 4)])
def test_one_epoch_covers_every_window_exactly_once_across_ranks_and_workers(sample_shards, world, workers, batch):
    src = TokenSource(str(sample_shards), seq_len=512)
    mix = Mixture([src], seed=7)
    n = src.n_windows
    per_rank = -(-n // (world * batch)) + 1
    seen = []
    for rank in range(world):
        for j, b in enumerate(batches_of(TokenLoader(mix, batch, rank, world, num_workers=workers), per_rank)):
            for g, row in zip(global_indices(j, batch, rank, world), b):
                if g < n:
                    seen.append(row.tobytes())
    expected = sorted(src.window(k).tobytes() for k in range(n))
    assert len(seen) == n
    assert sorted(seen) == expected


def test_epochs_are_reshuffled_and_each_is_complete(sample_shards):
    src = TokenSource(str(sample_shards), seq_len=512)
    mix = Mixture([src], seed=1)
    n = src.n_windows
    e0 = [mix.locate(g)[1] for g in range(n)]
    e1 = [mix.locate(g)[1] for g in range(n, 2 * n)]
    assert sorted(e0) == sorted(e1) == list(range(n))
    assert e0 != e1
    assert e0 != [Mixture([src], seed=2).locate(g)[1] for g in range(n)]


def test_resume_continues_at_exactly_the_next_window(sample_shards):
    mix = Mixture([TokenSource(str(sample_shards), seq_len=256)], seed=3)
    whole = batches_of(TokenLoader(mix, 4, rank=1, world=2, num_workers=2), 9)
    first = TokenLoader(mix, 4, rank=1, world=2, num_workers=2)
    head = batches_of(first, 5)
    state = first.state_dict()
    assert state["batches"] == 5
    resumed = TokenLoader(mix, 4, rank=1, world=2, num_workers=2)
    resumed.load_state_dict(state)
    tail = batches_of(resumed, 4)
    for a, b in zip(head + tail, whole):
        np.testing.assert_array_equal(a, b)


def test_resume_at_another_world_size_continues_the_global_sample_order(sample_shards):
    mix = Mixture([TokenSource(str(sample_shards), seq_len=256)], seed=3)
    reference = batches_of(TokenLoader(mix, 8), 5)  # one process, 8 windows a batch
    ranks = [TokenLoader(mix, 4, rank=r, world=2) for r in (0, 1)]  # 2 ranks x 4: the same global batches
    head = [batches_of(loader, 3) for loader in ranks]
    for j in range(3):  # rank r holds global samples r, r + 2, ...: interleave them back
        merged = np.empty_like(reference[j])
        merged[0::2], merged[1::2] = head[0][j], head[1][j]
        np.testing.assert_array_equal(merged, reference[j])
    resumed = TokenLoader(mix, 8)  # continue the 2-rank run in one process
    resumed.load_state_dict(ranks[0].state_dict())
    assert resumed.batches == 3
    for a, b in zip(batches_of(resumed, 2), reference[3:]):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_a_batch_layout_that_misses_the_position(sample_shards):
    mix = Mixture([TokenSource(str(sample_shards), seq_len=256)], seed=3)
    loader = TokenLoader(mix, 4, world=2)
    batches_of(loader, 1)  # 8 global samples consumed
    with pytest.raises(DataError, match="consumed 8 samples"):
        TokenLoader(mix, 3).load_state_dict(loader.state_dict())
    with pytest.raises(DataError, match="seed 3"):
        TokenLoader(Mixture(mix.sources, seed=4), 8).load_state_dict(loader.state_dict())


def test_mixture_follows_the_weights_and_cycles_the_smaller_source(sample_shards, tmp_path):
    n_shards = len(read_manifest(str(sample_shards / "shards")).shards)
    a = TokenSource(str(sample_shards), seq_len=512, holdout_shards=n_shards - 2)  # the first 2 shards
    b = TokenSource(str(sample_shards), seq_len=512)
    mix = Mixture([a, b], [1.0, 3.0], seed=0)
    picks = [mix.locate(g) for g in range(4 * Mixture.PATTERN)]
    from_a = [k for s, k in picks if s == 0]
    assert len(from_a) == Mixture.PATTERN  # exactly a quarter
    # interleaved, not in blocks: every 8 consecutive samples hold both sources
    sources = [s for s, _ in picks]
    assert all(0 in sources[i:i + 8] and 1 in sources[i:i + 8] for i in range(0, 4000, 8))
    # the small source wraps into new epochs, each a complete permutation
    n = a.n_windows
    assert sorted(from_a[:n]) == list(range(n)) and sorted(from_a[n:2 * n]) == list(range(n))


def test_a_tokenizer_mismatch_is_refused(sample_shards, other_tokenizer_shards):
    with pytest.raises(DataError, match="tokenizer mismatch"):
        Mixture([TokenSource(str(sample_shards), 128), TokenSource(str(other_tokenizer_shards), 128)])


def test_clear_errors_for_wrong_paths_and_tiny_data(sample_shards, tmp_path):
    with pytest.raises(DataError, match="no manifest.json"):
        TokenSource(str(tmp_path), 128)
    with pytest.raises(DataError, match="make no window"):
        TokenSource(str(sample_shards), seq_len=10**8)


@pytest.mark.parametrize("name", ["mlm", "span", "fim"])
def test_objective_examples_are_the_same_across_ranks_workers_and_restarts(sample_shards, name):
    from thresher.trainer.objectives import Objective

    src = TokenSource(str(sample_shards), seq_len=128)
    obj = Objective(name, src.tokenizer, src.tokenizer["special_tokens"], 128, seed=5)
    mix = Mixture([src], seed=5)

    def batches(loader, n):
        out = []
        for i, b in enumerate(loader):
            out.append({k: v.numpy() for k, v in b.items()})
            if i + 1 == n:
                break
        return out

    single = batches(TokenLoader(mix, 4, objective=obj), 4)
    ranks = [batches(TokenLoader(mix, 2, rank=r, world=2, num_workers=2, objective=obj), 4) for r in (0, 1)]
    for j in range(4):
        for k in single[j]:
            merged = np.empty_like(single[j][k])
            merged[0::2], merged[1::2] = ranks[0][j][k], ranks[1][j][k]
            np.testing.assert_array_equal(merged, single[j][k])
    first = TokenLoader(mix, 4, objective=obj)
    batches(first, 2)
    resumed = TokenLoader(mix, 4, objective=obj)
    resumed.load_state_dict(first.state_dict())
    for a, b in zip(batches(resumed, 2), single[2:]):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_the_megatron_and_flat_shards_give_the_same_windows(sample_shards, tmp_path):
    from thresher.transforms.shards import convert

    convert(str(sample_shards), str(tmp_path / "other"), ["megatron", "flat"])
    arrow = TokenSource(str(sample_shards), seq_len=256)
    with pytest.raises(DataError, match="written as megatron, flat, not arrow"):
        TokenSource(str(tmp_path / "other"), seq_len=256, data_format="arrow")
    for fmt in ("auto", "megatron", "flat"):
        src = TokenSource(str(tmp_path / "other"), seq_len=256, data_format=fmt)
        assert src.format == ("megatron" if fmt == "auto" else fmt)
        assert src.n_windows == arrow.n_windows
        for k in (0, 1, arrow.n_windows // 2, arrow.n_windows - 1):
            assert np.array_equal(src.window(k), arrow.window(k))
