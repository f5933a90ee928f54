"""`thresher`: one command for running jobs and looking at their results."""

from __future__ import annotations

import argparse
import os
import sys

from thresher.pipeline import __version__
from thresher.pipeline.config import ConfigError, load
from thresher.pipeline.jobserver import JobServerError
from thresher.pipeline.logs import configure
from thresher.transforms import stage as stage_registry


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thresher", description="Curate web crawls into LLM pre-training corpora.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (anywhere on the line)")
    parser.add_argument("--verbose", action="store_true",
                        help="show Beam's and gRPC's own log messages (anywhere on the line; hidden otherwise)")
    parser.add_argument("--version", action="version", version=f"thresher {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run a curation job (no arguments: the default recipe on the embedded sample)",
        description="Run a curation job. Options not listed here are passed to Beam unchanged "
        "(e.g. --project, --region, --temp_location for Dataflow).",
    )
    run.add_argument("config", nargs="*", metavar="CONFIG.yaml",
                     help="YAML config (default: built-in defaults); several are laid on each other in order, "
                          "e.g. a recipe then thresher calibrate's thresholds")
    run.add_argument("--input", nargs="+", action="extend", metavar="GLOB", help="input paths or globs (local, gs://, s3://)")
    run.add_argument("--output", metavar="DIR", help="run directory (default: ./thresher-out)")
    run.add_argument("--runner", metavar="NAME",
                     help="direct (default), spark or flink (a job server on an embedded master, started for the run), "
                          "portable, DataflowRunner, ...")
    run.add_argument("--workers", type=int, metavar="N",
                     help="local worker processes for the direct runner; Spark's local[N] / Flink's parallelism")
    run.add_argument("--only", metavar="A,B", help="run only these stages (ingest and writing always run)")
    run.add_argument("--skip", metavar="A,B", help="skip these stages")
    run.add_argument("--overwrite", action="store_true",
                     help="replace what the output folder holds (another run's results, or other files)")
    run.add_argument("--no-progress", action="store_true", help="no progress line while the job runs")
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

    cfgp = sub.add_parser("config", help="print the full configuration: the defaults, or a config file resolved")
    cfgp.add_argument("config", nargs="*", metavar="CONFIG.yaml",
                      help="YAML configs, laid on each other in order (default: the built-in defaults)")
    stg = sub.add_parser("stages", help="list the stages in recipe order")
    stg.add_argument("--markdown", action="store_true", help="the README's table: what each does, its drop reasons")

    js = sub.add_parser("jobserver", help="run Beam's Spark or Flink job server (built from Maven Central) and a worker pool",
                        description="Start Beam's job server for an engine, on its embedded master or a given one, "
                        "and a Python worker pool of this interpreter; print the flags that submit to them; stop "
                        "both on Ctrl-C. The job server's jars are resolved with Maven once and cached.")
    js.add_argument("engine", choices=["spark", "flink"])
    js.add_argument("--master", help="Spark: spark://HOST:PORT, local[N] (default local[WORKERS]) or standalone (a "
                    "master and a worker started here, on loopback); Flink: HOST:PORT or [local] (default)")
    js.add_argument("--workers", type=int, default=2, metavar="N", help="local[N] / Flink parallelism (default 2)")
    js.add_argument("--resolve", action="store_true", help="only resolve and cache the classpath, then exit")

    tok = sub.add_parser("tokenizer", help="tokenizer tools").add_subparsers(dest="tokenizer_command", required=True)
    train = tok.add_parser("train", help="train a byte-level BPE on a run's curated documents")
    train.add_argument("dir", help="a run directory (its documents/ are read)")
    train.add_argument("--vocab-size", type=int, required=True)
    train.add_argument("--output", required=True, metavar="tokenizer.json")
    train.add_argument("--eos-token", default="<|endoftext|>")
    train.add_argument("--max-docs", type=int, default=0, help="train on the first N documents (0: all)")

    clf = sub.add_parser("classifier", help="quality classifier tools").add_subparsers(dest="classifier_command",
                                                                                   required=True)
    ct = clf.add_parser("train", help="train a fastText quality classifier (floret) on positive and negative texts",
                        description="SRC is a run directory (its kept documents), RUN:lang=LANG, RUN:reason=REASON "
                        "(its dropped documents), a JSONL file or a Parquet file or folder. Prints held-out "
                        "precision, recall and ROC AUC, and writes a model card (MODEL.card.md) beside the model.")
    ct.add_argument("--positive", required=True, action="append", metavar="SRC", help="texts to score high (repeatable)")
    ct.add_argument("--negative", required=True, action="append", metavar="SRC", help="texts to score low (repeatable)")
    ct.add_argument("--output", required=True, metavar="MODEL.bin")
    ct.add_argument("--field", default="text", help="the text field of JSONL/Parquet sources (default: %(default)s)")
    ct.add_argument("--word-ngrams", type=int, default=2, help="default: %(default)s (DCLM's classifier: bigrams)")
    ct.add_argument("--dim", type=int, default=64, help="default: %(default)s")
    ct.add_argument("--epoch", type=int, default=20, help="default: %(default)s")
    ct.add_argument("--lr", type=float, default=0.5, help="default: %(default)s")
    ct.add_argument("--min-count", type=int, default=1, help="words seen fewer times are left out of the model "
                                                             "(smaller models; default: %(default)s)")
    ct.add_argument("--held-out", type=float, default=0.2, help="share of each class held out for the metrics "
                                                                 "(default: %(default)s)")
    ct.add_argument("--max-docs", type=int, default=0, help="at most N texts of each class, a seeded sample (0: all)")
    ct.add_argument("--lowercase", action="store_true", help="lower-case texts (then score with lowercase: true)")
    ct.add_argument("--seed", type=int, default=0, help="default: %(default)s")

    cal = sub.add_parser("calibrate", help="per-language thresholds from an annotate-mode run: each rule removes "
                                           "the share of every language it removes of the reference's",
                         description="Reads a run whose filters ran with annotate: true, picks for every language "
                         "with enough documents and every calibratable rule the threshold that removes the same "
                         "share of that language's documents as the rule removes of the reference language's, "
                         "prints old and new thresholds and kept shares, and writes a config fragment "
                         "(thresher run RECIPE.yaml THRESHOLDS.yaml).")
    cal.add_argument("dir", help="an annotate-mode run directory")
    cal.add_argument("--reference", default="en", help="the language whose shares the others match (default: %(default)s)")
    cal.add_argument("--output", required=True, metavar="THRESHOLDS.yaml")
    cal.add_argument("--min-docs", type=int, default=50,
                     help="languages with fewer documents keep their thresholds (default: %(default)s)")
    cal.add_argument("--method", choices=("sequential", "marginal"), default="sequential",
                     help="sequential (default): each rule matches the reference's share among the documents the "
                          "rules before it kept; marginal: among all documents")
    cal.add_argument("--min-z", type=float, default=2.0,
                     help="move a threshold only where the language's share differs from the reference's by this "
                          "many standard errors (default: %(default)s; 0: always)")
    cal.add_argument("--url-contains", metavar="TEXT",
                     help="calibrate on the documents whose URL contains TEXT (e.g. a site translated into "
                          "every language)")

    insp = sub.add_parser("inspect", help="report on a run directory: funnel, shards, languages, lengths")
    insp.add_argument("dir")
    insp.add_argument("--json", action="store_true", help="print the report as JSON")
    insp.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report with plots")
    insp.add_argument("--compare", metavar="DIR_B",
                      help="compare with another run: funnel, drops per reason, documents kept by one and not the other")
    insp.add_argument("--verify", action="store_true",
                      help="check shard checksums, manifest, dtype and token ids; exit 1 on any mismatch")
    smp = sub.add_parser("sample", help="print dropped documents for a reason, or kept ones (by language)")
    smp.add_argument("dir")
    smp.add_argument("--reason", metavar="REASON", help="a drop reason (stage.reason or reason); none: kept documents")
    smp.add_argument("--lang", help="only documents of this language")
    smp.add_argument("-n", type=int, default=5, help="how many (default 5)")
    smp.add_argument("--seed", type=int, default=0, help="another seed shows other documents")
    smp.add_argument("--chars", type=int, default=600, help="characters of text to show")

    tr = sub.add_parser("train", add_help=False,
                        help="pre-train a model on run directories' shards (FSDP, launched with torchrun)")
    tr.add_argument("--nproc", type=int, default=1, help="processes (GPUs, or CPU ranks with gloo)")
    tr.add_argument("-h", "--help", action="store_true")

    ab = sub.add_parser("ablate", help="curate each recipe, train the same model on each, compare eval loss "
                                       "on one held-out set")
    ab.add_argument("recipes", nargs="*", metavar="RECIPE.yaml", help="the recipes to compare")
    ab.add_argument("--input", action="append", help="input for every recipe (default: each recipe's own)")
    ab.add_argument("--runs", nargs="+", metavar="DIR", help="compare existing run directories instead of recipes")
    ab.add_argument("--eval-data", metavar="DIR",
                    help="a run directory to evaluate on (default: a held-out share of the input, extracted, not filtered)")
    ab.add_argument("--output", required=True, help="the ablation's folder (runs/, eval/, train/, ablation.html)")
    ab.add_argument("--tokens", type=int, required=True, help="training tokens per recipe (the same for all)")
    ab.add_argument("--model", default="tiny", help="model size (default: %(default)s)")
    ab.add_argument("--objective", default="clm", choices=("clm", "mlm", "span", "fim"),
                    help="pre-training objective (default: %(default)s)")
    ab.add_argument("--nproc", type=int, default=1, help="training processes (default: %(default)s)")
    ab.add_argument("--seq-len", type=int, default=256, help="default: %(default)s")
    ab.add_argument("--batch-size", type=int, default=8, help="per process (default: %(default)s)")
    ab.add_argument("--lr", type=float, help="peak learning rate (default: the trainer's for the model size)")
    ab.add_argument("--evals", type=int, default=4, help="evaluations (and checkpoints) per training (default: %(default)s)")
    ab.add_argument("--eval-batches", type=int, default=8, help="batches per evaluation (default: %(default)s)")
    ab.add_argument("--holdout", type=float, default=0.05, help="share of the input held out (default: %(default)s)")
    ab.add_argument("--seed", type=int, default=0, help="model init, data order and holdout (default: %(default)s)")

    ex = sub.add_parser("export", help="write a training checkpoint as a Hugging Face Llama model (safetensors)")
    ex.add_argument("checkpoint", help="a checkpoint (step-NNNNNNN) or a `thresher train --output` (its newest)")
    ex.add_argument("--output", required=True, help="the model folder to write")
    ex.add_argument("--tokenizer", metavar="tokenizer.json",
                    help="the data's tokenizer, when it is neither the default nor at the path the run recorded")

    sv = sub.add_parser("serve", help="the service: submit, watch, inspect and compare runs in a browser and over HTTP",
                        description="Start the service (pip install 'thresher[serve]'): a job queue running `thresher "
                        "run` processes, a JSON API (/openapi.json) and web pages. Jobs and runs live under --home.")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default: %(default)s, this machine only; any other needs a token)")
    sv.add_argument("--port", type=int, default=8080, help="(default: %(default)s)")
    sv.add_argument("--home", default="thresher-home", metavar="DIR",
                    help="the jobs database, logs and run directories (default: ./%(default)s)")
    sv.add_argument("--root", action="append", default=[], metavar="DIR",
                    help="a folder (or gs://, s3:// prefix) jobs may read inputs from and write runs to, besides "
                         "--home (repeatable); paths elsewhere are refused")
    sv.add_argument("--token-file", metavar="FILE",
                    help="a file holding the access token (or set THRESHER_TOKEN); required to bind beyond loopback")
    sv.add_argument("--max-jobs", type=int, default=2, metavar="N", help="jobs running at once (default: %(default)s)")
    sv.add_argument("--run-sample", action="store_true",
                    help="queue a run of the embedded sample on the first start (a home without jobs)")
    return parser


def _apply_overrides(cfg, args) -> None:
    if args.input:
        cfg.input = list(args.input)
    if args.output:
        cfg.output = args.output
    if args.runner:
        cfg.runner.name = args.runner
    if args.workers is not None:
        cfg.runner.workers = args.workers
    only = _stage_list(args.only, "--only")
    skip = _stage_list(args.skip, "--skip")
    if only and skip:
        raise ConfigError("--only and --skip cannot be used together")
    for stage in stage_registry.stages():
        if not stage.optional:
            continue
        section = getattr(cfg.stages, stage.name)
        if only:
            section.enabled = stage.name in only
        elif stage.name in skip:
            section.enabled = False
    cfg.validate()


def _stage_list(value: str | None, flag: str) -> list[str]:
    if not value:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    known = stage_registry.names()
    for n in names:
        if n not in known:
            raise ConfigError(f"{flag}: unknown stage '{n}' (stages: {', '.join(known)})")
    return names


def _summary(result) -> str:
    from thresher.pipeline.inspect import funnel_lines

    s = result.stats
    files = s["input"]["files"]
    lines = [f"Thresher: {s['totals']['read']:,} records read from {files} file{'s' if files != 1 else ''} "
             f"({s['input']['bytes'] / 1e6:,.1f} MB) in {result.seconds:,.1f} s", *funnel_lines(s),
             f"  output   {result.output}"]
    return "\n".join(lines)


def cmd_run(args, beam_flags: list[str]) -> int:
    from thresher.pipeline import standby
    from thresher.pipeline.heap import tune_heap

    tune_heap()  # this process is the local runner, which holds every shuffle (pipeline/heap.py)

    cfg = load(args.config)
    _apply_overrides(cfg, args)
    standby.prestart(cfg.runner.name, cfg.runner.workers)  # local workers import while Beam does here
    from thresher.pipeline.run import run  # Beam is slow to import: only for commands that need it

    if not args.quiet:
        print(f"thresher run: {', '.join(cfg.input) if cfg.input else 'embedded sample'} -> {cfg.output} "
              f"({cfg.runner.name}, {cfg.runner.workers} worker{'s' if cfg.runner.workers > 1 else ''})", file=sys.stderr)
    result = run(cfg, beam_flags, show_progress=not (args.no_progress or args.quiet), overwrite=args.overwrite,
                 quiet=args.quiet)
    if result.stats.get("dry_run"):
        print(f"dry run: the {result.stats['runner']} job was built and validated with "
              f"{len(result.stats['stages'])} stages; nothing was submitted or written")
    elif not args.quiet:
        print(_summary(result))
    skipped = result.stats.get("run", {}).get("skipped_inputs") or []
    if skipped and not args.quiet:
        names = ", ".join(os.path.basename(p) for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        print(f"thresher run: skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} of no known format: {names}",
              file=sys.stderr)
    for problem in result.problems:
        print(f"thresher: error: {problem}", file=sys.stderr)
    global _JOB_DONE
    _JOB_DONE = True
    return 1 if result.problems else 0


def stage_table() -> str:
    """The stages as a Markdown table (the README's), from the registry."""
    def codes(names) -> str:
        return ", ".join(f"`{n}`" for n in names)

    lines = ["| stage | what it does | drop reasons |", "| --- | --- | --- |"]
    for s in stage_registry.stages():
        reasons = codes(s.reasons) or "(none)"
        if s.errors:
            reasons += f"; errors: {codes(s.errors)}"
        lines.append(f"| `{s.name}` | {s.details or s.description} | {reasons} |")
    return "\n".join(lines)


def cmd_stages(args) -> int:
    if args.markdown:
        print(stage_table())
        return 0
    stages = stage_registry.stages()
    width = max(len(s.name) for s in stages)
    for s in stages:
        flag = "" if s.optional else "  (always runs)"
        print(f"{s.name:<{width}}  {s.description}{flag}")
    return 0


def cmd_jobserver(args) -> int:
    import time

    from thresher.pipeline import jobserver

    if args.resolve:
        jars = jobserver.classpath(args.engine, log=lambda m: print(m, file=sys.stderr))
        size = sum(os.path.getsize(j) for j in jars)
        print(f"{args.engine} job server (Beam {jobserver.BEAM_JOB_SERVER_VERSION}): {len(jars)} jars, "
              f"{size / 1e6:,.0f} MB, cached in {jobserver.cache_dir()}")
        return 0
    try:
        with jobserver.engine(args.engine, args.workers, args.master, log=lambda m: print(m, file=sys.stderr)) as flags:
            print("submit with: thresher run --runner portable " + " ".join(flags), flush=True)
            print("(Ctrl-C stops the job server and the worker pool)", file=sys.stderr)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("thresher jobserver: stopped", file=sys.stderr)
        return 0


def cmd_tokenizer_train(args) -> int:
    import glob
    import os

    import pyarrow.parquet as pq

    from thresher.transforms.tokenize import MIN_VOCAB, train_bpe

    files = sorted(glob.glob(os.path.join(args.dir, "documents", "**", "*.parquet"), recursive=True))
    if not files:
        raise ConfigError(f"{args.dir}: no documents/*.parquet (is it a run directory?)")
    if args.vocab_size < MIN_VOCAB:
        raise ConfigError(f"--vocab-size must be at least {MIN_VOCAB} (256 bytes, EOS and the trainer's "
                          f"{MIN_VOCAB - 257} reserved special tokens)")

    def texts():
        n = 0
        for f in files:
            for t in pq.read_table(f, columns=["text"]).column("text").to_pylist():
                if args.max_docs and n >= args.max_docs:
                    return
                n += 1
                yield t

    tok = train_bpe(texts(), args.vocab_size, args.eos_token)
    tok.save(args.output)
    print(f"trained a {tok.get_vocab_size()}-token byte-level BPE on {args.dir} -> {args.output}")
    return 0


def cmd_calibrate(args) -> int:
    from thresher.pipeline.calibrate import calibrate, read_rows, render, thresholds_yaml

    if args.min_docs < 1:
        raise ConfigError("--min-docs must be at least 1")
    rows, cfg = read_rows(args.dir, args.url_contains)
    changes, report, _ = calibrate(rows, cfg, args.reference, args.min_docs, args.method, args.min_z)
    print(render(changes, report, args.reference))
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(thresholds_yaml(changes, args.dir, args.reference))
    print(f"\nthresholds for {len(report) - 1} language(s), {len(changes)} moved -> {args.output}")
    return 0


def cmd_classifier_train(args) -> int:
    from thresher.pipeline.texts import read_texts
    from thresher.transforms.classifier import TrainParams, model_card, train
    from thresher.transforms.hashing import seeded_fraction

    if not 0 < args.held_out < 1:
        raise ConfigError("--held-out must be between 0 and 1")

    def gather(sources: list[str]) -> list[str]:
        texts = [t for src in sources for t in read_texts(src, args.field)]
        if args.max_docs and len(texts) > args.max_docs:  # a seeded sample, the same on every call
            texts = sorted(texts, key=lambda t: seeded_fraction(t, args.seed))[:args.max_docs]
        return texts

    pos, neg = gather(args.positive), gather(args.negative)
    params = TrainParams(word_ngrams=args.word_ngrams, dim=args.dim, epoch=args.epoch, lr=args.lr, min_count=args.min_count,
                         held_out=args.held_out, seed=args.seed, lowercase=args.lowercase)
    try:
        result = train(pos, neg, args.output, params)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    sources = {"positive": ", ".join(args.positive), "negative": ", ".join(args.negative)}
    card = os.path.splitext(args.output)[0] + ".card.md"
    with open(card, "w", encoding="utf-8") as fh:
        fh.write(model_card(args.output, sources, result, params))
    m, c = result["held_out_metrics"], result["counts"]
    print(f"trained on {c['train']['positives']:,} positives and {c['train']['negatives']:,} negatives -> {args.output}")
    print(f"held out ({c['held_out']['positives']:,} + {c['held_out']['negatives']:,}), score >= 0.5: "
          f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  accuracy {m['accuracy']:.3f}  AUC {m['auc']:.3f}")
    print(f"model card: {card}")
    return 0


def cmd_inspect(args) -> int:
    from thresher.pipeline.inspect import build_report, render_console, render_html, verify_run

    details = bool(args.html or args.json)  # read from the rows: the console report does without
    if args.compare:
        from thresher.pipeline.report import compare, render_compare_console

        a, b = build_report(args.dir, details=False), build_report(args.compare, details=False)
        report = {"compare": compare(args.dir, args.compare, a, b)}
        text = render_compare_console(report["compare"])
    else:
        report = build_report(args.dir, details)
        text = None
    problems = verify_run(args.dir) if args.verify else []
    if args.verify:
        report["verify"] = {"ok": not problems, "problems": problems}
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(render_html(report))
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    elif args.html:  # the report went to the file: say where, not the text again
        print(f"thresher inspect: wrote {os.path.abspath(args.html)} ({os.path.getsize(args.html) / 1024:,.0f} KB; "
              "one file, opens without a network)")
    else:
        print(text if text is not None else render_console(report))
    if problems:
        for p in problems:
            print(f"thresher inspect: verify: {p}", file=sys.stderr)
        return 1
    return 0


def cmd_sample(args) -> int:
    import os

    from thresher.pipeline.sample import pick, reasons, render

    if not os.path.exists(os.path.join(args.dir, "stats.json")):
        raise ConfigError(f"{args.dir}: no stats.json (is it a run directory?)")
    known = reasons(args.dir)
    if args.reason and not any(k == args.reason or k.endswith("." + args.reason) for k in known):
        listing = ", ".join(f"{k} ({v})" for k, v in known.items()) or "none"
        raise ConfigError(f"no document was dropped for {args.reason!r} in this run; reasons: {listing}")
    rows = pick(args.dir, args.reason, args.lang, args.n, args.seed)
    if not rows:
        print("no such documents" + (" in rejected/ (rejected_sample may have left them out)" if args.reason else ""))
        return 1
    print(render(rows, args.chars))
    return 0


def cmd_train(args, trainer_args: list[str]) -> int:
    """Launch ``torchrun --nproc_per_node P -m thresher.trainer ARGS`` (the trainer's own flags pass through)."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("torch") is None:
        print("thresher train: torch is not installed: pip install 'thresher[train]'", file=sys.stderr)
        return 2
    if args.help:
        print("thresher train [--nproc P] TRAINER OPTIONS (launched with torchrun)\n", file=sys.stderr)
        return subprocess.call([sys.executable, "-m", "thresher.trainer", "--help"])
    if args.nproc < 1:
        print("thresher train: --nproc must be >= 1", file=sys.stderr)
        return 2
    from thresher.trainer.data import DataError
    from thresher.trainer.train import parse_args, preflight

    try:
        preflight(parse_args(trainer_args), args.nproc)  # a bad flag, --data or --resume: one line, before torchrun
    except DataError as e:
        print(f"thresher train: {e}", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "thresher.trainer", *trainer_args]
    return subprocess.call(cmd)


def cmd_ablate(args) -> int:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        print("thresher ablate: torch is not installed: pip install 'thresher[train]'", file=sys.stderr)
        return 2
    from thresher.pipeline.ablate import ablate, render_table

    if args.tokens < 1 or args.nproc < 1 or args.evals < 1 or not 0 < args.holdout < 1:
        raise ConfigError("--tokens, --nproc and --evals must be positive, --holdout between 0 and 1")
    res = ablate(args)
    print(render_table(res))
    print(f"ablation page: {os.path.join(os.path.abspath(args.output), 'ablation.html')}")
    return 0


def cmd_export(args) -> int:
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("safetensors") is None:
        print("thresher export: torch and safetensors are needed: pip install 'thresher[train]'", file=sys.stderr)
        return 2
    from thresher.trainer.data import DataError
    from thresher.trainer.export import export

    try:
        done = export(args.checkpoint, args.output, args.tokenizer)
    except DataError as e:
        print(f"thresher export: {e}", file=sys.stderr)
        return 2
    tok = "tokenizer.json included" if done["tokenizer"] else "no tokenizer found (pass --tokenizer)"
    print(f"exported {done['checkpoint']} (step {done['step']}, {done['params']:,} parameters) to {done['output']}: "
          f"model.safetensors, config.json (Llama), {tok}")
    return 0


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(Thresher's arguments, the rest: Beam's flags for `run`, the trainer's for `train`)."""
    parser = _build_parser()
    if argv[:1] == ["run"] and not {"-h", "--help"} & set(argv):
        from thresher.pipeline.options import split_run_args  # reads Beam's option classes

        run_parser = parser._subparsers._group_actions[0].choices["run"]
        ours, beam_flags = split_run_args(argv[1:], run_parser)
        return parser.parse_args(["run", *ours]), beam_flags
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args, rest


def cmd_serve(args) -> int:
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn")):
        raise ConfigError("thresher serve needs the [serve] extra: pip install 'thresher[serve]'")
    from thresher.pipeline.service import serve
    from thresher.pipeline.service.app import Settings

    token = os.environ.get("THRESHER_TOKEN", "")
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as e:
            raise ConfigError(f"--token-file: {e}") from None
    return serve(Settings(home=args.home, host=args.host, port=args.port, token=token, roots=args.root,
                          max_jobs=args.max_jobs, run_sample=args.run_sample))


# Set by `thresher run` once its job is published and reported: the command then ends without the
# interpreter's teardown, which took 0.7 s after every run (Beam's runner, a few hundred MB of objects
# freed one by one), a tenth of a run of the embedded sample.
_JOB_DONE = False


def entry() -> None:
    """The `thresher` command (`main` is the same without ending the process)."""
    code = main()
    if _JOB_DONE:
        from thresher.pipeline.worker import quick_exit

        quick_exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug, verbose = "--debug" in argv, "--verbose" in argv
    argv = [a for a in argv if a not in ("--debug", "--verbose")]
    configure(verbose=verbose)
    try:
        args, rest = parse(argv)
        if args.command == "run":
            return cmd_run(args, rest)
        if args.command == "stages":
            return cmd_stages(args)
        if args.command == "config":
            print(load(args.config).to_yaml(), end="")
            return 0
        if args.command == "jobserver":
            return cmd_jobserver(args)
        if args.command == "tokenizer":
            return cmd_tokenizer_train(args)
        if args.command == "calibrate":
            return cmd_calibrate(args)
        if args.command == "classifier":
            return cmd_classifier_train(args)
        if args.command == "inspect":
            return cmd_inspect(args)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "train":
            return cmd_train(args, rest)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "ablate":
            return cmd_ablate(args)
        if args.command == "serve":
            return cmd_serve(args)
    except ConfigError as e:
        print(f"thresher: error: {e}", file=sys.stderr)
        return 2
    except JobServerError as e:  # its message ends with the job server's last log lines
        print(f"thresher: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `thresher sample ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout again at exit
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("thresher: interrupted; the previous output is intact (rerun the command to do the job)", file=sys.stderr)
        return 130
    except Exception as e:  # a failure we did not foresee, or the runner's: one line, the traceback on request
        if debug:
            raise
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        print(f"thresher: error: {type(e).__name__}: {lines[-1] if lines else ''} (--debug shows the traceback)",
              file=sys.stderr)
        return 1
    return 1


if __name__ == "__main__":
    entry()
