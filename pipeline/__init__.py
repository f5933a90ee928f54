"""Thresher's Beam layer: the graph, sources and sinks, runners, config and the CLI."""

__version__ = "0.1.0"
