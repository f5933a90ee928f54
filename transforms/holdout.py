"""The ``holdout`` stage: split the extracted documents into a held-out share and the rest, by a
seeded hash of their id, before any filter runs.

Off by default. `thresher ablate` uses it to cut one evaluation set from the raw input that no
recipe trains on: each recipe's run keeps the rest (``keep: rest``), the evaluation run keeps the
held-out share (``keep: held_out``) with every filter off. The same ids land on the same side in
every run, whatever the recipe, runner or worker count.
"""

from __future__ import annotations

from dataclasses import dataclass

from thresher.transforms.document import Drop
from thresher.transforms.hashing import seeded_fraction
from thresher.transforms.stage import Stage, check, register

SALT = "holdout:"


@dataclass
class HoldoutParams:
    enabled: bool = False
    fraction: float = 0.05  # share of documents held out
    seed: int = 0
    keep: str = "rest"  # rest: drop the held-out share; held_out: keep only it

    def validate(self, path: str) -> None:
        check(0.0 < self.fraction < 1.0, f"{path}.fraction", f"{self.fraction} must be between 0 and 1")
        check(self.keep in ("rest", "held_out"), f"{path}.keep", f"{self.keep!r} must be rest or held_out")


def held_out(doc_id: str, params: HoldoutParams) -> bool:
    return seeded_fraction(SALT + str(doc_id), params.seed) < params.fraction


def _build(params: HoldoutParams, ctx):
    drop = Drop("held_out" if params.keep == "rest" else "not_held_out")

    def split(doc: dict):
        return drop if held_out(doc["id"], params) == (params.keep == "rest") else doc

    return split


register(Stage(name="holdout", order=25, params=HoldoutParams, build=_build,
               description="hold out a seeded share of the extracted documents (off by default; thresher ablate)",
               details=("a seeded hash of the id puts `fraction` of the extracted documents on the held-out "
                        "side, before any filter; `keep: rest` drops them, `keep: held_out` keeps only them "
                        "(the evaluation set of `thresher ablate`). Off unless `enabled`"),
               reasons=("held_out", "not_held_out")))
