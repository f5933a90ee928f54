"""The tokenize stage's output: ``shards/shard-NNNNN.arrow`` (and the other formats' files,
``shards/megatron/``, ``shards/flat/``) and ``shards/manifest.json``."""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from thresher.pipeline.graph.counting import StageResult, flatten
from thresher.pipeline.graph.heap import give_back_memory
from thresher.pipeline.progress import ProgressWriter
from thresher.pipeline.graph.rundir import atomic_write
from thresher.pipeline.graph.write_documents import SpillByShard, rows_of
from thresher.transforms.hashing import TOKEN_BUCKETS, row_order, seeded_hash, shard_of, shards_of_bucket
from thresher.transforms.shards import FORMATS, Manifest, ShardInfo, write_shard
from thresher.transforms.tokenization import COPIES, TokenizerInfo

SHUFFLE_SALT = "shuffle:"


def _shards(kv, n: int, seed: int):
    """The shards a bucket's spilled rows can fall into, or a row's own shard (spill files off)."""
    bucket, item = kv
    if isinstance(item, dict):
        return [shard_of(SHUFFLE_SALT + str(item["id"]), seed, n)]
    return shards_of_bucket(bucket, TOKEN_BUCKETS, n)


class WriteTokenShard(beam.DoFn):
    """Writes one tokenized shard (transforms/shards.py), documents in seeded shuffled order."""

    def __init__(self, folder: str, tokenizer: TokenizerInfo, formats: list[str], seed: int, salt: str,
                 progress_dir: str | None = None):
        self.folder = folder
        self.tokenizer = tokenizer
        self.formats = formats
        self.seed = seed
        self.salt = salt
        self.progress_dir = progress_dir

    def setup(self):
        self.progress = ProgressWriter.shared(self.progress_dir)

    def process(self, element):
        index, items = element  # (SpillRef of a bucket, or a row; shard count): a bucket can span two shards
        items = list(items)
        n = items[0][1]
        rows = [r for r in rows_of(item for item, _ in items) if shard_of(self.salt + str(r["id"]), self.seed, n) == index]
        rows.sort(key=lambda r: (seeded_hash(self.salt + str(r["id"]), self.seed), *row_order(r)))
        written = write_shard(rows, index, self.formats, self.tokenizer.dtype, self.tokenizer.vocab_size,
                              lambda name, data: atomic_write(f"{self.folder}/{name}", data))
        del rows
        give_back_memory()
        self.progress.add("shards")
        self.progress.flush()
        yield written


class WriteManifest(beam.DoFn):
    def __init__(self, path: str, tokenizer: TokenizerInfo, shard_tokens: int, seed: int, formats: list[str]):
        self.path = path
        self.formats = formats
        self.tokenizer = tokenizer
        self.shard_tokens = shard_tokens
        self.seed = seed

    def process(self, infos: list):
        manifest = Manifest(tokenizer=dataclasses.asdict(self.tokenizer), dtype=self.tokenizer.dtype, seed=self.seed,
                            shard_tokens=self.shard_tokens, formats=self.formats,
                            shards=[ShardInfo(**i) for i in sorted(infos, key=lambda i: i["index"])])
        atomic_write(self.path, manifest.to_json().encode())
        yield {("output", "shards"): len(manifest.shards), ("output", "shard_rows"): manifest.rows,
               ("output", "shard_tokens"): manifest.tokens}


def shard_rows(doc: dict) -> list[dict]:
    """A tokenized document's rows in shards/: one, or with rehydration (tokenize.rehydrate) one per
    copy, the copies' ids suffixed ``#2``, ``#3``, ... so the seeded order spreads them over the shards."""
    row = {"id": doc["id"], "url": doc.get("url"), "lang": doc.get("lang"), "source": doc.get("source"),
           "offset": doc.get("offset"), "tokens": doc["tokens"]}
    return [row] + [{**row, "id": f"{doc['id']}#{k}"} for k in range(2, doc.get(COPIES, 1) + 1)]


class WriteTokenShards(beam.PTransform):
    """The tokenize stage's extra output: tokenized documents -> ``shards/shard-NNNNN.arrow`` +
    ``shards/manifest.json``; the documents go on without their tokens.

    The shard count is ceil(total tokens / shard_tokens), known once every document is
    tokenized (a side input); each document goes to shard floor(u * count) for a seeded
    u = hash(seed, id) in [0, 1), and within a shard documents are ordered by u. The stream a
    trainer reads shard by shard is thus a seeded random permutation of the corpus, identical on
    every runner and worker count, with shards of about shard_tokens tokens each.
    """

    def __init__(self, stage: str, params, ctx):
        super().__init__()
        self.folder = f"{ctx.staging}/shards"
        self.tokenizer = ctx.resource(stage).info  # the driver read the tokenizer once (LoadedTokenizer)
        self.shard_tokens = params.shard_tokens
        self.formats = [f for f in FORMATS if f in params.formats]
        self.seed = ctx.config.write.seed
        self.progress_dir = ctx.progress_dir
        self.spill = ctx.spill("tokens")

    def expand(self, branches):
        target = self.shard_tokens
        # Rows are spilled by a fixed fine bucketing of u before the shard count is known; the
        # count comes from the spilled segments' token totals, and each shard then reads the
        # buckets that overlap it (a bucket on a boundary is read by both of its shards).
        refs = flatten("AllSpilled", [
            pcoll
            | f"ShardRows{i}" >> beam.FlatMap(shard_rows)
            | f"Spill{i}" >> beam.ParDo(SpillByShard(self.spill, None, self.seed, salt=SHUFFLE_SALT,
                                                     buckets=TOKEN_BUCKETS))
            for i, pcoll in enumerate(branches.values())])
        n_shards = (
            refs
            | "TokenCounts" >> beam.Map(lambda kv: len(kv[1]["tokens"]) if isinstance(kv[1], dict) else kv[1].tokens)
            | "TotalTokens" >> beam.CombineGlobally(sum)
            | "ShardCount" >> beam.Map(lambda total: max(1, -(-total // target)))
        )
        infos = (
            refs
            | "ToShards" >> beam.FlatMap(lambda kv, n, seed: [(s, (kv[1], n)) for s in _shards(kv, n, seed)],
                                         n=beam.pvalue.AsSingleton(n_shards), seed=self.seed)
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(WriteTokenShard(self.folder, self.tokenizer, self.formats, self.seed,
                                                         SHUFFLE_SALT, self.progress_dir))
        )
        counts = (
            infos
            | "AllShards" >> beam.combiners.ToList()
            | "WriteManifest" >> beam.ParDo(WriteManifest(f"{self.folder}/manifest.json", self.tokenizer,
                                                          self.shard_tokens, self.seed, self.formats))
        )
        docs = {branch: pcoll | f"DropTokens/{branch}" >> beam.Map(lambda d: {k: v for k, v in d.items() if k != "tokens"})
                for branch, pcoll in branches.items()}
        return StageResult(docs, [counts], [])
