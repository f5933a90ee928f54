"""Where Thresher keeps what it can rebuild: ``$XDG_CACHE_HOME/thresher`` (``~/.cache/thresher``)."""

from __future__ import annotations

import os


def cache_dir(*parts: str) -> str:
    """The cache folder, or a folder inside it (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "thresher", *parts)
