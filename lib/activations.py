"""The scalar activations ``sigma`` of the talk and their antiderivatives ``gamma`` (``gamma' = sigma``,
``gamma(0) = 0``), which turn a layer into a potential ``V(z) = gamma(A z + b) . 1`` (chapters 4 and 5).

- ``tanh``: ``sigma_1(s) = tanh s``, ``gamma(s) = log cosh s``;
- ``relu``: ``sigma_2(s) = max(0, s)``, ``gamma(s) = max(0, s)^2 / 2``;
- ``identity``: ``sigma(s) = s``, ``gamma(s) = s^2 / 2`` (the linear case of the theorems).

All three satisfy ``0 <= sigma' <= 1``, the hypothesis of the gradient-flow theorem.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]


def _log_cosh(s: torch.Tensor) -> torch.Tensor:
    """``log cosh s = |s| + log(1 + exp(-2|s|)) - log 2``, without overflow for large ``|s|``."""
    a = s.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)


@dataclass(frozen=True)
class Activation:
    """An activation ``sigma`` (applied entrywise) with its antiderivative ``gamma``."""

    name: str
    sigma: Callable[[torch.Tensor], torch.Tensor]
    gamma: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        return self.sigma(s)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, _log_cosh),
    "relu": Activation("relu", torch.relu, lambda s: 0.5 * torch.relu(s).square()),
    "identity": Activation("identity", lambda s: s, lambda s: 0.5 * s.square()),
}
"""The activations by name."""


def get_activation(name: str) -> Activation:
    """The activation called ``name``; a ``ValueError`` lists the known names otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None
