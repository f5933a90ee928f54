"""The process tree, from Linux /proc (empty elsewhere): the driver finds its local workers with
it after Ctrl-C (pipeline/interrupts.py); the tests and the memory benchmarks find a run's
processes. No Beam import here."""

from __future__ import annotations

import os


def children_by_parent() -> dict[int, list[int]]:
    """Every live process's pid under its parent's pid."""
    tree: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return tree
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(root: int) -> list[int]:
    """The live processes under `root`, whatever session or process group they run in."""
    tree, found, todo = children_by_parent(), [], [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    """The process's command line (NUL-separated), or b"" when it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""
