"""Gradients of the training objective as strategy objects (the talk's DTO vs OTD).

The network is ``y^0 = lift(x)``, ``y^{k+1} = Phi_h(y^k; theta^k)`` (its layer maps,
:meth:`lib.models.ODENet.layer`) and the objective is the data loss ``E = L(w^T z^K + w0, y)``
of :data:`lib.losses.LOSSES`.  One entry point, :func:`gradient` (and
:meth:`Strategy.value_and_gradient`, which :func:`lib.train` calls), computes ``dE/dtheta``
with a strategy, one file each:

- :class:`DTO`: discretise-then-optimise, autograd through the layers;
- :class:`Checkpointed`: the same, recomputing each segment's graph on the way back;
- :class:`OTD`: optimise-then-discretise, the backward sweep of ``p' = -J^T p`` with the exact
  discrete adjoint (DTO to round-off) or another tableau (an ``O(h^q)`` error);
- :class:`Backsolve`: Chen et al.'s black-box adjoint, reconstructing ``y`` backwards;
- :class:`Reversible`: DTO through the exact inverse of a symplectic layer, storing no states;
- :class:`TorchdiffeqAdjoint`: ``torchdiffeq.odeint_adjoint``, the published black-box adjoint.

Each strategy says which networks it supports (:meth:`Strategy.refusal`) and accepts a network
with ``S`` members (each member's block is that member's own gradient).  A new strategy is one
new file with a subclass of :class:`Strategy` and one entry in :data:`STRATEGIES`.
"""
from __future__ import annotations

import torch

from .backsolve import Backsolve
from .base import Gradient, Strategy, layer_keys, relative_difference
from .checkpointed import Checkpointed
from .dto import DTO
from .otd import OTD
from .reversible import Reversible
from .torchdiffeq_adjoint import TorchdiffeqAdjoint

__all__ = ["Gradient", "Strategy", "DTO", "Checkpointed", "OTD", "Backsolve", "Reversible",
           "TorchdiffeqAdjoint", "STRATEGIES", "gradient", "layer_keys", "relative_difference"]

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    DTO(), Checkpointed(), OTD(), Backsolve(), TorchdiffeqAdjoint(), Reversible())}
"""One instance of each strategy with its default settings, by name."""


def gradient(net, x: torch.Tensor, y: torch.Tensor, strategy: Strategy | str = "dto",
             loss: str = "cross_entropy") -> Gradient:
    """``dE/dparameters`` of ``net`` on ``(x, y)`` by ``strategy`` (an object or a name in
    :data:`STRATEGIES`), keyed like ``net.named_parameters()``."""
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown gradient strategy {strategy!r}; expected one of "
                             f"{sorted(STRATEGIES)} or a lib.gradients.Strategy")
        strategy = STRATEGIES[strategy]
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a lib.gradients.Strategy or its name, got "
                        f"{type(strategy).__name__}")
    return strategy.gradient(net, x, y, loss)
