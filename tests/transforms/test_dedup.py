import numpy as np
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracles import UnionFind
from thresher.transforms.dedup import (MinHasher, Normalisation, band_keys, bucket_pairs, candidate_probability,
                                       compact_signature, estimated_jaccard, exact_jaccard, exact_key, normalise,
                                       optimal_bands, shingle_hashes, tokens)

BASE = ("Debian is a free operating system for your computer. An operating system is the set of basic programs "
        "and utilities that make your computer run. Debian provides more than a pure OS: it comes with many "
        "thousands of packages, precompiled software bundled up in a nice format for easy installation.")


def test_normalisation_options():
    assert normalise("  Hello,   WORLD! 2024 ") == "hello world 0000"
    assert normalise("Hello, World", Normalisation(lowercase=False, punctuation=False)) == "Hello, World"
    assert exact_key("Hello,  world!") == exact_key("hello world")
    assert exact_key("hello world") != exact_key("hello word")
    assert exact_key("ﬁle") == exact_key("file")  # NFKC folds the ligature


def test_tokens_split_scripts_without_spaces_into_characters():
    assert tokens("Hello, wörld") == ["hello", "wörld"]
    assert tokens("日本語の文章") == ["日", "本", "語", "の", "文", "章"]
    assert tokens("ภาษาไทย") == list("ภาษาไทย")
    assert tokens("한국어 문장") == ["한국어", "문장"]  # Hangul is written with spaces


def test_shingles_of_short_and_empty_texts():
    assert len(shingle_hashes("")) == 0
    assert len(shingle_hashes("two words", n=5)) == 1
    a = shingle_hashes(BASE)
    assert a.dtype == np.uint64 and len(a) == len(set(a.tolist()))


def jaccard(a, b):
    sa, sb = set(shingle_hashes(a).tolist()), set(shingle_hashes(b).tolist())
    return len(sa & sb) / len(sa | sb)


def edit(text, k, seed):
    rng = np.random.default_rng(seed)
    words = text.split()
    for i in rng.choice(len(words), size=k, replace=False):
        words[i] = "edited"
    return " ".join(words)


def test_signature_estimates_jaccard_as_well_as_datasketch():
    """datasketch is the oracle for signature quality: our error is no worse than its own."""
    hasher = MinHasher(256, seed=3)
    ours, theirs = [], []
    for seed in range(30):
        other = edit(BASE * 3, int(3 + seed), seed)
        true = jaccard(BASE * 3, other)
        ours.append(abs(estimated_jaccard(hasher.signature(shingle_hashes(BASE * 3)),
                                          hasher.signature(shingle_hashes(other))) - true))
        m1, m2 = MinHash(num_perm=256, seed=3), MinHash(num_perm=256, seed=3)
        m1.update_batch([s.to_bytes(8, "little") for s in shingle_hashes(BASE * 3).tolist()])
        m2.update_batch([s.to_bytes(8, "little") for s in shingle_hashes(other).tolist()])
        theirs.append(abs(m1.jaccard(m2) - true))
    assert np.mean(ours) <= np.mean(theirs) * 1.5 + 0.01
    assert np.mean(ours) < 0.05


def test_compact_signatures_estimate_like_full_ones():
    """8-bit b-bit MinHash (what the band shuffle carries) against the full 64-bit values."""
    hasher = MinHasher(112, seed=5)
    base = hasher.signature(shingle_hashes(BASE * 3))
    diffs = []
    for seed in range(40):
        other = hasher.signature(shingle_hashes(edit(BASE * 3, 1 + seed, seed)))
        full = estimated_jaccard(base, other)
        diffs.append(estimated_jaccard(compact_signature(base), compact_signature(other)) - full)
    assert abs(np.mean(diffs)) < 0.01 and np.mean(np.abs(diffs)) < 0.02
    assert compact_signature(base).dtype == np.uint8 and len(compact_signature(base)) == 112
    unrelated = hasher.signature(shingle_hashes("completely different words in another text " * 20))
    assert estimated_jaccard(compact_signature(base), compact_signature(unrelated)) < 0.05


def test_signatures_are_deterministic_and_seeded():
    h = shingle_hashes(BASE)
    assert np.array_equal(MinHasher(112, 1).signature(h), MinHasher(112, 1).signature(h))
    assert not np.array_equal(MinHasher(112, 1).signature(h), MinHasher(112, 2).signature(h))
    long_doc = shingle_hashes(" ".join(f"w{i}" for i in range(20000)))  # chunked path
    sig = MinHasher(64, chunk=1000).signature(long_doc)
    assert np.array_equal(sig, MinHasher(64, chunk=10**6).signature(long_doc))


def test_band_keys_collide_for_identical_signatures_only():
    hasher = MinHasher(112)
    a = hasher.signature(shingle_hashes(BASE))
    b = hasher.signature(shingle_hashes(BASE.replace("Debian", "Ubuntu")))
    ka, kb = band_keys(a, 14, 8), band_keys(a.copy(), 14, 8)
    assert ka == kb and len(ka) == 14
    shared = sum(x == y for x, y in zip(ka, band_keys(b, 14, 8)))
    assert shared < 14


def test_optimal_bands_reach_the_threshold():
    assert optimal_bands(0.8, 108) == (18, 6)  # the defaults
    for t in (0.5, 0.7, 0.8, 0.9, 0.95):
        b, r = optimal_bands(t, 112)
        assert b * r <= 112 and candidate_probability(t, b, r) >= 0.995
        assert candidate_probability(t, 112 // (r + 1), r + 1) < 0.995  # no longer bands would do


def test_bucket_pairs_verify_candidates():
    hasher = MinHasher(128)
    docs = {"a": BASE, "b": edit(BASE, 2, 0), "c": "completely different text about cooking pasta and tomatoes " * 5}
    members = [(k, hasher.signature(shingle_hashes(v))) for k, v in docs.items()]
    assert sorted(bucket_pairs(members, threshold=0.5)) == [("a", "b", True)]  # true Jaccard 0.64
    assert sorted(bucket_pairs(members, threshold=None)) == [("a", "b", True), ("a", "c", True)]
    # within the margin of the threshold the pair is left to the exact check, not linked or dropped
    est = estimated_jaccard(members[0][1], members[1][1])
    assert sorted(bucket_pairs(members, threshold=est, margin=0.1)) == [("a", "b", False)]
    assert list(bucket_pairs(members, threshold=est + 0.2, margin=0.1)) == []


def test_bucket_pairs_compare_with_every_group_of_a_bucket():
    """A bucket shared by chance by two families: each member is compared with both families'
    representatives, however many members came before it (not only the first few members)."""
    hasher = MinHasher(128)
    other = "a wholly unrelated page listing train times between two small towns on weekdays " * 4
    docs = {f"a{i:02d}": edit(BASE, 1, i) for i in range(20)} | {"b00": other, "b01": edit(other, 1, 1)}
    members = [(k, hasher.signature(shingle_hashes(v))) for k, v in docs.items()]
    pairs = list(bucket_pairs(members, threshold=0.5))
    assert ("a00", "b00", True) not in pairs
    assert ("b00", "b01", True) in pairs  # b01 is the 22nd member: linked to its own family's first
    assert {m for _, m, _ in pairs} == set(docs) - {"a00", "b00"}


def test_exact_jaccard():
    a, b = shingle_hashes("one two three four five six seven", 5), shingle_hashes("one two three four five six eight", 5)
    assert exact_jaccard(a, b) == 2 / 4
    assert exact_jaccard(a, a) == 1.0
    empty = shingle_hashes("", 5)
    assert exact_jaccard(empty, empty) == 1.0 and exact_jaccard(a, empty) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=60))
def test_union_find_roots_are_component_minima(edges):
    uf = UnionFind()
    for a, b in edges:
        uf.union(a, b)
    comps = uf.components()
    for a, b in edges:
        assert comps[a] == comps[b] <= min(a, b)
    for node, root in comps.items():
        assert root == min(n for n, r in comps.items() if r == root)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_dedup_functions_never_raise(text):
    exact_key(text)
    shingle_hashes(text)
    MinHasher(16).signature(shingle_hashes(text))


def test_shingles_use_the_one_table_of_scripts_without_spaces():
    """Tibetan and CJK Extension B are written without spaces too: one token a character, as in the
    word splitting of the quality filters (transforms/text.py holds the one table)."""
    tibetan = "བོདཡིག"
    assert tokens(tibetan) == list(tibetan)
    ext_b = "\U00020000\U00020001\U00020002"
    assert tokens(ext_b) == list(ext_b)
