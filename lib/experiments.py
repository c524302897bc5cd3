"""One classification experiment of the book: data, network, training, accuracies.

``classify("spiral", width=2, depth=20)`` draws ``n`` training points (seed ``seed``) and ``n``
validation points (seed ``seed + 1``) of a toy problem, builds an :class:`~lib.models.ODENet`
with the given keyword arguments, trains it with :func:`~lib.train.train` and keeps it all
together, so a chapter compares settings in one line each.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import make_dataset
from .models import ODENet
from .train import History, train


@dataclass
class Experiment:
    """A trained network with its data and training history."""

    name: str
    net: ODENet
    history: History
    X: torch.Tensor
    y: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def train_accuracy(self) -> float:
        return self.history.train_accuracy[-1]

    @property
    def validation_accuracy(self) -> float:
        return self.history.validation_accuracy[-1]

    def summary(self) -> str:
        """One line: the name, final objective and train/validation accuracy, rounded."""
        return (f"{self.name:<28} objective {self.history.loss[-1]:.4f}   "
                f"train {self.train_accuracy:.3f}   validation {self.validation_accuracy:.3f}")


def classify(dataset: str, *, n: int = 500, seed: int = 0, iterations: int = 500, lr: float = 0.05,
             optimizer: str = "adam", loss: str = "cross_entropy", regulariser=None,
             device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
             name: str | None = None, **net_kwargs) -> Experiment:
    """Train ``ODENet(**net_kwargs, seed=seed)`` on ``n`` points of ``dataset`` and return the
    :class:`Experiment`; accuracies are recorded every 50 iterations."""
    X, y = make_dataset(dataset, n, seed=seed, dtype=dtype)
    X_val, y_val = make_dataset(dataset, n, seed=seed + 1, dtype=dtype)
    X, y, X_val, y_val = (t.to(device) for t in (X, y, X_val, y_val))
    net = ODENet(seed=seed, **net_kwargs).to(device=device, dtype=dtype)
    history = train(net, X, y, iterations=iterations, lr=lr, optimizer=optimizer, loss=loss,
                    regulariser=regulariser, validation=(X_val, y_val),
                    record_every=min(50, iterations))
    return Experiment(name or dataset, net, history, X, y, X_val, y_val)
