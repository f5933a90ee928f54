"""The training loop: FSDP2 over a Llama-style model, fed by Thresher shards.

Run with ``torchrun --nproc_per_node P -m thresher.trainer --data RUN_DIR ...`` (or ``thresher train``,
which launches exactly that). Without torchrun it trains in one process, unsharded: the reference
the FSDP run is tested against.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F

from thresher.trainer import checkpoint
from thresher.trainer.data import DataError, Mixture, TokenLoader, TokenSource
from thresher.transforms.shards import FORMATS
from thresher.trainer.metrics import MetricsLogger, peak_flops
from thresher.trainer.model import MODELS, EncoderDecoder, Transformer, document_layout
from thresher.trainer.objectives import IGNORE, OBJECTIVES, Objective, ObjectiveParams
from thresher.trainer.schedule import LRSchedule


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)  # DIR or DIR:WEIGHT
    eval_data: list[str] = field(default_factory=list)
    holdout_shards: int = 0  # hold out the last N shards of each --data source for eval
    data_format: str = "auto"  # which of the runs' shard formats to read (the same tokens in each)
    model: str = "tiny"
    objective: str = "clm"  # clm | mlm | span | fim (trainer/objectives.py)
    mlm_rate: float = 0.15
    mlm_split: str = "0.8,0.1,0.1"  # mask / random token / keep
    noise_density: float = 0.15
    mean_span: float = 3.0
    fim_rate: float = 0.5
    fim_spm_rate: float = 0.5
    seq_len: int = 256
    batch_size: int = 8  # per rank, per micro-batch
    grad_accum: int = 1
    steps: int = 100
    lr: float | None = None  # None: DEFAULT_LR of the model
    warmup: int = 10
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    clip: float = 1.0
    seed: int = 0
    doc_mask: bool = False
    activation_checkpointing: bool = False
    compile: bool = False
    output: str = "thresher-ckpt"
    ckpt_every: int = 0  # 0: only at the end; -1: never (benchmarks)
    keep: int = 3
    resume: bool = False
    overwrite: bool = False  # replace another run's checkpoints and metrics in --output
    extend: bool = False  # resume with a different --steps, keeping the checkpoint's schedule
    log_every: int = 1
    eval_every: int = 0
    eval_batches: int = 4
    num_workers: int = 0
    device: str = "auto"
    stop_after: int = 0  # testing aid: exit after this step as if killed (after its checkpoint)


# Peak learning rate by model size when --lr is not given. tiny trains well at 3e-3 on the sample
# (3e-4 barely moves it in 100 steps); the larger ones follow GPT-3's table for their sizes
# (125M: 6e-4, 350M: 3e-4, 1.3B: 2e-4) and small sits between.
DEFAULT_LR = {"tiny": 3e-3, "small": 1e-3, "125m": 6e-4, "350m": 3e-4, "1b": 2e-4}

HELP = {
    "holdout_shards": "hold out the last N shards of each --data source as eval data",
    "seq_len": "tokens per training window",
    "batch_size": "windows per rank per micro-batch",
    "grad_accum": "micro-batches per optimizer step (global batch = batch-size x grad-accum x nproc windows)",
    "steps": "optimizer steps; the lr schedule spans them (changing it on --resume needs --extend)",
    "warmup": "linear warmup steps",
    "seed": "model init and data order",
    "ckpt_every": "checkpoint every N steps (0: only at the end, -1: never)",
    "keep": "checkpoints kept (the newest)",
    "log_every": "log every N steps",
    "eval_every": "evaluate every N steps (0: never; needs --eval-data or --holdout-shards)",
    "eval_batches": "batches per evaluation",
    "num_workers": "DataLoader worker processes per rank",
    "stop_after": "testing aid: stop after step N as if killed",
    "lr": "peak learning rate (default by --model: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")",
    "min_lr_ratio": "final lr as a fraction of the peak",
    "weight_decay": "AdamW weight decay (matrices only)",
    "clip": "gradient norm clipping",
    "doc_mask": "attend within documents only (positions restart after each EOS)",
    "activation_checkpointing": "recompute each block in backward (less memory, ~30%% more compute)",
    "compile": "torch.compile each block",
    "resume": "continue from the newest checkpoint in --output (any --nproc whose global batch matches)",
    "overwrite": "replace another run's checkpoints and metrics in --output",
    "mlm_rate": "mlm: share of each window's positions to predict",
    "noise_density": "span: share of each window's tokens corrupted",
    "mean_span": "span: mean length of a corrupted span",
    "fim_rate": "fim: share of documents rearranged",
    "fim_spm_rate": "fim: share of the rearranged in suffix-prefix-middle order (the rest prefix-suffix-middle)",
    "extend": "with --resume: accept a different --steps, keeping the checkpoint's lr schedule (past its "
              "end the lr stays at its final value)",
}


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="thresher train", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = TrainConfig()
    p.add_argument("--data", action="append", required=True, metavar="DIR[:WEIGHT]", default=argparse.SUPPRESS,
                   help="a thresher run directory (or its shards/); repeat for a weighted mixture")
    p.add_argument("--eval-data", action="append", default=[], metavar="DIR",
                   help="run directories to evaluate on (repeatable)")
    p.add_argument("--data-format", choices=("auto",) + FORMATS, default=d.data_format,
                   help="the shard files to read (each format holds the same tokens); auto: Arrow when the run "
                        "wrote it, else Megatron, else flat")
    p.add_argument("--model", choices=sorted(MODELS), default=d.model, help="model size")
    p.add_argument("--objective", choices=OBJECTIVES, default=d.objective,
                   help="clm: next token (decoder); mlm: masked tokens (encoder); span: T5 span corruption "
                        "(encoder-decoder); fim: fill-in-the-middle (decoder)")
    p.add_argument("--mlm-split", default=d.mlm_split, metavar="MASK,RANDOM,KEEP",
                   help="mlm: how the predicted positions are shown to the model")
    for name in ("holdout_shards", "seq_len", "batch_size", "grad_accum", "steps", "warmup", "seed", "ckpt_every",
                 "keep", "log_every", "eval_every", "eval_batches", "num_workers", "stop_after"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name), help=HELP[name])
    for name in ("lr", "min_lr_ratio", "weight_decay", "clip", "mlm_rate", "noise_density", "mean_span", "fim_rate",
                 "fim_spm_rate"):
        default = argparse.SUPPRESS if getattr(d, name) is None else getattr(d, name)  # lr: by model
        p.add_argument("--" + name.replace("_", "-"), type=float, default=default, help=HELP[name])
    p.add_argument("--schedule", choices=("cosine", "wsd", "constant"), default=d.schedule,
                   help="lr decay after warmup")
    p.add_argument("--output", default=d.output, help="checkpoints and metrics.jsonl go here")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device, help="auto: cuda when available")
    for flag in ("doc_mask", "activation_checkpointing", "compile", "resume", "overwrite", "extend"):
        p.add_argument("--" + flag.replace("_", "-"), action="store_true", help=HELP[flag])
    cfg = TrainConfig(**vars(p.parse_args(argv)))
    if cfg.lr is None:
        cfg.lr = DEFAULT_LR[cfg.model]
    if cfg.extend and not cfg.resume:
        p.error("--extend changes a resumed run's --steps: it needs --resume")
    try:
        split = tuple(float(x) for x in cfg.mlm_split.split(","))
    except ValueError:
        split = ()
    if len(split) != 3 or min(split) < 0 or abs(sum(split) - 1) > 1e-6:
        p.error(f"--mlm-split {cfg.mlm_split}: three shares (mask, random, keep) that sum to 1")
    return cfg


def objective_params(cfg: TrainConfig) -> ObjectiveParams:
    return ObjectiveParams(cfg.mlm_rate, tuple(float(x) for x in cfg.mlm_split.split(",")), cfg.noise_density,
                           cfg.mean_span, cfg.fim_rate, cfg.fim_spm_rate)


def make_objective(cfg: TrainConfig, tokenizer: dict) -> Objective:
    """The objective, checked against the data's tokenizer (its special tokens) before step 1."""
    try:
        return Objective(cfg.objective, tokenizer, tokenizer.get("special_tokens") or {}, cfg.seq_len, cfg.seed,
                         objective_params(cfg))
    except ValueError as e:
        raise DataError(str(e)) from None


def split_weight(spec: str) -> tuple[str, float]:
    path, sep, weight = spec.rpartition(":")
    if sep and path and not os.path.exists(spec):
        try:
            return path, float(weight)
        except ValueError:
            pass
    return spec, 1.0


class Distributed:
    """torchrun's environment, or a single process."""

    def __init__(self, device: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
        if use_cuda:
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        else:
            self.device = torch.device("cpu")
        self.sharded = "WORLD_SIZE" in os.environ  # launched by torchrun: FSDP, even on one rank
        if self.sharded:
            dist.init_process_group("nccl" if use_cuda else "gloo", device_id=self.device if use_cuda else None)

    def mean(self, value: float) -> float:
        if not self.sharded:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def close(self) -> None:
        if self.sharded and dist.is_initialized():
            dist.destroy_process_group()


def new_model(objective: str, mcfg):
    """clm, fim: a causal decoder; mlm: a bidirectional encoder with a tied head; span: an
    encoder-decoder."""
    if objective == "span":
        return EncoderDecoder(mcfg)
    return Transformer(mcfg, causal=objective != "mlm")


def build_model(cfg: TrainConfig, mcfg, env: Distributed):
    torch.manual_seed(cfg.seed)
    model = new_model(cfg.objective, mcfg)
    model.init_weights(cfg.seed)  # identical on every rank and in the single-process reference
    for layer in model.blocks:
        layer.checkpointed = cfg.activation_checkpointing
    model.to(env.device)
    if cfg.compile:
        for layer in model.blocks:
            layer.compile()
    if env.sharded:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
              if env.device.type == "cuda" else MixedPrecisionPolicy())
        for layer in model.blocks:
            fully_shard(layer, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
    return model


def build_optimizer(model, cfg: TrainConfig):
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8,
                             foreach=True)


def loss_on(model, batch: dict, cfg: TrainConfig, eos_id: int, env: Distributed):
    """Mean cross-entropy over the positions with a target (all of them but mlm's unchosen ones;
    their number is the same in every example, so ranks' means average to the global one)."""
    batch = {k: v.to(env.device, non_blocking=True) for k, v in batch.items()}
    inputs, targets = batch["inputs"], batch["targets"]
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if env.device.type == "cuda" and not env.sharded else contextlib.nullcontext())
    with autocast:
        if cfg.objective == "span":
            logits = model(inputs, batch["decoder_inputs"])
        else:
            positions = doc_ids = None
            if cfg.doc_mask:
                positions, doc_ids = document_layout(inputs, eos_id)
            logits = model(inputs, positions, doc_ids)
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def make_sources(specs: list[str], seq_len: int, holdout_shards: int = 0, holdout: bool = False,
                 data_format: str = "auto"):
    """Sources and weights from DIR[:WEIGHT] specs; with holdout_shards, the training part
    (holdout=False) or the held-out last shards (holdout=True) of each."""
    sources, weights = [], []
    for spec in specs:
        path, w = split_weight(spec)
        sources.append(TokenSource(path, seq_len, holdout_shards, holdout=holdout, data_format=data_format))
        weights.append(w)
    return sources, weights


def model_kind(objective: str) -> str:
    return {"mlm": "encoder", "span": "encoder-decoder"}.get(objective, "decoder")


def global_batch(cfg: TrainConfig, world: int) -> int:
    """Windows per optimizer step, all ranks together."""
    return cfg.batch_size * cfg.grad_accum * world


def resume_problem(cfg: TrainConfig, state: dict, world: int, tokenizer_sha256: str | None = None) -> str | None:
    """Why this run cannot continue the checkpoint whose trainer state is `state`, or None.

    The lr schedule must go on where it stopped: a changed --lr, --warmup, --schedule or
    --min-lr-ratio would make it jump, and so would a changed --steps (the schedule spans them)
    unless --extend keeps the checkpoint's schedule. The data order must go on where it stopped:
    any --nproc works as long as the global batch (batch-size x grad-accum x nproc) is the
    checkpoint's, since the loader position is a count of global samples.
    """
    sched, step = state.get("schedule", {}), state["step"]
    if state.get("objective", "clm") != cfg.objective:
        return (f"it was trained with --objective {state.get('objective', 'clm')}, this run asks for "
                f"--objective {cfg.objective}")
    theirs = state.get("tokenizer_sha256")
    if tokenizer_sha256 and theirs and theirs != tokenizer_sha256:
        return (f"it was trained with tokenizer {theirs[:12]}…, the data uses {tokenizer_sha256[:12]}…: "
                "re-tokenize the data with the checkpoint's tokenizer")
    for flag, key, value in (("lr", "peak", cfg.lr), ("warmup", "warmup", cfg.warmup),
                             ("schedule", "kind", cfg.schedule), ("min-lr-ratio", "min_ratio", cfg.min_lr_ratio)):
        if key in sched and sched[key] != value:
            return (f"--{flag} {value} is not the checkpoint's {sched[key]}: the lr schedule would jump at step "
                    f"{step}; resume with --{flag} {sched[key]}")
    total = sched.get("total")
    if total is not None and total != cfg.steps and not cfg.extend:
        return (f"the checkpoint's lr schedule spans --steps {total}; --steps {cfg.steps} would re-stretch it (the lr "
                f"jumps at step {step}): pass --extend to train to step {cfg.steps} keeping the checkpoint's schedule "
                f"(past step {total} the lr stays at its final value), or resume with --steps {total}")
    if cfg.steps <= step:
        return f"the checkpoint is at step {step}: --steps {cfg.steps} leaves nothing to train"
    theirs, mine = state.get("global_batch"), global_batch(cfg, world)
    if theirs is not None and theirs != mine:
        return (f"the checkpoint was trained with a global batch of {theirs} windows, this run's is {mine} "
                f"(batch-size {cfg.batch_size} x grad-accum {cfg.grad_accum} x nproc {world}): choose --batch-size "
                f"or --grad-accum so the product is {theirs} (any --nproc resumes then)")
    return None


def preflight(cfg: TrainConfig, world: int = 1) -> None:
    """What can be checked before any process starts: the data sources open, and a --resume can
    continue the newest checkpoint (`thresher train` runs this before torchrun, so a wrong --data
    is one line, not torchrun's report of a failed child)."""
    sources, _ = make_sources(cfg.data, cfg.seq_len, cfg.holdout_shards, data_format=cfg.data_format)
    make_objective(cfg, sources[0].tokenizer)
    if cfg.eval_data:
        make_sources(cfg.eval_data, cfg.seq_len, data_format=cfg.data_format)
    if not cfg.overwrite:
        try:
            checkpoint.claim(cfg.output, cfg.resume, overwrite=False)
        except FileExistsError as e:
            raise DataError(str(e)) from None
        if cfg.resume and (path := checkpoint.latest(cfg.output)):
            state = checkpoint.read_state(path)
            if problem := resume_problem(cfg, state, world, sources[0].tokenizer.get("sha256")):
                raise DataError(f"cannot resume {path}: {problem}")


def evaluate(model, cfg, eval_mix, eos_id, env) -> float:
    model.eval()
    loader = TokenLoader(eval_mix, cfg.batch_size, env.rank, env.world, limit=cfg.eval_batches,
                         objective=make_objective(cfg, eval_mix.tokenizer))
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            total += float(loss_on(model, batch, cfg, eos_id, env))
            n += 1
    model.train()
    return env.mean(total / max(n, 1))


def train(cfg: TrainConfig) -> list[dict]:
    env = Distributed(cfg.device)
    try:
        return _train(cfg, env)
    finally:
        env.close()


def _train(cfg: TrainConfig, env: Distributed) -> list[dict]:
    sources, weights = make_sources(cfg.data, cfg.seq_len, cfg.holdout_shards, data_format=cfg.data_format)
    mix = Mixture(sources, weights, seed=cfg.seed)
    tok = mix.tokenizer
    eval_mix = None
    if cfg.eval_data or cfg.holdout_shards:
        if cfg.eval_data:
            eval_sources, _ = make_sources(cfg.eval_data, cfg.seq_len, data_format=cfg.data_format)
        else:
            eval_sources, _ = make_sources(cfg.data, cfg.seq_len, cfg.holdout_shards, holdout=True,
                                           data_format=cfg.data_format)
        eval_mix = Mixture(eval_sources, seed=cfg.seed)
        if eval_mix.tokenizer.get("sha256") != tok.get("sha256"):
            raise DataError("eval data was tokenized with a different tokenizer than the training data")
    eos_id = int(tok["eos_id"])
    mcfg = MODELS[cfg.model].with_vocab(int(tok["vocab_size"]), max(cfg.seq_len, 16))
    model = build_model(cfg, mcfg, env)
    optimizer = build_optimizer(model, cfg)
    schedule = LRSchedule(cfg.lr, cfg.warmup, cfg.steps, cfg.schedule, cfg.min_lr_ratio)
    loader = TokenLoader(mix, cfg.batch_size, env.rank, env.world, num_workers=cfg.num_workers,
                         pin_memory=env.device.type == "cuda", objective=make_objective(cfg, tok))
    step, tokens_seen = 0, 0
    try:
        checkpoint.claim(cfg.output, cfg.resume, cfg.overwrite)
    except FileExistsError as e:
        raise DataError(str(e)) from None
    os.makedirs(cfg.output, exist_ok=True)
    resumed_from = None
    if cfg.resume and (path := checkpoint.latest(cfg.output)):
        if problem := resume_problem(cfg, checkpoint.read_state(path), env.world, tok.get("sha256")):
            raise DataError(f"cannot resume {path}: {problem}")
        state = checkpoint.load(path, model, optimizer)
        resumed_from = state["step"]
        if state["tokenizer_sha256"] != tok.get("sha256"):
            raise DataError(f"{path} was trained with tokenizer {state['tokenizer_sha256'][:12]}…, "
                            f"the data uses {str(tok.get('sha256'))[:12]}…")
        if state["model"] != mcfg.to_dict():
            raise DataError(f"{path} holds a different model configuration: {state['model']}")
        step, tokens_seen = state["step"], state["tokens_seen"]
        schedule.load_state_dict(state["schedule"])  # --extend: the checkpoint's span, not --steps
        loader.load_state_dict(state["loader"])
        if env.rank == 0:
            print(f"resumed from {path} at step {step} (world {state.get('world', '?')} -> {env.world})",
                  file=sys.stderr, flush=True)

    peak = peak_flops(torch.cuda.get_device_name(env.device)) if env.device.type == "cuda" else None
    log = MetricsLogger(os.path.join(cfg.output, "metrics.jsonl"), env.rank == 0,
                        mcfg.flops_per_token(cfg.seq_len), peak)
    if env.rank == 0 and step == 0:
        log.log({"event": "start", "model": cfg.model, "objective": cfg.objective,
                 "params": mcfg.n_params(kind=model_kind(cfg.objective)), "world": env.world,
                 "device": str(env.device), "windows": mix.n_windows, "seq_len": cfg.seq_len,
                 "global_batch_tokens": cfg.batch_size * cfg.grad_accum * env.world * cfg.seq_len})
    history: list[dict] = []
    batches = iter(loader)
    tokens_per_step = global_batch(cfg, env.world) * cfg.seq_len
    log.reset_clock(tokens_seen)
    model.train()
    t0, first_step, saved, record = time.perf_counter(), step, None, {}
    while step < cfg.steps:
        lr = schedule.apply(optimizer)
        total = 0.0
        for _ in range(cfg.grad_accum):
            loss = loss_on(model, next(batches), cfg, eos_id, env) / cfg.grad_accum
            loss.backward()
            total += float(loss.detach())
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += tokens_per_step
        elapsed = time.perf_counter() - t0
        record = {"step": step, "loss": env.mean(total), "lr": lr, "grad_norm": float(norm),
                  "tokens": tokens_seen, "elapsed_s": round(elapsed, 1),
                  "eta_s": round(elapsed / (step - first_step) * (cfg.steps - step), 1)}
        history.append(record)
        if cfg.log_every and (step % cfg.log_every == 0 or step == cfg.steps):
            log.log(dict(record), tokens=tokens_seen, world=env.world)
        if eval_mix is not None and cfg.eval_every and step % cfg.eval_every == 0:
            history[-1]["eval_loss"] = evaluate(model, cfg, eval_mix, eos_id, env)
            log.log({"step": step, "eval_loss": history[-1]["eval_loss"]})
            log.reset_clock(tokens_seen)
        if cfg.ckpt_every >= 0 and ((cfg.ckpt_every and step % cfg.ckpt_every == 0) or step == cfg.steps):
            state = {"step": step, "tokens_seen": tokens_seen, "schedule": schedule.state_dict(),
                     "loader": loader.state_dict(), "model": mcfg.to_dict(), "model_name": cfg.model,
                     "objective": cfg.objective, "model_kind": model_kind(cfg.objective),
                     "tokenizer_sha256": tok.get("sha256"), "tokenizer": tok, "world": env.world,
                     "global_batch": global_batch(cfg, env.world), "data": cfg.data}
            saved = checkpoint.save(cfg.output, step, model, optimizer, state, cfg.keep)
            if env.rank == 0:
                print(f"saved checkpoint step {step}: {saved}", file=sys.stderr, flush=True)
            log.reset_clock(tokens_seen)
        if cfg.stop_after and step >= cfg.stop_after:
            break
    log.close()
    if env.rank == 0:
        done = "done" if step >= cfg.steps else f"stopped (--stop-after {cfg.stop_after})"
        loss = f", loss {record['loss']:.4f}" if record else ""
        ran = f" ({step - first_step} this run, from step {resumed_from})" if resumed_from is not None else ""
        print(f"{done}: step {step} of {cfg.steps}{ran}, {tokens_seen:,} tokens{loss}, "
              f"{time.perf_counter() - t0:.1f} s; last checkpoint: {saved or checkpoint.latest(cfg.output) or 'none'}",
              file=sys.stderr, flush=True)
    return history


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        train(cfg)
    except DataError as e:
        print(f"thresher train: {e}", file=sys.stderr)
        return 2
    return 0


def end_rank(code: int) -> None:
    """End a torchrun rank whose work is on disk without the interpreter's finalization.

    Gloo runs collectives on its own threads, and a thread drops a finished collective's tensors
    after the waiting rank has already moved on. `destroy_process_group()` does not stop those
    threads while FSDP's device mesh still holds the group, so the drop could come while the
    interpreter was finalizing: the tensors' Python objects need the GIL, a finalizing interpreter
    ends any thread that asks for it, and ending a thread inside C++ code that may not throw is
    `std::terminate` ("terminate called without an active exception", exit -6, about one run in
    25 on a busy 2-core machine; seen in a core dump: ProcessGroupGloo::runLoop ->
    ~AsyncBarrierWork -> decref -> take_gil -> pthread_exit). Everything a rank writes is closed
    before this point (the checkpoint renamed after its barrier, metrics.jsonl closed), so the
    process flushes its streams and ends here; nothing is left to tear down.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
