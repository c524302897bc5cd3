"""The DTO gradient of a Hamiltonian network without storing its states (the reversible
networks of Chang et al. 2018; Gomez et al. 2017)."""
from __future__ import annotations

import torch

from ..tableaux import PartitionedTableau
from .base import Strategy
from .sweep import sweep, vjp_step

__all__ = ["Reversible"]


class Reversible(Strategy):
    """Sweep forward keeping only ``y^K = (z^K, p^K)``.  Then for ``k = K-1, ..., 0``
    reconstruct ``y^k`` with the exact inverse of layer ``k`` (:meth:`lib.layers.Layer.inverse`),
    recompute that layer with autograd and pull the adjoints back through it from
    ``p^K = (dE/dz^K, 0)``.  Memory: one layer's states and graph, whatever ``K``.  The result
    is the DTO gradient up to the round-off of the reconstruction.  Needs a pair with an
    explicit adjoint (symplectic Euler, Störmer--Verlet)."""

    name = "reversible"

    def refusal(self, net):
        method = net.tableau
        if not isinstance(method, PartitionedTableau) or not method.adjoint.is_explicit:
            return ("its layers need an exact explicit inverse: a Hamiltonian network stepped by "
                    f"a pair such as 'stormer_verlet'; this one has the field "
                    f"{type(net.field).__name__} and method {method.name!r} (use DTO())")
        return None

    @staticmethod
    def _layer_adjoint(layer, _, following, p):
        with torch.no_grad():
            y = layer.inverse()(following)
        return (y, *vjp_step(layer, y, p))

    def _compute(self, net, x, y, data_loss):
        E, gradient, _ = sweep(net, x, y, data_loss, self._layer_adjoint, store_states=False)
        return E, gradient
