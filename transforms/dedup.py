"""Deduplication logic: text normalisation, exact keys, shingles, MinHash signatures, LSH bands,
candidate verification; and the two dedup stages' declarations.

Signatures are computed with numpy rather than datasketch: one vectorised pass over all
shingles and all permutations of a document (measured in benchmarks/dedup.py against
datasketch's bulk path; datasketch stays the test oracle for signature quality).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import xxhash

from thresher.transforms.stage import ConfigError, Stage, check, register
from thresher.transforms.text import CHAR_SCRIPTS

# Scripts written without spaces between words: each character is a token there.
_NO_SPACE = CHAR_SCRIPTS
_TOKEN = re.compile(rf"[{_NO_SPACE}]|[^\W{_NO_SPACE}]+", re.UNICODE)
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_DIGITS = re.compile(r"\d")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Normalisation:
    lowercase: bool = True
    whitespace: bool = True
    punctuation: bool = True
    digits: bool = True
    unicode_nfkc: bool = True


def normalise(text: str, how: Normalisation = Normalisation()) -> str:
    if how.unicode_nfkc:
        text = unicodedata.normalize("NFKC", text)
    if how.lowercase:
        text = text.lower()
    if how.punctuation:
        text = _PUNCT.sub(" ", text)
    if how.digits:
        text = _DIGITS.sub("0", text)
    if how.whitespace:
        text = _SPACE.sub(" ", text).strip()
    return text


def exact_key(text: str, how: Normalisation = Normalisation()) -> str:
    return hashlib.blake2b(normalise(text, how).encode(), digest_size=16).hexdigest()


_WORD = re.compile(r"\w+", re.UNICODE)
_HAS_NO_SPACE = re.compile(rf"[{_NO_SPACE}]")


def tokens(text: str) -> list[str]:
    """Words, lower-cased; in scripts without spaces (CJK, Thai, ...) single characters."""
    text = text.lower()
    if _HAS_NO_SPACE.search(text) is None:
        return _WORD.findall(text)  # the same tokens, 2-3x faster than the alternation below
    return _TOKEN.findall(text)


def fingerprints_of(hashes: np.ndarray) -> bytes:
    """Distinct shingles as 32-bit fingerprints (the top half of their 64-bit hashes): half the
    bytes to shuffle or store; with n shingles a side, about n^2 / 2^33 spurious matches (0.01 at
    10,000), far below one shingle's weight in a Jaccard."""
    return np.unique((hashes >> np.uint64(32)).astype(np.uint32)).tobytes()


def shingle_hashes(text: str, n: int = 5, seed: int = 0) -> np.ndarray:
    """The distinct 64-bit hashes of the document's token n-grams (fewer tokens: one shingle of all)."""
    toks = tokens(text)
    if not toks:
        return np.zeros(0, dtype=np.uint64)
    return np.unique(ngram_hashes(toks, min(n, len(toks)), seed))


def ngram_hashes(toks: list[str], n: int, seed: int = 0) -> np.ndarray:
    """The 64-bit hash of the n-gram starting at each position (len(toks) - n + 1 of them; none when
    there are fewer than n tokens): a polynomial over the tokens' xxh3 hashes, then mixed."""
    if len(toks) < n:
        return np.zeros(0, dtype=np.uint64)
    word_hash = {t: xxhash.xxh3_64_intdigest(t.encode(), seed) for t in set(toks)}
    h = np.fromiter((word_hash[t] for t in toks), dtype=np.uint64, count=len(toks))
    # wrapping uint64 arithmetic
    acc = np.zeros(len(h) - n + 1, dtype=np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for k in range(n):
            acc = acc * mult + h[k : k + len(acc)]
    return _mix(acc)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, vectorised: a bijection on uint64 with good avalanche."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


class MinHasher:
    """MinHash signatures of `num_perm` 64-bit values: permutation k is x -> a_k * x + b_k mod 2**64.

    With odd a_k this is a bijection of uint64, and because the shingle hashes are already mixed
    (splitmix64 over xxh3), two integer operations per (shingle, permutation) suffice; a full mix
    per permutation was 4x slower for the same estimation error (tests/transforms/test_dedup.py
    holds the error to datasketch's).
    """

    def __init__(self, num_perm: int, seed: int = 1, chunk: int = 4096):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm
        self.chunk = chunk

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        sig = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        buf = np.empty((min(len(hashes), self.chunk), self.num_perm), dtype=np.uint64)
        for start in range(0, len(hashes), self.chunk):  # bounded memory for very long documents
            part = hashes[start : start + self.chunk]
            block = buf[: len(part)]
            np.multiply(part[:, None], self.a[None, :], out=block)  # in place: no temporaries
            np.add(block, self.b[None, :], out=block)
            np.minimum(sig, block.min(axis=0), out=sig)
        return sig


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[tuple[int, bytes]]:
    """(band index, 8-byte key of that band's rows) for LSH bucketing."""
    view = sig[: bands * rows].reshape(bands, rows)
    return [(b, xxhash.xxh3_64_digest(view[b].tobytes())) for b in range(bands)]


def compact_signature(sig: np.ndarray) -> np.ndarray:
    """The low 8 bits of each MinHash value (b-bit MinHash, Li & König 2010): enough to verify a
    candidate pair, at an eighth of the bytes a shuffle has to carry."""
    return (sig & np.uint64(0xFF)).astype(np.uint8)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Share of equal values; for compact (uint8) signatures corrected for the 1/256 chance that
    two different values agree in their low byte."""
    if not len(a):
        return 0.0
    agree = float(np.mean(a == b))
    if a.dtype == np.uint8:
        return max(0.0, (agree - 1 / 256) / (1 - 1 / 256))
    return agree


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """P(two documents of this Jaccard share at least one LSH bucket) = 1 - (1 - J^rows)^bands."""
    return 1.0 - (1.0 - jaccard ** rows) ** bands


def optimal_bands(threshold: float, num_perm: int, recall: float = 0.995) -> tuple[int, int]:
    """bands x rows (within `num_perm` values) for a threshold: the most rows per band (the fewest
    candidates below the threshold) that still make a pair right at the threshold a candidate with
    probability `recall`, and as many bands as fit. Candidates are verified, so a spurious one
    costs a check while a missed one is lost for good; datasketch's optimiser, which weighs the
    two alike, gave 9 x 12 for 0.8 and 112 values: recall 0.89 on benchmarks/dedup.py's versions."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= recall:
            return bands, rows
    return num_perm, 1


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two shingle sets given as `shingle_hashes` arrays (sorted, distinct); two empty
    sets are equal (1.0), as their signatures are."""
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def bucket_pairs(members: list[tuple[str, np.ndarray]], threshold: float | None, margin: float = 0.0,
                 max_reps: int = 16):
    """Pairs to link among documents sharing an LSH bucket, without comparing all pairs.

    Members, sorted by id, are compared with the bucket's representatives: a member that links to
    none of them becomes one (at most `max_reps`; a bucket of many copies of one page has one).
    A member links to the first representative whose estimated Jaccard is at least
    `threshold + margin`; failing that, the representative it is estimated closest to, if within
    `margin` of the threshold, is left to the exact check (one pair per member and bucket, so a
    bucket of k near-copies costs at most k exact checks). With `margin` 0 the estimate alone
    decides; with `threshold` None every member links to the first.
    Yields (representative id, member id, decided): decided False marks a pair to check exactly.
    """
    members = sorted(members, key=lambda m: m[0])
    if threshold is None:
        for mid, _ in members[1:]:
            yield members[0][0], mid, True
        return
    reps = members[:1]
    for mid, msig in members[1:]:
        best, best_id = -1.0, None
        for rid, rsig in reps:
            est = estimated_jaccard(msig, rsig)
            if est >= threshold + margin:
                yield rid, mid, True
                break
            if est > best:
                best, best_id = est, rid
        else:
            if margin and best >= threshold - margin:
                yield best_id, mid, False
            if len(reps) < max_reps:
                reps.append((mid, msig))


# --- the `dedup_exact` and `dedup_minhash` stages ----------------------------------------------
# Corpus-level stages: their Beam composites live in thresher.pipeline.graph.dedup_shuffle and see documents'
# references, not the documents; what they need from a text is computed when a document is parked
# (the `prepare` functions below), while its text is at hand.

EXACT_KEY = "_exact"  # reference fields the prepare functions add
BAND_KEYS = "_bands"
SIGNATURE = "_sig"
TEXT_LENGTH = "_len"
SHINGLES = "_shingles"  # the fingerprints, for this run's MinHash index (read before the stage's shuffles)
# A kept document's column: the documents it stands for, itself included (its exact duplicates,
# and with dedup_minhash every document of its near-duplicate cluster and their exact duplicates).
DUP_COUNT = "dup_count"
DUP_COUNT_COLUMN = ((DUP_COUNT, pa.int32()),)


@dataclass
class DedupExactParams:
    enabled: bool = True
    lowercase: bool = True
    whitespace: bool = True
    punctuation: bool = True
    digits: bool = True
    unicode_nfkc: bool = True
    by_url: bool = False  # first keep only the newest capture (WARC-Date) of each URL
    against: list[str] = field(default_factory=list)  # earlier run directories: their kept texts drop ours

    def normalisation(self) -> Normalisation:
        return Normalisation(self.lowercase, self.whitespace, self.punctuation, self.digits, self.unicode_nfkc)


# A run's dedup index (the run-directory contract, docs/run-directory.md): the exact key and id of
# every document dedup_exact kept, in Parquet shards under dedup/index/exact/, and a manifest that
# lists them with the settings the keys were made with. A later run reads it with `against:`.
INDEX_FOLDER = "dedup/index"
EARLIER_COPIES = "dedup/earlier_copies"  # per stage: earlier runs' documents this run's duplicates went to
INDEX_MANIFEST = f"{INDEX_FOLDER}/manifest.json"
EXACT_INDEX = f"{INDEX_FOLDER}/exact"
MINHASH_INDEX = f"{INDEX_FOLDER}/minhash"
EXACT_KEY_KIND = "blake2b-128 of the normalised text"


@dataclass(frozen=True)
class EarlierIndex:
    """An earlier run's exact index, checked on the driver: its folder and its files (full paths)."""

    run: str
    files: tuple[str, ...]


def exact_index_manifest(params: DedupExactParams, files: list[str], rows: int) -> dict:
    return {"exact": {"files": files, "rows": rows, "key": EXACT_KEY_KIND, "normalisation": asdict(params.normalisation())}}


def _index_of(run: str, part: str, stage: str, open_file) -> dict:
    """An earlier run's manifest entry for `part` (exact, minhash), or a one-line refusal."""
    try:
        with open_file(f"{run.rstrip('/')}/{INDEX_MANIFEST}") as fh:
            return json.loads(fh.read())[part]
    except Exception:
        raise ConfigError(f"dedup against {run}: no {part} index there ({INDEX_MANIFEST} is missing, unreadable or "
                          f"has no {part} part: not a Thresher run, one made before runs wrote an index, or one "
                          f"with {stage} off)") from None


def _earlier(run: str, entry: dict) -> EarlierIndex:
    return EarlierIndex(run.rstrip("/"), tuple(f"{run.rstrip('/')}/{INDEX_FOLDER}/{f}" for f in entry["files"]))


def exact_against(params: DedupExactParams, open_file) -> tuple[EarlierIndex, ...]:
    """The earlier runs of `against`, each checked before the job: a run without an index, or whose
    keys were made with other normalisation settings (they could never match ours), is refused
    with one line naming the setting."""
    found = []
    for run in params.against:
        exact = _index_of(run, "exact", "dedup_exact", open_file)
        if exact.get("key") != EXACT_KEY_KIND:
            raise ConfigError(f"dedup against {run}: its exact index holds keys of another kind ({exact.get('key')})")
        theirs, ours = exact.get("normalisation") or {}, asdict(params.normalisation())
        for name, value in ours.items():
            if theirs.get(name) != value:
                raise ConfigError(f"dedup against {run}: its stages.dedup_exact.{name} is "
                                  f"{str(theirs.get(name)).lower()}, this run's is {str(value).lower()} "
                                  "(its keys and ours would never match)")
        found.append(_earlier(run, exact))
    return tuple(found)


def exact_prepare(params: DedupExactParams):
    """doc -> its normalised-text hash."""
    how = params.normalisation()
    return lambda doc: {EXACT_KEY: exact_key(doc.get("text") or "", how)}


register(Stage(name="dedup_exact", order=90, params=DedupExactParams, prepare=exact_prepare, dedup=True,
               corpus="thresher.pipeline.graph.dedup_shuffle:ExactDedup", resolve=exact_against, outputs=("dedup",),
               columns=DUP_COUNT_COLUMN,
               description="one document per normalised-text hash (optionally newest capture per URL)",
               details=("one document per hash of the normalised text (NFKC, case, whitespace, "
                        "punctuation, digits: each switchable); the lowest id is kept. Optionally "
                        "first one capture per URL, the newest by date. `against: [RUN_DIR, ...]` "
                        "(`--dedup-against`) also drops a document whose text an earlier run kept. "
                        "Writes `dedup/index/`"),
               reasons=("exact_duplicate", "url_duplicate", "earlier_duplicate")))


@dataclass
class DedupMinhashParams:
    enabled: bool = True
    ngram: int = 5  # word n-gram shingles (character n-grams in scripts without spaces)
    bands: int = 18
    rows: int = 6
    auto_bands: bool = False  # true: bands x rows from `threshold` and `num_perm` (99.5% candidates at it)
    num_perm: int = 108  # used by auto_bands; otherwise bands x rows
    threshold: float = 0.8  # Jaccard of two documents' shingle sets at which they are duplicates
    verify: bool = True  # false: every LSH candidate pair is linked, unchecked
    exact_margin: float = 0.15  # candidates estimated within this of threshold: decided on exact shingle sets
    keep: str = "lowest_id"  # lowest_id | longest
    rounds: int = 20  # connected-components rounds unrolled in the graph
    seed: int = 1
    against: list[str] = field(default_factory=list)  # earlier run directories: near duplicates of theirs drop ours

    def resolved_bands(self) -> tuple[int, int]:
        if self.auto_bands:
            return optimal_bands(self.threshold, self.num_perm)
        return self.bands, self.rows

    def validate(self, path: str) -> None:
        check(self.ngram >= 1, f"{path}.ngram", "must be >= 1")
        check(self.bands >= 1 and self.rows >= 1, f"{path}.bands", "bands and rows must be >= 1")
        check(0 < self.threshold <= 1, f"{path}.threshold", "must be within (0, 1]")
        check(self.num_perm >= 2, f"{path}.num_perm", "must be >= 2")
        check(0 <= self.exact_margin < 1, f"{path}.exact_margin", "must be within [0, 1)")
        check(self.keep in ("lowest_id", "longest"), f"{path}.keep", "must be lowest_id or longest")
        check(1 <= self.rounds <= 200, f"{path}.rounds", "must be within [1, 200]")


def minhash_prepare(params: DedupMinhashParams):
    """doc -> its LSH band keys, compact signature (for verification) and text length: the shuffles
    carry 8 bytes per band and 1 per permutation, not the 8-byte signature values."""
    bands, rows = params.resolved_bands()
    hasher = MinHasher(bands * rows, params.seed)

    def prepare(doc: dict) -> dict:
        text = doc.get("text") or ""
        hashes = shingle_hashes(text, params.ngram)
        sig = hasher.signature(hashes)
        return {BAND_KEYS: b"".join(key for _, key in band_keys(sig, bands, rows)),
                SIGNATURE: compact_signature(sig).tobytes(), TEXT_LENGTH: len(text), SHINGLES: fingerprints_of(hashes)}

    return prepare


def minhash_settings(params: DedupMinhashParams) -> dict:
    """What makes two runs' band keys, signatures and shingles comparable."""
    bands, rows = params.resolved_bands()
    return {"ngram": params.ngram, "bands": bands, "rows": rows, "seed": params.seed}


def minhash_index_manifest(params: DedupMinhashParams, files: list[str], rows: int) -> dict:
    return {"minhash": {"files": files, "rows": rows, "settings": minhash_settings(params),
                        "columns": "id, bands (8 bytes a band), signature (a byte a permutation), "
                                   "shingles (distinct 32-bit fingerprints)"}}


def minhash_against(params: DedupMinhashParams, open_file) -> tuple[EarlierIndex, ...]:
    """The earlier runs of `against` for dedup_minhash, checked before the job: refused, naming the
    setting, when their shingles or bands were made otherwise (they could never match ours)."""
    found = []
    for run in params.against:
        entry = _index_of(run, "minhash", "dedup_minhash", open_file)
        theirs = entry.get("settings") or {}
        for name, value in minhash_settings(params).items():
            if theirs.get(name) != value:
                raise ConfigError(f"dedup against {run}: its stages.dedup_minhash.{name} is {theirs.get(name)}, "
                                  f"this run's is {value} (its band keys and ours would never match)")
        found.append(_earlier(run, entry))
    return tuple(found)


def minhash_finish(stats: dict, params: DedupMinhashParams) -> list[str]:
    """Rounds used and convergence of the connected components (a round that changed nothing
    proves it); a run whose last round still changed edges must fail rather than publish."""
    mh = stats["stages"]["dedup_minhash"]
    mh.setdefault("edges_changed_per_round", {})
    changed = [int(r) for r in mh["edges_changed_per_round"]]
    mh["rounds"] = params.rounds
    mh["converged"] = params.rounds not in changed
    mh["rounds_used"] = (max(changed) + 1 if changed else 1) if mh["converged"] else params.rounds
    if mh["converged"]:
        return []
    return [f"dedup_minhash: connected components still changed edges in the last of {params.rounds} rounds; "
            "raise stages.dedup_minhash.rounds"]


register(Stage(name="dedup_minhash", order=100, params=DedupMinhashParams, prepare=minhash_prepare, dedup=True,
               corpus="thresher.pipeline.graph.dedup_shuffle:MinHashDedup", finish=minhash_finish, outputs=("dedup",),
               resolve=minhash_against,
               columns=DUP_COUNT_COLUMN,
               description="MinHash LSH near-duplicate removal, components clustered in parallel; writes dedup/",
               details=("word 5-gram shingles (single characters in scripts without spaces: CJK, "
                        "Thai, ...), 64-bit MinHash, 18 bands x 6 rows (or derived from "
                        "`threshold`: `auto_bands`), band keys -> `GroupByKey` -> "
                        "candidate pairs verified at `threshold` (by the signatures, and on the "
                        "exact shingle sets within `exact_margin` of it) -> connected components "
                        "-> one representative per component (lowest id, or the longest). "
                        "`against: [RUN_DIR, ...]` (`--dedup-against`) also drops a near duplicate of a "
                        "document an earlier run saw. Writes `dedup/clusters.parquet` and `dedup/index/`"),
               reasons=("near_duplicate", "earlier_duplicate")))
