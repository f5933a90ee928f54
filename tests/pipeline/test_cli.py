import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from thresher.pipeline.cli import main
from thresher.pipeline.graph.rundir import safe_subpath
from tests.stages import STAGE_NAMES


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
        (["run", "--workers", "4", "--memory-mb", "1500"], "runner.memory_mb: 1,500 MB cannot hold a local run of 4"),
        (["run", "--memory-mb=-1"], "'runner.memory_mb': must be >= 0"),
        (["run", "--outptu=x"], "unknown option --outptu (did you mean --output?)"),
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


def decoy_packages(folder):
    """A user's own `pipeline`, `transforms` and `trainer` packages (common names) in `folder`."""
    for name in ("pipeline", "transforms", "trainer"):
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text("raise ImportError('a user package, not Thresher')\n")


def test_bare_names_are_not_thresher(tmp_path):
    """Thresher installs as thresher.*: the bare names stay free for other distributions."""
    code = "import importlib.util as u; print([u.find_spec(n) is None for n in ('pipeline', 'transforms', 'trainer')])"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[True, True, True]"


@pytest.mark.slow
def test_console_script_runs_the_default_job(tmp_path):
    """`thresher run` with no arguments: the embedded sample into ./thresher-out, with a summary; from
    a folder holding packages named like Thresher's folders (extraction's child process and the
    workers import Thresher's own, by namespace)."""
    decoy_packages(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "thresher.pipeline", "run"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "kept" in proc.stdout and "ingest.http_status" in proc.stdout
    stats = json.loads((tmp_path / "thresher-out" / "stats.json").read_text())
    assert stats["stages"]["extract"]["kept"] > 300 and not stats["stages"]["extract"]["errored"]
    out = tmp_path / "thresher-out"
    assert (out / "stats.json").exists() and (out / "config.yaml").exists()
    assert list((out / "documents").glob("*.parquet"))
    assert not (out / ".staging").exists()


@pytest.mark.slow
def test_inspect_sample_and_help_do_not_import_beam(tmp_path):
    """Looking at a run starts fast: `inspect`, `sample` and `--help` never import Beam."""
    from thresher.pipeline.config import from_dict
    from thresher.pipeline.engines.run import run
    from thresher.transforms import stage as registry

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": f"Document number {i}."}) + "\n" for i in range(5)))
    off = {s.name: {"enabled": False} for s in registry.stages() if s.optional and s.name != "tokenize"}
    out = tmp_path / "run"
    run(from_dict({"input": [str(data)], "output": str(out), "stages": off}))
    probe = ("import sys\nfrom thresher.pipeline.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
             "except SystemExit as e:\n    code = e.code\n"
             "assert 'apache_beam' not in sys.modules, 'Beam was imported'\nsys.exit(code)")
    for args in (["inspect", str(out)], ["inspect", str(out), "--verify"], ["sample", str(out), "-n", "2"],
                 ["stages"], ["--help"], ["run", "--help"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])


def test_the_version_has_one_source():
    """pyproject.toml's version, read from the installed metadata; no module writes it again."""
    import importlib.metadata

    import thresher.pipeline

    root = Path(__file__).resolve().parents[2]
    declared = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(), re.M).group(1)
    assert thresher.pipeline.__version__ == importlib.metadata.version("thresher") == declared
    for folder in ("pipeline", "transforms", "trainer"):
        for path in (root / folder).rglob("*.py"):
            assert not re.search(r"__version__\s*=\s*['\"]\d+\.\d+", path.read_text()), path  # a version literal


ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def test_the_readme_stage_table_is_the_registry(capsys):
    assert main(["stages", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    assert table in README, "README's stage table: regenerate it with `thresher stages --markdown`"


def test_the_docs_config_block_shows_the_defaults(capsys):
    """Every key docs/configuration.md's config block shows has its default value, and every stage is there."""
    assert main(["config"]) == 0
    defaults = yaml.safe_load(capsys.readouterr().out)
    shown = yaml.safe_load(re.search(r"^# Configuration.*?```yaml\n(.*?)```", CONFIGURATION, re.S | re.M).group(1))

    def check(shown, defaults, path):
        for key, value in shown.items():
            assert key in defaults, f"docs/configuration.md shows {path}{key}, which the config does not have"
            if isinstance(value, dict):
                check(value, defaults[key], f"{path}{key}.")
            else:
                assert value == defaults[key], f"docs/configuration.md: {path}{key}: {value!r}, default {defaults[key]!r}"

    check(shown, defaults, "")
    assert list(shown["stages"]) == list(defaults["stages"])


@pytest.mark.parametrize("argv,config,beam", [
    (["run", "--runner", "DataflowRunner", "--sdk_container_image", "foo/bar:1", "--output", "x"], [],
     ["--sdk_container_image=foo/bar:1"]),
    (["run", "--num_workers", "3"], [], ["--num_workers=3"]),
    (["run", "--project", "p", "recipe.yaml", "--streaming", "--region=r", "-q"], ["recipe.yaml"],
     ["--project=p", "--streaming", "--region=r"]),
])
def test_beam_options_pass_through_written_either_way(argv, config, beam):
    from thresher.pipeline.cli import parse

    args, flags = parse(argv)
    assert args.config == config and flags == beam


def test_an_unknown_option_is_named_not_read_as_the_config(capsys):
    assert main(["run", "--ouput", "somewhere"]) == 2
    err = capsys.readouterr().err
    assert "unknown option --ouput (did you mean --output?)" in err and "config file" not in err


@pytest.mark.slow
def test_a_previous_run_is_replaced_only_with_overwrite(tmp_path, capsys):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": f"Document number {i}."}) + "\n" for i in range(4)))
    out = tmp_path / "run"
    base = ["run", "--input", str(data), "--output", str(out), "-q", "--no-progress"]
    assert main([*base, "--only", "dedup_exact"]) == 0
    before = (out / "config.yaml").read_text()
    assert main([*base, "--only", "dedup_exact"]) == 0  # the same config again: a rerun is fine
    assert main([*base, "--only", "extract"]) == 2  # another config: refused, nothing touched
    assert "holds another run" in capsys.readouterr().err and (out / "config.yaml").read_text() == before
    assert main([*base, "--only", "extract", "--overwrite"]) == 0
    assert (out / "config.yaml").read_text() != before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    assert main(["run", "--input", str(data), "--output", str(other), "-q", "--only", "extract"]) == 2
    assert "is not empty and holds no Thresher run (todo.txt)" in capsys.readouterr().err


def _documented_commands():
    """Every `thresher ...` command line inside a code block of the README, ARCHITECTURE.md and
    docs/ (continuation lines joined; what follows a pipe or && cut off; synopses with [...] left out)."""
    for path in [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", path.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ")
                if not line.startswith("thresher ") or "[" in line or "..." in line:
                    continue
                line = re.split(r"\s(?:\||&&|>|2>|&|#)\s?", line + " ")[0]
                yield path.relative_to(ROOT), line


def test_every_documented_command_parses():
    """The commands the README and docs show are commands the CLI takes, with flags it knows."""
    import shlex

    from thresher.pipeline.cli import parse

    seen = [(path, line) for path, line in _documented_commands() if not line.split()[1].startswith("-")]
    assert len(seen) >= 10, seen
    for path, line in seen:
        argv = shlex.split(line)[1:]
        try:
            args, _ = parse(argv)
        except SystemExit:
            raise AssertionError(f"{path}: `{line}` does not parse") from None
        assert args.command == argv[0], (path, line)
