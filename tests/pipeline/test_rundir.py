from thresher.pipeline.graph import rundir


def test_atomic_write_and_publish_leave_no_temporaries(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "documents").mkdir()
    (out / "documents" / "old.parquet").write_bytes(b"from an earlier run")
    staging = rundir.prepare(str(out))
    rundir.atomic_write(f"{staging}/documents/part-0.parquet", b"new")
    # a writer that died (or a retried bundle) leaves a temporary behind
    (tmp_path / "out" / ".staging" / "documents" / ".tmp-dead-part-1.parquet").write_bytes(b"partial")
    rundir.publish(str(out), staging, ("documents", "rejected"))
    rundir.finish(staging)
    assert sorted(p.name for p in (out / "documents").iterdir()) == ["part-0.parquet"]
    assert (out / "documents" / "part-0.parquet").read_bytes() == b"new"
    assert (out / "rejected").is_dir() and not (out / ".staging").exists()


def test_publish_removes_folders_this_run_did_not_make(tmp_path):
    out = tmp_path / "out"
    (out / "shards").mkdir(parents=True)
    (out / "shards" / "shard-00000.arrow").write_bytes(b"stale")
    staging = rundir.prepare(str(out))
    rundir.publish(str(out), staging, ("documents", "rejected"))
    assert not (out / "shards").exists()
