"""Logging set-up shared by the CLI and local worker processes (imports no Beam)."""

import logging
import os

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


def configure(level: int = logging.WARNING, fmt: str = "%(levelname)s %(name)s: %(message)s",
              verbose: bool | None = None) -> None:
    """`verbose` False (the CLI without --verbose): Beam's warnings and gRPC's C-core messages stay
    out of the terminal; Thresher's own errors say what went wrong in one line. True: Beam's info
    messages too. None (local workers): warnings."""
    if verbose:
        level = min(level, logging.INFO)
    elif verbose is False:
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # read when grpc loads, here and in workers
    logging.basicConfig(level=level, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
        handler.addFilter(BeamNoise())
