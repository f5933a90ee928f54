"""docker/ checked statically (no Docker engine runs here): files parse, COPY sources exist,
pinned Beam and Python versions agree with pyproject.toml."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
PYPROJECT_TEXT = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+; we support 3.10)
REQUIRES_PYTHON = re.search(r'^requires-python = "([^"]+)"', PYPROJECT_TEXT, re.M).group(1)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if line.rstrip().endswith("\\"):
            continue
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, f"{path.name}: dangling line continuation"
    return out


def expand(text: str, args: dict) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)


def version_ok(version: str, spec: str) -> bool:
    def key(v):
        return tuple(int(x) for x in v.split("."))

    for clause in spec.split(","):
        m = re.fullmatch(r"\s*(>=|<=|<|>|==)\s*([\d.]+)\s*", clause)
        assert m, f"unsupported specifier {clause!r}"
        op, v = m.groups()
        a, b = key(version), key(v)
        n = max(len(a), len(b))
        a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
        if not {">=": a >= b, "<=": a <= b, "<": a < b, ">": a > b, "==": a == b}[op]:
            return False
    return True


def beam_spec() -> str:
    return re.search(r'^\s*"apache-beam([<>=!,.\d]+)"', PYPROJECT_TEXT, re.M).group(1)


@pytest.mark.parametrize("name", ["Dockerfile.worker", "Dockerfile.flex"])
def test_dockerfiles_parse_and_copy_only_existing_paths(name):
    ins = instructions(DOCKER / name)
    assert ins[0][0] in ("ARG", "FROM") and any(i == "FROM" for i, _ in ins)
    copies = [rest.split() for i, rest in ins if i == "COPY"]
    assert copies
    for parts in copies:
        parts = [p for p in parts if not p.startswith("--")]
        for src in parts[:-1]:  # the build context is the repository root
            assert (ROOT / src).exists(), f"{name}: COPY {src}: no such path"
    for i, rest in ins:
        assert i in {"FROM", "ARG", "WORKDIR", "COPY", "RUN", "ENV", "ENTRYPOINT", "CMD", "LABEL", "USER"}, i


def test_worker_image_matches_the_beam_and_python_we_depend_on():
    ins = instructions(DOCKER / "Dockerfile.worker")
    args = dict(rest.split("=", 1) for i, rest in ins if i == "ARG" and "=" in rest)
    image = expand(next(rest for i, rest in ins if i == "FROM"), args)
    m = re.fullmatch(r"apache/beam_python(\d+)\.(\d+)_sdk:([\d.]+)", image)
    assert m, image
    py, beam = f"{m.group(1)}.{m.group(2)}", m.group(3)
    assert version_ok(beam, beam_spec()), f"image Beam {beam} outside pyproject's {beam_spec()}"
    import apache_beam

    assert beam == apache_beam.__version__, "the worker image must run the client's Beam version"
    assert version_ok(py, REQUIRES_PYTHON)
    run = " ".join(rest for i, rest in ins if i == "RUN")
    assert "pip install" in run and "LanguageIdentifier()" in run  # the models load at build time
    assert "import thresher.transforms._repetition, thresher.transforms._fasttext, thresher.transforms._words" in run  # no image without them


def test_flex_template_launcher_and_metadata():
    ins = instructions(DOCKER / "Dockerfile.flex")
    env = " ".join(rest for i, rest in ins if i == "ENV")
    assert "FLEX_TEMPLATE_PYTHON_PY_FILE=${WORKDIR}/flex_main.py" in env
    assert "python311" in next(rest for i, rest in ins if i == "FROM")
    meta = json.loads((DOCKER / "flex_metadata.json").read_text())
    assert meta["name"] and meta["parameters"]
    for p in meta["parameters"]:
        assert {"name", "label", "helpText"} <= set(p)
    sys.path.insert(0, str(DOCKER))
    try:
        from flex_main import to_run_args
    finally:
        sys.path.remove(str(DOCKER))
    args = to_run_args(["--config=gs://b/c.yaml", "--input=gs://b/in/*.warc.gz", "--output=gs://b/out",
                        "--project=p", "--region=r"])
    assert args[:4] == ["run", "gs://b/c.yaml", "--runner", "DataflowRunner"]
    from thresher.pipeline.cli import parse

    parsed, rest = parse(args)
    assert parsed.config == ["gs://b/c.yaml"] and parsed.input == ["gs://b/in/*.warc.gz"]
    assert rest == ["--project=p", "--region=r"]  # Beam options pass through


def test_compose_file_wires_spark_job_server_and_worker_pool():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"spark-master", "spark-worker", "beam-job-server", "python-worker-pool"} <= set(services)
    worker_args = dict(rest.split("=", 1) for i, rest in instructions(DOCKER / "Dockerfile.worker")
                       if i == "ARG" and "=" in rest)
    beam = worker_args["BEAM_VERSION"]
    job_build = services["beam-job-server"]["build"]
    assert (DOCKER / job_build["context"] / job_build["dockerfile"]).resolve() == (DOCKER / "Dockerfile.jobserver").resolve()
    from thresher.pipeline.engines.jobserver import BEAM_JOB_SERVER_VERSION

    assert compose["x-job-server-version"] == BEAM_JOB_SERVER_VERSION
    assert compose["x-beam-version"] == beam
    assert any("spark://spark-master:7077" in c for c in services["beam-job-server"]["command"])
    build = services["python-worker-pool"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == (DOCKER / "Dockerfile.worker").resolve()
    assert build["args"]["BEAM_VERSION"] == beam
    assert services["python-worker-pool"]["command"] == ["--worker_pool"]
    spark = {services[s]["image"].split(":")[1] for s in ("spark-master", "spark-worker")}
    assert len(spark) == 1 and spark.pop().startswith("3.5")


def test_job_server_image_runs_the_pom_and_flags_thresher_uses():
    from thresher.pipeline.engines.jobserver import BEAM_JOB_SERVER_VERSION, ENGINES, SPARK_JVM_FLAGS

    ins = instructions(DOCKER / "Dockerfile.jobserver")
    assert [i for i, _ in ins].count("FROM") == 2
    copies = [rest.split() for i, rest in ins if i == "COPY" and not rest.startswith("--from")]
    assert copies == [["pipeline/data/spark.pom.xml", "pom.xml"]] and (ROOT / copies[0][0]).exists()
    entry = json.loads(next(rest for i, rest in ins if i == "ENTRYPOINT"))
    assert entry[0] == "java" and entry[-1] == ENGINES["spark"].main
    assert entry[1:1 + len(SPARK_JVM_FLAGS)] == SPARK_JVM_FLAGS
    pom = (ROOT / "pipeline" / "data" / "spark.pom.xml").read_text()
    assert f"<beam.version>{BEAM_JOB_SERVER_VERSION}</beam.version>" in pom
