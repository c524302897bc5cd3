"""Classification experiments over several seeds, trained as one computation.

``classify("spiral", seeds=range(5), width=2, depth=20)`` draws, for each seed ``s``, ``n``
training points (data seed ``s``) and ``n`` validation points (data seed
``s + VALIDATION_SEED``) of a toy problem, builds an :class:`~lib.models.ODENet` with one member
per seed (member ``s`` initialised from seed ``s``), trains all members together with
:func:`~lib.train.train`, and keeps it all in an :class:`Experiment`.  A training outcome is then
reported as its median and range over the seeds (:class:`Spread`), never as one run's digits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch

from .data import make_dataset
from .models import ODENet
from .train import History, train

__all__ = ["VALIDATION_SEED", "Spread", "spread", "Experiment", "classify"]

VALIDATION_SEED = 1000
"""Offset between the data seed of a member's training points and of its validation points."""


class Spread(NamedTuple):
    """The median and range of one outcome over the seeds (the lower median for an even count)."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.3f} ({self.low:.3f}–{self.high:.3f})"


def spread(values: torch.Tensor) -> Spread:
    """:class:`Spread` of a 1-D tensor of per-seed values."""
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"values must be a non-empty 1-D tensor (one value per seed), got {values!r}")
    v = values.detach().double().cpu().sort().values
    return Spread(float(v[(len(v) - 1) // 2]), float(v[0]), float(v[-1]))


@dataclass
class Experiment:
    """Trained members (one per seed) with their data ``[S, n, 2]``, labels ``[S, n]`` and history."""

    name: str
    seeds: tuple[int, ...]
    net: ODENet
    history: History
    X: torch.Tensor
    y: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def train_accuracy(self) -> torch.Tensor:
        """Final training accuracy per seed ``[S]``."""
        return self.history.train_accuracy[-1]

    @property
    def validation_accuracy(self) -> torch.Tensor:
        """Final validation accuracy per seed ``[S]``."""
        return self.history.validation_accuracy[-1]

    @property
    def objective(self) -> torch.Tensor:
        """The objective before the last update, per seed ``[S]``."""
        return self.history.loss[-1]

    def member(self, s: int) -> "Experiment":
        """The run of seed number ``s`` (an index into ``seeds``) alone."""
        return Experiment(f"{self.name} (seed {self.seeds[s]})", (self.seeds[s],),
                          self.net.member(s), History(self.history.loss[:, s], self.history.recorded,
                                                      self.history.train_accuracy[:, s],
                                                      self.history.validation_accuracy[:, s]),
                          self.X[s], self.y[s], self.X_val[s], self.y_val[s])

    def median_member(self) -> int:
        """The index of the seed whose validation accuracy is the (lower) median: the run to
        draw when one run stands for all."""
        order = self.validation_accuracy.argsort(stable=True)
        return int(order[(len(order) - 1) // 2])

    def summary(self) -> str:
        """One line: median (range) of the final train and validation accuracy over the seeds."""
        return (f"{self.name:<24} train {spread(self.train_accuracy)}   "
                f"validation {spread(self.validation_accuracy)}   ({len(self.seeds)} seeds)")


def classify(dataset: str, *, seeds: Sequence[int] = range(5), n: int = 500,
             iterations: int = 500, lr: float = 0.05, optimizer: str = "adam",
             loss: str = "cross_entropy", regulariser=None, device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32, name: str | None = None,
             **net_kwargs) -> Experiment:
    """Train ``ODENet(**net_kwargs, seed=seeds)`` on ``n`` points of ``dataset`` per seed and
    return the :class:`Experiment`; accuracies are recorded every 50 iterations."""
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    train_sets = [make_dataset(dataset, n, seed=s, dtype=dtype) for s in seeds]
    val_sets = [make_dataset(dataset, n, seed=s + VALIDATION_SEED, dtype=dtype) for s in seeds]
    X, y = (torch.stack(t).to(device) for t in zip(*train_sets))
    X_val, y_val = (torch.stack(t).to(device) for t in zip(*val_sets))
    net = ODENet(seed=seeds, **net_kwargs).to(device=device, dtype=dtype)
    history = train(net, X, y, iterations=iterations, lr=lr, optimizer=optimizer, loss=loss,
                    regulariser=regulariser, validation=(X_val, y_val),
                    record_every=min(50, iterations))
    return Experiment(name or dataset, seeds, net, history, X, y, X_val, y_val)
