"""Tokenizers (Hugging Face `tokenizers`): load a tokenizer.json, or train a byte-level BPE."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Iterable

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from thresher.transforms.dedup import DUP_COUNT
from thresher.transforms.shards import FORMATS
from thresher.transforms.stage import ConfigError, Stage, check, register

DEFAULT_EOS = "<|endoftext|>"

# The special tokens the trainer's objectives use (trainer/objectives.py): padding, BERT's mask,
# the fill-in-the-middle markers and T5's span sentinels. `train_bpe` reserves them and the
# shipped default tokenizer has them; the manifest records their ids.
PAD, MASK = "<|pad|>", "<|mask|>"
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"
SENTINELS = 256


def sentinel(i: int) -> str:
    return f"<|sentinel_{i}|>"


RESERVED_TOKENS = [PAD, MASK, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX] + [sentinel(i) for i in range(SENTINELS)]
MIN_VOCAB = 256 + 1 + len(RESERVED_TOKENS)  # the byte alphabet, EOS and the reserved tokens


@dataclass(frozen=True)
class TokenizerInfo:
    name: str
    sha256: str  # of the tokenizer's canonical JSON
    vocab_size: int
    eos_token: str
    eos_id: int
    special_tokens: dict = field(default_factory=dict, hash=False)  # reserved token -> id, those it has

    @property
    def dtype(self) -> str:
        return "uint16" if self.vocab_size <= 2**16 else "uint32"


def tokenizer_sha256(tok: Tokenizer) -> str:
    return hashlib.sha256(tok.to_str().encode()).hexdigest()


def tokenizer_from_json(text: str, name: str, eos_token: str = DEFAULT_EOS) -> tuple[Tokenizer, TokenizerInfo]:
    try:
        tok = Tokenizer.from_str(text)
    except Exception as e:
        raise ValueError(f"{name}: not a tokenizer.json that `tokenizers` can load: {e}") from None
    eos_id = tok.token_to_id(eos_token)
    if eos_id is None:
        raise ValueError(f"{name}: the tokenizer has no EOS token {eos_token!r}")
    special = {t: i for t in RESERVED_TOKENS if (i := tok.token_to_id(t)) is not None}
    info = TokenizerInfo(name, tokenizer_sha256(tok), tok.get_vocab_size(with_added_tokens=True), eos_token, eos_id,
                         special)
    return tok, info


def train_bpe(texts: Iterable[str], vocab_size: int, eos_token: str = DEFAULT_EOS, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE (GPT-2 style: any text encodes, nothing is unknown) trained on `texts`, with
    EOS and the trainer's reserved special tokens (`RESERVED_TOKENS`) in its vocabulary."""
    if vocab_size < MIN_VOCAB:
        raise ValueError(f"a vocabulary of {vocab_size} cannot hold the 256 bytes, EOS and the "
                         f"{len(RESERVED_TOKENS)} reserved special tokens: at least {MIN_VOCAB}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[eos_token, *RESERVED_TOKENS],  # ids 0, 1, ...: the same in every tokenizer trained here
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


class TokenizeDocuments:
    """The ``tokenize`` stage, on a batch of documents: adds ``tokens`` (EOS appended, in the
    tokenizer's smallest fitting dtype) and ``n_tokens``. One ``encode_batch_fast`` call per batch:
    crossing into Rust once per document costs about a tenth of the throughput, and the character
    offsets ``encode_batch`` also computes (nothing here reads them) about a fifth; same ids."""

    def __init__(self, tokenizer_json: str, name: str, eos_token: str = DEFAULT_EOS, rehydrate: dict | None = None):
        self.tokenizer, self.info = tokenizer_from_json(tokenizer_json, name, eos_token)
        self.dtype = np.uint16 if self.info.dtype == "uint16" else np.uint32
        self.rehydrate = dict(rehydrate or {})
        self._extra_copies = 0

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        out = []
        eos = self.info.eos_id
        for enc in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False):
            ids = np.empty(len(enc.ids) + 1, dtype=self.dtype)
            ids[:-1] = enc.ids
            ids[-1] = eos
            out.append(ids)
        return out

    def __call__(self, docs: list[dict]) -> list[dict]:
        for doc, ids in zip(docs, self.encode([d["text"] for d in docs])):
            doc["tokens"] = ids
            doc["n_tokens"] = len(ids)
            if self.rehydrate:
                doc[COPIES] = copies(self.rehydrate, doc.get(DUP_COUNT) or 1)
                self._extra_copies += doc[COPIES] - 1
        return docs

    def pop_counters(self) -> dict:
        """Counted in stats.json's tokenize counters: the rows shards/ holds beyond the kept documents."""
        n, self._extra_copies = self._extra_copies, 0
        return {REHYDRATED: n} if n else {}


COPIES = "_copies"  # a tokenized document's rows in shards/ (rehydration)
REHYDRATED = "rehydrated_copies"  # stats.json: stages.tokenize.counters, the copies beyond the first


def copies(table: dict[int, int], dup_count: int) -> int:
    """Rehydration: the copies of a document whose cluster held `dup_count` documents, from
    {lowest dup_count of a bucket: copies}; 1 below the lowest bucket."""
    lows = [low for low in table if low <= dup_count]
    return table[max(lows)] if lows else 1


def extra_copies(stats: dict) -> int:
    return int(stats["stages"].get("tokenize", {}).get("counters", {}).get(REHYDRATED, 0))


# --- the `tokenize` stage ----------------------------------------------------------------------


@dataclass
class TokenizeParams:
    enabled: bool = True
    tokenizer: str = ""  # a tokenizer.json (local, gs://, s3://); empty: the small default shipped in the package
    eos_token: str = "<|endoftext|>"
    shard_tokens: int = 50_000_000  # target tokens per shard
    # the files each shard is written as (any of arrow, megatron, flat; transforms/shards.py): Arrow
    # for `datasets` and Thresher's trainer, Megatron's indexed dataset, llm.c's / nanoGPT's token file
    formats: list[str] = field(default_factory=lambda: ["arrow"])
    batch_docs: int = 256  # documents per encode_batch_fast call
    # encoding threads in each worker process; 0: the machine's cores shared out among the local
    # runner's workers (one each on other runners, which run a worker process per core)
    threads: int = 0
    # rehydration as FineWeb-2 does it: a kept document is written to shards/ this many times by the
    # documents its duplicate cluster held (dup_count), {lowest dup_count of a bucket: copies};
    # empty: once each
    rehydrate: dict[int, int] = field(default_factory=dict)

    def validate(self, path: str) -> None:
        for low, n in self.rehydrate.items():
            check(low >= 1 and n >= 1, f"{path}.rehydrate", f"{low}: {n}: dup_count buckets and copies must be >= 1")
        check(self.shard_tokens >= 1, f"{path}.shard_tokens", "must be >= 1")
        check(self.shard_tokens < 2**31, f"{path}.shard_tokens", "must be < 2**31 (Arrow list offsets are int32)")
        check(self.batch_docs >= 1, f"{path}.batch_docs", "must be >= 1")
        check(bool(self.formats), f"{path}.formats", f"name at least one of {', '.join(FORMATS)}")
        for fmt in self.formats:
            check(fmt in FORMATS, f"{path}.formats", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        check(len(set(self.formats)) == len(self.formats), f"{path}.formats", "names a format twice")
        check(self.threads >= 0, f"{path}.threads", "must be >= 0 (0: automatic)")
        if self.enabled and self.tokenizer:
            check(os.path.exists(self.tokenizer) or "://" in self.tokenizer, f"{path}.tokenizer",
                  f"no such file: {self.tokenizer}")


def default_tokenizer() -> str:
    return str(resources.files("thresher.pipeline") / "data" / "tokenizer.json")


@dataclass(frozen=True)
class LoadedTokenizer:
    """The run's tokenizer, read once by the driver: workers get these bytes, and the manifest
    describes exactly the tokenizer that made the shards."""

    json: str
    name: str
    info: TokenizerInfo


def _resolve(params: TokenizeParams, open_file) -> LoadedTokenizer:
    path = params.tokenizer or default_tokenizer()
    try:
        with open_file(path) as fh:
            text = fh.read().decode("utf-8")
        name = path.rsplit("/", 1)[-1]
        return LoadedTokenizer(text, name, tokenizer_from_json(text, name, params.eos_token)[1])
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"config key 'stages.tokenize.tokenizer': {e}") from None


def worker_threads(params: TokenizeParams, config) -> int:
    """``threads``, or with 0 the cores of this machine shared out among the local runner's worker
    processes (each would otherwise start a pool as large as the machine); 1 on other runners."""
    if params.threads:
        return params.threads
    runner = getattr(config, "runner", None)
    if runner is None or runner.name != "direct":
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, runner.workers))


def use_threads(n: int, explicit: bool) -> None:
    """Sets the `tokenizers` thread pool of this process: ``TOKENIZERS_PARALLELISM`` (read at every
    batch encode) and ``RAYON_NUM_THREADS`` (read when the pool starts). A
    ``TOKENIZERS_PARALLELISM`` the user exported wins over the automatic choice."""
    if not explicit and "TOKENIZERS_PARALLELISM" in os.environ:
        return
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if n > 1 else "false"
    os.environ["RAYON_NUM_THREADS"] = str(n)


def _build(params: TokenizeParams, ctx) -> TokenizeDocuments:
    res: LoadedTokenizer = ctx.resource
    use_threads(worker_threads(params, ctx.config), explicit=bool(params.threads))
    return TokenizeDocuments(res.json, res.name, params.eos_token, params.rehydrate)


def _finish(stats: dict, params: TokenizeParams) -> list[str]:
    kept, rows, extra = stats["totals"]["kept"], stats["output"]["shard_rows"], extra_copies(stats)
    if rows == kept + extra:
        return []
    return [f"kept {kept}{f' + {extra} rehydrated copies' if extra else ''} != rows written to shards/ {rows}"]


register(Stage(name="tokenize", order=110, params=TokenizeParams, build=_build, batch="batch_docs",
               description="token ids with a Hugging Face tokenizer, EOS appended; writes shards/",
               details=("token ids with a Hugging Face `tokenizers` tokenizer (one `encode_batch_fast`"
                        " per 256 documents), EOS appended; adds `n_tokens` to documents and writes"
                        " `shards/`"),
               columns=(("n_tokens", pa.int32()),), resolve=_resolve, finish=_finish, outputs=("shards",),
               writes="thresher.pipeline.graph.write_shards:WriteTokenShards"))
