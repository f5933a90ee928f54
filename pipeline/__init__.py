"""Thresher's Beam layer: the graph, sources and sinks, runners, config and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("thresher")  # one source: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
