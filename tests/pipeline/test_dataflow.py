"""The Dataflow job, built and validated offline (--dry_run): no credentials, buckets or network."""

import os
import subprocess
import sys
import zipfile

import pytest

pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient")  # the [gcp] extra

from thresher.pipeline.config import Config, ConfigError  # noqa: E402
from thresher.pipeline.engines.run import run  # noqa: E402

pytestmark = pytest.mark.slow
IMAGE = "us-central1-docker.pkg.dev/my-project/thresher/worker:0.1.0"
FLAGS = ["--project=my-project", "--region=us-central1", "--temp_location=gs://my-bucket/tmp",
         f"--sdk_container_image={IMAGE}", "--dry_run=True"]


def dataflow_config(out: str) -> Config:
    cfg = Config()
    cfg.runner.name = "DataflowRunner"
    cfg.output = out
    return cfg


def test_dry_run_builds_the_whole_job_with_the_custom_image_and_the_staged_package():
    result = run(dataflow_config("gs://my-bucket/runs/r1"), FLAGS)
    assert result.stats["dry_run"] and result.job is not None
    assert result.stats["stages"][0] == "ingest" and "dedup_minhash" in result.stats["stages"]
    proto = result.job.proto
    assert proto.name and proto.environment is not None
    pipeline = result.job.proto_pipeline
    envs = list(pipeline.components.environments.values())
    images, staged = set(), []
    from apache_beam.portability.api import beam_runner_api_pb2

    for env in envs:
        if env.urn == "beam:env:docker:v1":
            images.add(beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image)
        for dep in env.dependencies:
            role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dep.role_payload)
            staged.append(role.staged_name)
    assert images == {IMAGE}
    wheels = [s for s in staged if s.startswith("thresher-") and s.endswith(".whl")]
    assert wheels, staged
    # the stages' DoFns are all in the job
    names = {t.unique_name for t in pipeline.components.transforms.values()}
    for stage in ("Stage[langid]", "Stage[gopher_quality]", "WriteDocuments", "Write[tokenize]"):
        assert any(stage in n for n in names), stage


def test_the_staged_wheel_holds_the_packages_and_their_data():
    from thresher.pipeline.engines.runners import build_wheel

    wheel = build_wheel()
    names = zipfile.ZipFile(wheel).namelist()
    for must in ("thresher/pipeline/graph/curate.py", "thresher/pipeline/engines/worker.py",
                 "thresher/pipeline/tools/inspection.py", "thresher/pipeline/service/app.py",
                 "thresher/pipeline/cli/run_cmd.py", "thresher/transforms/filters/gopher.py", "thresher/trainer/train.py",
                 "thresher/pipeline/data/tokenizer.json", "thresher/pipeline/service/static/service.js"):
        assert must in names
    assert not any(n.startswith(("pipeline/", "transforms/", "trainer/")) for n in names)  # only thresher.*


def test_dataflow_without_the_worker_image_is_refused_with_instructions():
    with pytest.raises(ConfigError, match="Dockerfile.worker"):
        run(dataflow_config("gs://my-bucket/runs/r1"), [f for f in FLAGS if "sdk_container_image" not in f])


def test_the_cli_dry_run_finishes_without_credentials(tmp_path):
    env = dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "none.json"),
               GCE_METADATA_HOST="127.0.0.1:9")  # any attempt to reach Google would fail, not hang
    # the README's form: Beam options written with a space, before and after Thresher's own
    spaced = [part for flag in FLAGS for part in flag.split("=", 1)]
    proc = subprocess.run([sys.executable, "-m", "thresher.pipeline", "run", *spaced[:4], "--runner", "DataflowRunner",
                           "--output", "gs://my-bucket/runs/r2", *spaced[4:]],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dry run" in proc.stdout
