"""Single-process reference implementations the pipeline is tested against."""

from __future__ import annotations


class UnionFind:
    """Components of an edge list on one machine: the oracle the Beam clustering is tested against."""

    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        root = x
        while self.parent.setdefault(root, root) != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra  # the smaller id becomes the root: roots are component minima

    def components(self) -> dict:
        """node -> the smallest node of its component."""
        return {x: self.find(x) for x in list(self.parent)}
