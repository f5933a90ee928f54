"""Logging set-up shared by the CLI and local worker processes (imports no Beam)."""

import logging

_NOISE = (
    "apitools not found",  # Beam's GCP extras probe, on every import without [gcp]
    "semi_persistent_directory",  # local workers have none, by design
    "direct_num_workers is not equal to 1",  # we choose the worker environment ourselves
)


class BeamNoise(logging.Filter):
    """Drops Beam messages that say nothing to a Thresher user."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in _NOISE)


def configure(level: int = logging.WARNING, fmt: str = "%(levelname)s %(name)s: %(message)s") -> None:
    logging.basicConfig(level=level, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
        handler.addFilter(BeamNoise())
