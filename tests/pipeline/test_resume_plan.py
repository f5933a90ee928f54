"""What a rerun reuses (pipeline/graph/resume.py's `plan`): checkpoints of this config's finished
ranges whose parked documents are all there; everything else under resume/ goes."""

import os

from thresher.pipeline.engines.run import InputFile
from thresher.pipeline.graph import resume
from thresher.pipeline.graph.spill import SpillRef

SPLIT = 65536


def inputs(tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    warc.write_bytes(os.urandom(3 * SPLIT))  # planned in three byte ranges; never read here
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"text": "a"}\n' * 40)
    return [InputFile(str(warc), 3 * SPLIT, "crawl.warc.gz"), InputFile(str(jsonl), jsonl.stat().st_size, "docs.jsonl")]


def checkpoint(folder, identity, kind, start, end, last=False, parked=True):
    """A checkpoint as `Park` writes it, with one parked file of its own (made unless `parked` is False)."""
    key = resume.range_key(identity, kind, start, end)
    spill = f"{folder.parked}/{key}.pickle"
    os.makedirs(folder.parked, exist_ok=True)
    os.makedirs(folder.ranges, exist_ok=True)
    if parked:
        open(spill, "wb").close()
    header = {"key": key, "identity": identity, "kind": kind, "start": start, "end": end, "last": last,
              "documents": 1, "counts": {("ingest", "in"): 1}, "spill_files": [spill]}
    resume.write_checkpoint(folder.path(key), header, [{"id": key, "_park": SpillRef(spill, 0, 1, 1)}], [])
    return folder.path(key)


def test_finished_byte_ranges_are_reused_and_the_rest_is_cleared(tmp_path):
    files = inputs(tmp_path)
    staging = str(tmp_path / "out" / ".staging")
    folder = resume.ResumeFolder(staging, "digest")
    warc = resume.file_identity(files[0].path)
    done = checkpoint(folder, warc, "bytes", 0, SPLIT)
    lost = checkpoint(folder, warc, "bytes", SPLIT, 2 * SPLIT, parked=False)  # its documents are gone
    unplanned = checkpoint(folder, warc, "bytes", 5, 7)  # not a range this run plans
    orphan = f"{folder.parked}/orphan.pickle"
    open(orphan, "wb").close()
    other = resume.ResumeFolder(staging, "another-config")
    old = checkpoint(other, warc, "bytes", 0, SPLIT)

    plan = resume.plan(staging, "digest", files, SPLIT)
    assert plan.reused == ((done, SPLIT),)
    assert plan.skip == {(files[0].path, 0, SPLIT)} and plan.reused_bytes == SPLIT
    for gone in (lost, unplanned, orphan, old):
        assert not os.path.exists(gone)
    assert os.listdir(f"{staging}/resume") == ["digest"]


def test_a_file_changed_since_is_read_again(tmp_path):
    files = inputs(tmp_path)
    staging = str(tmp_path / "out" / ".staging")
    folder = resume.ResumeFolder(staging, "digest")
    path = checkpoint(folder, resume.file_identity(files[0].path), "bytes", 0, SPLIT)
    os.utime(files[0].path, (1, 1))  # rewritten in place, same size
    plan = resume.plan(staging, "digest", files, SPLIT)
    assert plan.reused == () and plan.skip == frozenset() and not os.path.exists(path)


def test_chunks_of_a_file_read_whole(tmp_path):
    files = inputs(tmp_path)
    staging = str(tmp_path / "out" / ".staging")
    folder = resume.ResumeFolder(staging, "digest")
    jsonl = resume.file_identity(files[1].path)
    first = checkpoint(folder, jsonl, "records", 0, 10)
    checkpoint(folder, jsonl, "records", 15, 20)
    overlapping = checkpoint(folder, jsonl, "records", 18, 25)
    plan = resume.plan(staging, "digest", files, SPLIT)
    assert plan.records == {files[1].path: ((0, 10, False), (15, 20, False))}
    assert plan.skip == frozenset()  # records 10-14 and the file's end are not done: the file is read, those skipped
    assert not os.path.exists(overlapping)

    checkpoint(folder, jsonl, "records", 10, 15)
    checkpoint(folder, jsonl, "records", 20, 40, last=True)
    plan = resume.plan(staging, "digest", files, SPLIT)
    assert plan.skip == {(files[1].path, 0, files[1].size)}  # every record done: the file is not opened
    assert dict(plan.reused)[first] == files[1].size  # the progress line counts the file once
    assert plan.reused_bytes == files[1].size
