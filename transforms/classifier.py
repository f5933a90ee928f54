"""The ``quality_classifier`` stage: a learned quality score from fastText supervised models, and
the training of such a model.

Scoring reads any fastText ``.bin``/``.ftz`` with the one fastText reader Thresher installs
(``fasttext-predict``, which lid.176 already needs), so a published classifier a user brings
(DCLM's bigram model, FineWeb-Edu's fastText variants) works as well as one trained here. The text
is put on one line first (fastText reads a line; an inner newline would end the input there), and
optionally lower-cased, for models trained on lower-cased text.

Training uses ``floret`` (Explosion's fork of fastText, which installs a module of its own name and
so does not overwrite ``fasttext-predict``'s; fastText's own wheels and ``fasttext-numpy2-wheel``
install the same ``fasttext`` module and would). floret's files carry two header fields fastText's
do not; `to_fasttext_format` drops them, so the model is written in fastText's own format, and
`train` checks that the written model predicts exactly what floret predicts.

Keep rules: ``min_score``, or ``keep_top`` (the top fraction of the corpus by score): a global cut-off,
so the stage is a corpus stage (its Beam side, ``thresher.pipeline.graph.classifier_stage``, computes the quantile
over all documents' scores); the scores are computed when the documents are parked, text at hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import tempfile
import weakref
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from thresher.transforms.stage import ConfigError, Stage, check, register

SCORE = "quality_score"
STAGE = "quality_classifier"
REASON_COLUMN = f"{STAGE}_reason"


def one_line(text: str, lowercase: bool = False) -> str:
    """The text as fastText reads it: whitespace runs (newlines included) made one space."""
    text = " ".join(text.split())
    return text.lower() if lowercase else text


class FastTextScorer:
    """P(label | text) from a fastText supervised model (0.0 when the model does not rank it)."""

    def __init__(self, path: str, label: str, lowercase: bool = False):
        import fasttext

        try:
            self.model = fasttext.load_model(path)
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not a fastText model fastText can read ({e})") from None
        self.label = label
        self.lowercase = lowercase
        labels, _ = self.model.predict("a", k=-1)  # every label, ranked
        self.labels = tuple(labels)
        if label not in self.labels:
            raise ValueError(f"{path}: label {label!r} is not one of the model's labels {list(self.labels)}")

    def __call__(self, text: str) -> float:
        labels, probs = self.model.predict(one_line(text, self.lowercase), k=-1)
        for lab, p in zip(labels, probs):
            if lab == self.label:
                return min(1.0, max(0.0, float(p)))  # fastText's softmax can round a hair past 1
        return 0.0


@dataclass
class ClassifierModel:
    """One more model to score with: its score is the column ``quality_<name>`` (recorded, not deciding)."""

    name: str = ""
    model: str = ""
    label: str = "__label__hq"
    lowercase: bool = False


@dataclass
class QualityClassifierParams:
    enabled: bool = False
    annotate: bool = False  # record quality_score and the would-be reason, drop nothing
    model: str = ""  # the fastText model whose score decides (column quality_score)
    label: str = "__label__hq"  # the label whose probability is the score
    lowercase: bool = False  # lower-case the text first (for models trained on lower-cased text)
    models: list[ClassifierModel] = field(default_factory=list)  # more models, scored as quality_<name>
    min_score: float = 0.5  # keep documents scoring at least this (when keep_top is 0)
    keep_top: float = 0.0  # > 0: keep this top fraction of the corpus by score instead (DCLM: 0.1)
    quantiles: int = 1000  # resolution of the keep_top cut-off (Beam's approximate quantiles)

    def validate(self, path: str) -> None:
        check(0.0 <= self.min_score <= 1.0, f"{path}.min_score", "must be within [0, 1]")
        check(0.0 <= self.keep_top <= 1.0, f"{path}.keep_top", "must be within [0, 1] (0: use min_score)")
        check(10 <= self.quantiles <= 100_000, f"{path}.quantiles", "must be within [10, 100000]")
        if self.enabled:
            check(bool(self.model), f"{path}.model", "a fastText model is needed when the stage is enabled")
        names = set()
        for i, m in enumerate(self.models):
            check(m.name.isidentifier(), f"{path}.models[{i}].name", f"{m.name!r} must be an identifier (it names a column)")
            check(m.name not in names and m.name != "score", f"{path}.models[{i}].name", f"{m.name!r} is used twice")
            check(bool(m.model), f"{path}.models[{i}].model", "must name a fastText model")
            names.add(m.name)

    def scorers(self) -> list[tuple[str, str, str, bool]]:
        """(column, model path, label, lowercase) for every model, the deciding one first."""
        return [(SCORE, self.model, self.label, self.lowercase)] + [
            (f"quality_{m.name}", m.model, m.label, m.lowercase) for m in self.models]


# Per worker process: every DoFn instance that scores (one per branch of input) shares one loaded
# model, freed with the last of them.
_SCORERS: "weakref.WeakValueDictionary[tuple, FastTextScorer]" = weakref.WeakValueDictionary()


def scorer(path: str, label: str, lowercase: bool) -> FastTextScorer:
    key = (os.path.abspath(path), os.path.getmtime(path), label, lowercase)
    loaded = _SCORERS.get(key)
    if loaded is None:
        loaded = _SCORERS[key] = FastTextScorer(path, label, lowercase)
    return loaded


def _prepare(params: QualityClassifierParams):
    """doc -> its scores, the models loaded once per worker process (the scores ride on the parked
    reference, and come back as document columns)."""
    scorers = [(col, scorer(path, label, lower)) for col, path, label, lower in params.scorers()]

    def score(doc: dict) -> dict:
        text = doc.get("text") or ""
        return {col: fn(text) for col, fn in scorers}

    return score


def _resolve(params: QualityClassifierParams, open_file) -> None:
    """Every model loads and has its label, checked on the driver before the job starts."""
    for i, (col, path, label, lower) in enumerate(params.scorers()):
        key = "model" if i == 0 else f"models[{i - 1}].model"
        if not os.path.exists(path):
            raise ConfigError(f"config key 'stages.{STAGE}.{key}': {path}: no such file (workers read the model "
                              "from this path: on a cluster, a path every worker can read)")
        try:
            FastTextScorer(path, label, lower)
        except ValueError as e:
            raise ConfigError(f"config key 'stages.{STAGE}.{key}': {e}") from None
    return None


def _columns(params: QualityClassifierParams) -> tuple:
    cols = tuple((col, pa.float64()) for col, *_ in params.scorers())
    return cols + (((REASON_COLUMN, pa.string()),) if params.annotate else ())


register(Stage(name=STAGE, order=85, params=QualityClassifierParams, prepare=_prepare, resolve=_resolve,
               corpus="thresher.pipeline.graph.classifier_stage:QualityCut", columns=_columns,
               description="fastText quality classifier: quality_score, keep min_score or the top keep_top share",
               details=("scores each document with fastText supervised models (`model`, `label`: the "
                        "probability of that label is `quality_score`; `models` adds named ones as "
                        "`quality_<name>`), the text on one line (optionally lower-cased). Keeps "
                        "`quality_score >= min_score`, or with `keep_top` the top share of the corpus "
                        "(a global quantile, recorded in stats.json as `cutoff`). Train a model with "
                        "`thresher classifier train`. Off unless `enabled`"),
               reasons=("low_quality_score",)))


# --- training ------------------------------------------------------------------------------------

_FASTTEXT_MAGIC = 793712314
_FLORET_EXTRA = slice(52, 60)  # floret's two header fields, after fastText's `maxn`


def to_fasttext_format(floret_bytes: bytes) -> bytes:
    """A floret model file (mode ``fasttext``) in fastText's own format: the same header less the
    two fields floret adds after ``maxn``; dictionary and matrices are laid out alike."""
    magic, version = struct.unpack_from("<ii", floret_bytes, 0)
    if magic != _FASTTEXT_MAGIC or version != 12:
        raise ValueError(f"not a floret/fastText model (magic {magic}, version {version})")
    return floret_bytes[:_FLORET_EXTRA.start] + floret_bytes[_FLORET_EXTRA.stop:]


@dataclass
class TrainParams:
    word_ngrams: int = 2
    dim: int = 64
    epoch: int = 20
    lr: float = 0.5  # fastText's 0.1 learns too little from a few thousand documents
    min_count: int = 1
    bucket: int = 200_000
    held_out: float = 0.2  # share of each class held out (seeded by the text's hash) for the metrics
    seed: int = 0
    max_chars: int = 20_000  # a document's first characters used (the classifier sees their words)
    lowercase: bool = False
    positive_label: str = "__label__hq"
    negative_label: str = "__label__cc"


def split_held_out(texts: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held out) by a seeded hash of each text: the same split on every call."""
    train, held = [], []
    for t in texts:
        h = hashlib.blake2b(f"{seed}:{t}".encode(), digest_size=8).digest()
        (held if int.from_bytes(h, "big") / 2**64 < share else train).append(t)
    return train, held


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a random positive > that of a random negative), ties counted half (Mann-Whitney U)."""
    if not len(pos) or not len(neg):
        return float("nan")
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def metrics(pos_scores: list[float], neg_scores: list[float], threshold: float = 0.5) -> dict:
    pos, neg = np.asarray(pos_scores, dtype=float), np.asarray(neg_scores, dtype=float)
    tp, fp = int((pos >= threshold).sum()), int((neg >= threshold).sum())
    fn = len(pos) - tp
    return {"threshold": threshold, "positives": len(pos), "negatives": len(neg),
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "accuracy": (tp + len(neg) - fp) / (len(pos) + len(neg)) if len(pos) + len(neg) else float("nan"),
            "auc": roc_auc(pos, neg)}


def train(positives: list[str], negatives: list[str], output: str, params: TrainParams = TrainParams()) -> dict:
    """Trains a fastText classifier (floret, one thread: the same model for the same data and seed),
    writes it in fastText's format to `output`, and returns held-out metrics and counts."""
    try:
        import floret
    except ImportError:
        raise RuntimeError("training needs floret: pip install 'thresher[classifier]'") from None
    if not positives or not negatives:
        raise ValueError(f"need positives and negatives to train (got {len(positives)} and {len(negatives)})")
    pos_train, pos_held = split_held_out(positives, params.held_out, params.seed)
    neg_train, neg_held = split_held_out(negatives, params.held_out, params.seed)
    if not pos_train or not neg_train:
        raise ValueError("the held-out split left no training texts of a class: lower --held-out or add texts")
    lines = [f"{params.positive_label} {one_line(t[:params.max_chars], params.lowercase)}" for t in pos_train]
    lines += [f"{params.negative_label} {one_line(t[:params.max_chars], params.lowercase)}" for t in neg_train]
    random.Random(params.seed).shuffle(lines)  # SGD over one class then the other would forget the first
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "train.txt")
        with open(data, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        model = floret.train_supervised(input=data, dim=params.dim, epoch=params.epoch, lr=params.lr,
                                        wordNgrams=params.word_ngrams, minCount=params.min_count,
                                        bucket=params.bucket, thread=1, seed=params.seed, verbose=0)
        raw = os.path.join(tmp, "floret.bin")
        model.save_model(raw)
        with open(raw, "rb") as fh:
            converted = to_fasttext_format(fh.read())
    tmp_out = f"{output}.tmp"
    with open(tmp_out, "wb") as fh:
        fh.write(converted)
    os.replace(tmp_out, output)
    scorer = FastTextScorer(output, params.positive_label, params.lowercase)
    # The written model must be the trained one: fastText's reader and floret agree on every held-out text.
    for t in (pos_held + neg_held)[:50]:
        ours = scorer(t[:params.max_chars])
        probs = dict((lab, p) for p, lab in model.f.predict(one_line(t[:params.max_chars], params.lowercase) + "\n",
                                                              -1, 0.0, "strict"))
        theirs = min(1.0, max(0.0, probs.get(params.positive_label, 0.0)))
        if abs(ours - theirs) > 1e-6:
            raise RuntimeError(f"the converted model disagrees with floret ({ours} != {theirs}): floret's format changed?")
    held = metrics([scorer(t[:params.max_chars]) for t in pos_held], [scorer(t[:params.max_chars]) for t in neg_held])
    return {"counts": {"positives": len(positives), "negatives": len(negatives),
                       "train": {"positives": len(pos_train), "negatives": len(neg_train)},
                       "held_out": {"positives": len(pos_held), "negatives": len(neg_held)}},
            "held_out_metrics": held}


def model_card(output: str, sources: dict, result: dict, params: TrainParams) -> str:
    """Markdown beside the model: what it was trained on, how, and how well it separates held-out texts."""
    import dataclasses

    with open(output, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    m = result["held_out_metrics"]
    c = result["counts"]
    meta = {"model": os.path.basename(output), "sha256": digest, "sources": sources, "counts": c,
            "held_out_metrics": m, "params": dataclasses.asdict(params), "trainer": "floret (fastText format)"}
    return "\n".join([
        f"# Quality classifier: {os.path.basename(output)}", "",
        f"fastText supervised model, labels `{params.positive_label}` (positive) and `{params.negative_label}`.",
        f"Use it with `stages.quality_classifier.model: {os.path.basename(output)}` and "
        f"`label: {params.positive_label}`{' and `lowercase: true`' if params.lowercase else ''}.", "",
        "| | positives | negatives |", "| --- | ---: | ---: |",
        f"| training | {c['train']['positives']:,} | {c['train']['negatives']:,} |",
        f"| held out | {c['held_out']['positives']:,} | {c['held_out']['negatives']:,} |", "",
        f"Held out, at score >= {m['threshold']}: precision {m['precision']:.3f}, recall {m['recall']:.3f}, "
        f"accuracy {m['accuracy']:.3f}; ROC AUC {m['auc']:.3f}.", "",
        f"Sources: positives from `{sources['positive']}`, negatives from `{sources['negative']}`. Seed {params.seed}.", "",
        "```json", json.dumps(meta, indent=2, sort_keys=True), "```", ""])
