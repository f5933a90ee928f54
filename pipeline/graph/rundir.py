"""The run directory (docs/run-directory.md, ARCHITECTURE.md) and how it is published.

Workers write into ``DIR/.staging/``; only when the job has finished does the driver move the
results into place, folder by folder, and write ``config.yaml`` and ``stats.json`` last. Every
file appears under its final name whole (written under a temporary name, then renamed), and a
rerun after a crash starts from an empty staging folder (but for the finished input ranges it
reuses, ``resume/``) and replaces what an earlier run left, so nothing is duplicated. All file
operations go through Beam's FileSystems: the same code publishes to a local folder, gs:// or s3://.
"""

from __future__ import annotations

import os
import uuid

from apache_beam.io.filesystems import FileSystems

from thresher.pipeline.layout import DATA_FOLDERS, STAGING, TMP_PREFIX


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def _is_local(path: str) -> bool:
    return "://" not in path


def list_files(folder: str) -> list[str]:
    """Every file under `folder`, sub-folders included (documents/lang=xx/...)."""
    if _is_local(folder):
        return sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files)
    try:
        match = FileSystems.match([join(folder, "**")])[0]
    except Exception:  # nothing there
        return []
    return sorted(m.path for m in match.metadata_list)


def _delete_tree(path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])


def safe_subpath(root: str, *parts: str) -> str:
    """A path under `root`; refuses names that would escape it (``..``, absolute parts)."""
    for p in parts:
        if not p or p.startswith("/") or ".." in p.split("/") or "\\" in p:
            raise ValueError(f"refusing path component {p!r} under {root}")
    return join(root, *parts)


def clear(staging: str, keep: str | None) -> None:
    """Removes the folder `staging`, or all of it but its sub-folder `keep`."""
    if keep is None or not FileSystems.exists(staging):
        _delete_tree(staging)
        return
    if _is_local(staging):
        for name in os.listdir(staging):
            if name != keep:
                _delete_tree(join(staging, name))
        return
    kept = join(staging, keep) + "/"
    others = [p for p in list_files(staging) if not p.startswith(kept)]
    if others:
        FileSystems.delete(others)


def prepare(output: str, folders: tuple[str, ...] = DATA_FOLDERS, keep: str | None = None) -> str:
    """An empty staging folder under `output` (a crashed run's leftovers are removed, but for its
    sub-folder `keep`: the finished work a rerun reuses)."""
    staging = join(output, STAGING)
    clear(staging, keep)
    if _is_local(output):  # object stores have no folders to make
        for sub in folders:
            os.makedirs(join(staging, sub), exist_ok=True)
    return staging


def atomic_write(path: str, data: bytes) -> None:
    """`path` appears whole: written as `.tmp-<uuid>-<name>` beside it, then renamed. A writer that
    dies leaves only a `.tmp-` file, which `publish` never moves into place."""
    folder, _, name = path.rpartition("/")
    tmp = f"{folder}/{TMP_PREFIX}{uuid.uuid4().hex}-{name}"
    with FileSystems.create(tmp) as fh:
        fh.write(data)
    FileSystems.rename([tmp], [path])


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as fh:
        return fh.read()


def known_folders() -> tuple[str, ...]:
    """Every data folder a run can write: documents/, rejected/ and every registered stage's own."""
    from thresher.transforms import stage as registry

    return DATA_FOLDERS + tuple(f for s in registry.stages() for f in s.outputs)


def publish(output: str, staging: str, folders: tuple[str, ...] = DATA_FOLDERS) -> None:
    """Replace each data folder of `output` by its staged version; data folders this run did not
    produce are removed, so no folder from an earlier run with other stages is left behind."""
    for sub in known_folders():
        if sub not in folders:
            _delete_tree(safe_subpath(output, sub))
    for sub in folders:
        src, dst = safe_subpath(staging, sub), safe_subpath(output, sub)
        listed = list_files(src)
        staged = [p for p in listed if not os.path.basename(p).startswith(TMP_PREFIX)]
        _delete_tree(dst)
        if _is_local(output):
            os.makedirs(src, exist_ok=True)
            for leftover in set(listed) - set(staged):  # from a retried or killed writer
                os.remove(leftover)
            os.replace(src, dst)  # one rename: the folder appears whole
            continue
        FileSystems.mkdirs(dst)
        if staged:
            FileSystems.rename(staged, [join(dst, p[len(src):].lstrip("/")) for p in staged])


def finish(staging: str, keep: str | None = None) -> None:
    clear(staging, keep)


def check_replaceable(output: str, config_yaml: str, overwrite: bool) -> None:
    """A run may write into `output` when it is new or empty, holds only a crashed run's staging
    folder, or holds a run of this same config (a rerun, the crash-resume path). Another run, or a
    folder that is not a run at all, is replaced only with ``overwrite``."""
    from thresher.pipeline.config import ConfigError

    if overwrite:
        return
    config = join(output, "config.yaml")
    if FileSystems.exists(config):
        if read_bytes(config).decode("utf-8", "replace") != config_yaml:
            raise ConfigError(f"{output} holds another run (its config.yaml differs from this one's): pass "
                              "--overwrite to replace it, or choose another --output")
        return
    if _is_local(output) and os.path.isdir(output):
        other = sorted(set(os.listdir(output)) - {STAGING})
        if other:
            raise ConfigError(f"{output} is not empty and holds no Thresher run ({', '.join(other[:3])}"
                              f"{', ...' if len(other) > 3 else ''}): pass --overwrite to write into it, or choose "
                              "another --output")
