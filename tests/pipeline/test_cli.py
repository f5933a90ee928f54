import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.rundir import safe_subpath
from pipeline.stages import STAGE_NAMES


def test_stages_lists_every_stage_in_order(capsys):
    assert main(["stages"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == list(STAGE_NAMES)


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--only", "extrakt"], "unknown stage 'extrakt'"),
        (["run", "--skip", "extract", "--only", "extract"], "cannot be used together"),
        (["run", "--input", "/no/such/file.warc.gz"], "matches no file"),
        (["run", "--input", "/no/such/*.warc.gz"], "matches no file"),
        (["run", "--workers", "0"], "runner.workers"),
        (["run", "--outptu=x"], "unknown option(s): --outptu"),
        (["run", "/no/such/config.yaml"], "config file not found"),
    ],
)
def test_run_fails_before_the_job_with_a_named_cause(args, message, capsys, tmp_path):
    assert main(args + ["--output", str(tmp_path / "out")] if "--output" not in args else args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "stats.json").exists()


def test_unknown_format(tmp_path, capsys):
    f = tmp_path / "data.csv"
    f.write_text("a,b\n")
    assert main(["run", "--input", str(f), "--output", str(tmp_path / "o")]) == 2
    assert "no file of a known format" in capsys.readouterr().err


def test_output_paths_cannot_escape():
    assert safe_subpath("/out", "documents") == "/out/documents"
    for bad in ("../x", "/etc", "a/../../b", ""):
        with pytest.raises(ValueError):
            safe_subpath("/out", bad)


@pytest.mark.slow
def test_console_script_runs_the_default_job(tmp_path):
    """`thresher run` with no arguments: the embedded sample into ./thresher-out, with a summary."""
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "kept" in proc.stdout and "ingest.http_status" in proc.stdout
    out = tmp_path / "thresher-out"
    assert (out / "stats.json").exists() and (out / "config.yaml").exists()
    assert list((out / "documents").glob("*.parquet"))
    assert not (out / ".staging").exists()
