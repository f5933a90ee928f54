"""Names in a run directory, for the code that writes it and the code that reads it (``inspect``,
``sample``: these must not import Beam)."""

from __future__ import annotations

STAGING = ".staging"
RESUME = "resume"  # under STAGING: a crashed run's finished input ranges, kept for its rerun
DATA_FOLDERS = ("documents", "rejected")  # every run's; stages add their own (dedup/, shards/)
TMP_PREFIX = ".tmp-"


def partition_values(path: str) -> dict[str, str]:
    """``key=value`` folders of a path (``documents/lang=de/part-0.parquet`` -> {"lang": "de"})."""
    return dict(p.split("=", 1) for p in path.replace("\\", "/").split("/")[:-1] if "=" in p)
