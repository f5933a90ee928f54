"""Issue "No surprises": failures a scheduler notices, mistakes named before the job, and a run
directory that is looked at without tracebacks."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from thresher.pipeline.cli import main
from thresher.pipeline.config import ConfigError, from_dict

OFF = ["--skip", "langid,gopher_repetition,gopher_quality,c4,fineweb,dedup_minhash"]


def test_unknown_language_codes_are_a_config_error():
    with pytest.raises(ConfigError, match=r"stages\.langid\.keep\[1\]': 'english' is not a language code lid\.176 "
                                          r"knows \(known: .*\ben\b"):
        from_dict({"stages": {"langid": {"keep": ["de", "english"]}}})
    assert from_dict({"stages": {"langid": {"keep": ["en", "de", "nb", "zh"]}}}).stages.langid.keep == ["en", "de", "nb", "zh"]


@pytest.mark.slow
def test_a_run_where_every_record_errored_exits_non_zero(tmp_path, capsys):
    bad = tmp_path / "x.warc.gz"
    bad.write_bytes(os.urandom(20_000))
    out = tmp_path / "run"
    assert main(["run", "--input", str(bad), "--output", str(out), "-q", "--no-progress", *OFF]) == 1
    err = capsys.readouterr().err
    assert "errored" in err and "max_error_fraction" in err
    stats = json.loads((out / "stats.json").read_text())  # published: rejected/ explains the errors
    assert stats["totals"]["errored"] == stats["totals"]["read"] > 0


@pytest.mark.slow
def test_an_empty_input_exits_non_zero_and_leaves_readable_empty_tables(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "run"
    assert main(["run", "--input", str(empty), "--output", str(out), "-q", "--no-progress", *OFF]) == 1
    assert "read nothing" in capsys.readouterr().err
    for folder in ("documents", "rejected"):
        files = sorted((out / folder).glob("*.parquet"))
        assert files and pq.read_table(files[0]).num_rows == 0, folder
    import polars as pl

    assert pl.read_parquet(str(out / "documents" / "*.parquet")).height == 0


@pytest.mark.slow
def test_skipped_files_of_a_folder_are_named(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.jsonl").write_text(json.dumps({"id": "a", "text": "Some text."}) + "\n")
    (tmp_path / "in" / "notes.txt").write_text("not an input")
    out = tmp_path / "run"
    assert main(["run", "--input", str(tmp_path / "in"), "--output", str(out), "--no-progress", *OFF]) == 0
    assert "skipped 1 file of no known format: notes.txt" in capsys.readouterr().err
    assert json.loads((out / "stats.json").read_text())["run"]["skipped_inputs"] == [str(tmp_path / "in" / "notes.txt")]


def test_inspect_of_what_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"thresher: error: {tmp_path / 'nope'}: no such run directory",
                   f"thresher: error: {tmp_path}: not a run directory (no stats.json)"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    (d / "docs.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "text": f"Document {i}. " * 40}) + "\n"
                                          for i in range(30)))
    assert main(["run", "--input", str(d / "docs.jsonl"), "--output", str(d / "run"), "-q", "--no-progress", *OFF]) == 0
    return d / "run"


@pytest.mark.slow
def test_verify_names_a_truncated_shard(small_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    shard = sorted((run / "shards").glob("*.arrow"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    capsys.readouterr()
    assert main(["inspect", str(run), "--verify"]) == 1
    err = capsys.readouterr().err
    assert shard.name in err and "Traceback" not in err


@pytest.mark.slow
def test_sample_into_a_closed_pipe_is_quiet(small_run):
    proc = subprocess.run(f"{sys.executable} -m thresher.pipeline sample {small_run} -n 30 | head -n 1",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() and proc.stderr == "", proc.stderr[-2000:]


def test_s3_without_the_aws_extra_is_named(tmp_path, capsys):
    pytest.importorskip("apache_beam")
    import importlib.util

    if importlib.util.find_spec("boto3") is not None:
        pytest.skip("the [aws] extra is installed here")
    assert main(["run", "--input", "s3://bucket/crawl/*.warc.gz", "--output", str(tmp_path / "o")]) == 2
    assert "s3:// paths need the [aws] extra: pip install 'thresher[aws]'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_failure_of_the_runner_is_one_line_and_debug_shows_the_traceback(tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text(json.dumps({"id": "a", "text": "Some text."}) + "\n")
    cmd = [sys.executable, "-m", "thresher.pipeline", "run", "--input", str(data), "--output", str(tmp_path / "o"),
           "--runner", "NoSuchRunner", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "thresher: error: ValueError: Unexpected pipeline runner: NoSuchRunner" in proc.stderr
    assert "Traceback" not in proc.stderr and "(--debug shows the traceback)" in proc.stderr
    assert not (tmp_path / "o" / ".staging").exists()  # a failed job leaves no staging folder
    proc = subprocess.run([*cmd, "--debug"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_the_summary_tells_pages_from_records_and_errors_from_drops():
    from thresher.pipeline.tools.inspection import funnel_lines

    drops = {f"gopher_quality.rule_{i:02d}": 20 - i for i in range(15)}
    by_reason = {"ingest.not_response": 421, "gopher_quality.gopher_below_alpha_threshold": 107, **drops,
                 "ingest.gzip_truncated": 1}
    stats = {"totals": {"read": 841 + sum(drops.values()), "kept": 100, "errored": 1,
                        "dropped": 421 + 107 + sum(drops.values()), "by_reason": by_reason},
             "stages": {"ingest": {"errored": {"gzip_truncated": 1}}, "gopher_quality": {"errored": {}}}}
    lines = funnel_lines(stats)
    text = "\n".join(lines)
    docs = stats["totals"]["read"] - 421
    assert lines[0] == f"  421 WARC records are not pages (request, metadata, warcinfo); {docs:,} documents entered curation"
    assert f"kept     100  ({100 / docs:.1%} of {docs:,} documents)" in text
    assert "not_response" not in text  # not a drop of a page
    # the one error is listed apart, though the drops were cut at 12
    assert "... 4 more in stats.json" in text
    errors = lines[lines.index("  errors by reason:") + 1:]
    assert [e.split() for e in errors] == [["ingest.gzip_truncated", "1"]]
    # counts line up under the longest reason
    rows = [line for line in lines if line.startswith("    ") and not line.startswith("    ...")]
    assert len({len(r) for r in rows if "gzip" not in r}) == 1


def test_version(capsys):
    from thresher.pipeline import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"thresher {__version__}"


def test_a_filter_drop_says_which_threshold_fired_and_sample_shows_it():
    from thresher.pipeline.tools.sample import render
    from thresher.transforms.document import Drop
    from thresher.transforms.filters.base import FilterStage
    from thresher.transforms.filters.fineweb import FineWebQuality
    from thresher.transforms.filters.gopher import GopherQuality

    out = FilterStage(GopherQuality())({"text": "Too short to keep.", "lang": "en"})
    assert isinstance(out, Drop) and out.reason == "gopher_short_doc"
    assert out.detail == "words 4 < 50"
    out = FilterStage(FineWebQuality())({"text": "no punctuation here\nnor here\nor here at all\n" * 3, "lang": "en"})
    assert out.reason == "line_punct_ratio" and out.detail == "line_punct_ratio 0 < 0.12"
    row = {"id": "d1", "url": "http://x", "stage": "gopher_quality", "reason": "gopher_below_alpha_threshold",
           "detail": "alpha_words 0.779 < 0.8", "text": "Some text",
           "signals": json.dumps({"lang": "fr", "gopher_quality_alpha_words": 0.779, "gopher_quality_words": 6127})}
    lines = render([row]).splitlines()
    assert lines[1:3] == ["   gopher_quality.gopher_below_alpha_threshold", "   >> alpha_words 0.779 < 0.8"]
    assert lines[3].strip().startswith("gopher_quality_alpha_words=0.779, gopher_quality_words=6127, lang=fr")


def test_inspect_html_says_where_it_wrote_the_report(small_run, tmp_path, capsys):
    page = tmp_path / "r.html"
    assert main(["inspect", str(small_run), "--html", str(page)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"thresher inspect: wrote {page} (") and "Funnel" not in out
    assert page.read_text().startswith("<!DOCTYPE html>")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the run's processes in /proc")
@pytest.mark.parametrize("workers,when", [(1, "working"), (2, "working"), (1, "a child starts"),
                                          (2, "a child starts")])
def test_ctrl_c_is_one_line_and_exit_130(tmp_path, workers, when):
    """SIGINT to the process group, as a terminal sends it, while the job works or at the moment
    its first child process (a worker, an extraction child) starts: one line, exit 130, no
    traceback from the driver, the workers or the extraction children (a Python interrupted while
    it imports its site module prints "Fatal Python error"), no staging left, and no process of
    the run still alive."""
    import signal
    import time

    from thresher.pipeline.engines.run import embedded_sample
    from thresher.pipeline.processes import descendants

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):  # long enough to be interrupted in the middle
        (inputs / f"copy{i}.warc.gz").symlink_to(embedded_sample())
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "thresher.pipeline", "run", "--input", str(inputs), "--output",
                             str(out), "--workers", str(workers), "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    if when == "working":
        while not ((out / ".staging").exists() and seen) and proc.poll() is None and time.monotonic() < deadline:
            seen |= set(descendants(proc.pid))
            time.sleep(0.1)
        time.sleep(3)  # the job is reading and filtering now
        seen |= set(descendants(proc.pid))
    else:
        while not seen and proc.poll() is None and time.monotonic() < deadline:
            seen |= set(descendants(proc.pid))
            time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()
    assert seen, "the run started no child process"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "thresher: interrupted; the previous output is intact (rerun the command to do the job)"], err
    # nothing half-written stays: only the finished input ranges' checkpoints, for the rerun
    staged = sorted(p.name for p in (out / ".staging").iterdir()) if (out / ".staging").exists() else []
    assert staged in ([], ["resume"]) and not (out / "stats.json").exists(), staged
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in seen), "a process of the interrupted run is still alive"
    try:
        os.killpg(proc.pid, 0)
        raise AssertionError("a process of the interrupted run's group is still alive")
    except ProcessLookupError:
        pass


def test_the_funnel_gives_each_word_one_meaning_and_counts_in_the_singular():
    """`dropped` is documents dropped, never WARC records that are not pages; one document is
    "1 document" (issue 39, item 6)."""
    from thresher.pipeline.tools.inspection import funnel_lines, render_console

    stats = {"totals": {"read": 3, "kept": 1, "dropped": 2, "errored": 0,
                        "by_reason": {"ingest.not_response": 2}},
             "stages": {"ingest": {"in": 3, "kept": 1, "dropped": {"not_response": 2}, "errored": {}}}}
    lines = funnel_lines(stats)
    assert "1 document entered curation" in lines[0]
    assert lines[1].split() == ["kept", "1", "(100.0%", "of", "1", "document)"]
    assert lines[2].split() == ["dropped", "0"]
    report = {"dir": "d", "totals": stats["totals"], "by_reason": stats["totals"]["by_reason"],
              "funnel": [{"stage": "ingest", "in": 3, "kept": 1, "dropped": {"not_response": 2}, "errored": {}}]}
    text = render_console(report)
    assert "Funnel: 3 records read -> 1 kept\n" in text and "2 dropped" not in text


def test_compare_lists_stages_in_recipe_order():
    """A stage only run B has (quality_classifier) sits where the recipe runs it, not last (issue 39, item 6)."""
    from thresher.pipeline.tools.report import stage_order

    a = ["ingest", "gopher_quality", "dedup_exact", "tokenize"]
    b_only = ["quality_classifier", "my_plugin_stage"]
    assert stage_order(a + b_only) == ["ingest", "gopher_quality", "quality_classifier", "dedup_exact", "tokenize",
                                       "my_plugin_stage"]
