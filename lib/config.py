"""The library's defaults in one place: every function that trains reads them from
:data:`DEFAULTS`, so ``train``, ``experiments.classify`` and ``experiments.run`` agree."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defaults:
    """Training defaults: ``iterations`` full-batch steps of ``optimizer`` (``"adam"`` or
    ``"gd"``) with step ``lr`` on ``loss``, accuracies recorded every ``record_every``
    iterations; ``seeds``, the number of seeds a training outcome is reported over (the
    book's rule: at least five)."""

    iterations: int = 500
    optimizer: str = "adam"
    lr: float = 0.05
    loss: str = "cross_entropy"
    record_every: int = 10
    seeds: int = 5


DEFAULTS = Defaults()
"""The defaults every training function uses."""
