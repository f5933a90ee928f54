"""Thresher's FSDP trainer (the `[train]` extra). Filled in by the trainer issue."""
