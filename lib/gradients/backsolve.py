"""The black-box adjoint of Chen et al. (2018): keep only ``y^K`` and integrate the state, the
costate and the parameter gradient backwards together."""
from __future__ import annotations

import torch

from .. import state as tree
from ..tableaux import PartitionedTableau
from .base import Strategy, setup
from .sweep import adjoint_step, sweep

__all__ = ["Backsolve"]


class Backsolve(Strategy):
    """For each layer backwards integrate ``y' = f``, ``p' = -J^T p`` and
    ``g' = -(df/dtheta)^T p`` together from ``t_{k+1}`` to ``t_k`` with the network's tableau
    and step ``-h``:

        Y_i = y^{k+1} - h sum_j a_ij f(Y_j),   P_i = p^{k+1} + h sum_j a_ij J_j^T P_j,
        y^k = y^{k+1} - h sum_i b_i f(Y_i),    p^k = p^{k+1} + h sum_i b_i J_i^T P_i,
        dE/dtheta^k ~ h sum_i b_i (df/dtheta(Y_i))^T P_i.

    Memory does not grow with ``K``, but the reconstructed ``y`` is not the forward one (the
    backward step is not the inverse of the forward step, and a contractive forward field is
    an expanding backward one), so the gradient is not the DTO gradient.  Networks stepped by
    a Runge--Kutta tableau (tensor or pair states)."""

    name = "backsolve"

    def refusal(self, net):
        if isinstance(net.tableau, PartitionedTableau):
            return (f"it integrates backwards with one Runge--Kutta tableau; the network is "
                    f"stepped by the pair {net.tableau.name!r} (use Reversible() or OTD())")
        return None

    @staticmethod
    def _layer_adjoint(layer, _, following, p):
        y, stages = layer.backwards().linearised(following)
        method = layer.method
        return (y, *adjoint_step(stages, layer.theta, p, method.a, method.b, layer.h))

    def _compute(self, net, x, y, data_loss):
        E, gradient, _ = sweep(net, x, y, data_loss, self._layer_adjoint, store_states=False)
        return E, gradient

    def costates(self, net, x, y, loss: str = "cross_entropy") -> list:
        """The costates ``[p^0, ..., p^K]`` computed along the reconstructed states."""
        self.check(net)
        data_loss, x, y = setup(net, x, y, loss)
        return sweep(net, x, y, data_loss, self._layer_adjoint, store_states=False,
                     keep_costates=True)[2]

    def states(self, net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward states ``[y^0..y^K]`` and the states ``[yhat^0..yhat^K]`` that the
        black-box adjoint reconstructs backwards from ``yhat^K = y^K``, both stacked
        ``[K+1, (S,) n, width]`` (for a pair, a pair of stacks, :func:`lib.state.stack`)."""
        self.check(net)
        with torch.no_grad():
            states = net.states(x)
            back = [states[-1]]
            for layer in reversed(net.layers()):
                back.append(layer.backwards()(back[-1]))
        return tree.stack(states), tree.stack(back[::-1])
