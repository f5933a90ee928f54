"""Service jobs on remote runners: Dataflow built and validated offline (--dry_run), and Beam's
portable job service with an EXTERNAL worker pool (how Spark and Flink run Python), on loopback."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from tests.pipeline.test_portable import job_service_and_pool  # noqa: E402,F401 - the fixture
from tests.servicekit import FAST, Server, docs_warc  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_dataflow_job_is_built_and_validated_offline(tmp_path):
    pytest.importorskip("apache_beam.runners.dataflow.internal.apiclient")
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json"), "GCE_METADATA_HOST": "127.0.0.1:9"}
    s = Server(tmp_path / "home", "--root", "gs://my-bucket/runs/", env=env).start()
    try:
        options = ["--project=my-project", "--region=us-central1", "--temp_location=gs://my-bucket/tmp",
                   "--sdk_container_image=us-central1-docker.pkg.dev/my-project/thresher/worker:0.1.0", "--dry_run=True"]
        refused = s.post("/api/jobs", {"runner": "DataflowRunner", "options": options, "output": "gs://other-bucket/r"})
        assert refused.status == 400 and "roots" in refused.json()["detail"]
        job = s.submit(name="dataflow", runner="DataflowRunner", options=options, output="gs://my-bucket/runs/r1")
        done = s.wait(job["id"], seconds=300)
        assert done["state"] == "succeeded", done["error"]
        assert done["progress"]["dry_run"] and not done["run"]
        assert "dry run" in s.get(f"/api/jobs/{job['id']}/log").text
        assert s.get(f"/api/runs/{job['id']}/report").status == 409  # gs:// is not read by this server
    finally:
        s.stop()


def test_a_portable_job_records_the_job_services_id(job_service_and_pool, tmp_path):  # noqa: F811
    js_port, pool_port, env = job_service_and_pool
    warc = docs_warc(str(tmp_path / "docs.warc.gz"), 8)
    s = Server(tmp_path / "home", "--root", str(tmp_path), env=env).start()
    try:
        job = s.submit(name="portable", runner="portable", inputs=[warc], only=FAST,
                       options=[f"--job_endpoint=localhost:{js_port}", "--environment_type=EXTERNAL",
                                f"--environment_config=localhost:{pool_port}"])
        done = s.wait(job["id"], seconds=300)
        assert done["state"] == "succeeded", done["error"]
        assert done["remote_job_id"], "the job service's id"
        assert f"submitted job {done['remote_job_id']} to portable" in s.get(f"/api/jobs/{job['id']}/log").text
        report = s.get(f"/api/runs/{job['id']}/report").json()
        assert report["run"]["runner"] == "portable" and report["totals"]["read"] == 8
    finally:
        s.stop()
