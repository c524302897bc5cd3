"""Optimise-then-discretise: the backward sweep of the adjoint equation ``p' = -J^T p``
(Benning et al. 2019, section 3; Sanz-Serna 2016), with the exact discrete adjoint or another
method for ``p``."""
from __future__ import annotations

import torch

from ..tableaux import ButcherTableau, PartitionedTableau, get_tableau
from .base import Strategy, setup
from .sweep import adjoint_step, sweep, sweep_order, vjp_step, weighted_adjoint_step

__all__ = ["OTD"]


class OTD(Strategy):
    """Sweep forward keeping only the layer states ``y^0..y^K``, then solve the adjoint
    equation ``p' = -J(y)^T p``, ``p(T) = dE/dy^K`` backwards layer by layer, recomputing each
    layer's stages, and sum ``dE/dtheta^k = h sum_i bbar_i (df/dtheta)^T P_i``.

    ``adjoint`` is the method used for ``p``:

    - ``None`` (default): the exact discrete adjoint, the DTO gradient to round-off.  For a
      Runge--Kutta tableau it is the symplectic partner, swept in the weighted stage adjoints
      ``b_i P_i`` (:func:`~lib.gradients.sweep.weighted_adjoint_step`), which need no division
      and so also hold where some ``b_i = 0`` (explicit midpoint, dopri5), where no partner
      tableau exists; on a tensor or a ``(z, p)`` state.  For a partitioned pair (a
      Hamiltonian network stepped by Störmer--Verlet) it is the ``(z, p)``-partitioned adjoint,
      the transposed linearised layer (:func:`~lib.gradients.sweep.vjp_step`).
    - a tableau ``(abar, bbar)`` partnered stage by stage with the network's (the partner, or
      any with ``bbar_j - abar_ij = 0`` for ``j <= i``): the stage ``P_i`` uses ``J`` at the
      forward stage ``Y_i``, ``P_i = p^{k+1} + h sum_j (bbar_j - abar_ij) J_j^T P_j``.
    - an explicit tableau ``(alpha, beta, gamma)``: that method applied to the adjoint equation
      in reversed time from ``t_{k+1}`` to ``t_k``; the state at its node ``t_{k+1} - gamma_i h``
      is recomputed from ``y^k`` by a partial forward step.  With an order ``q`` method this
      differs from DTO by ``O(h^min(p, q))``.

    A tableau for ``p`` needs a network stepped by a Runge--Kutta tableau.
    """

    def __init__(self, adjoint: ButcherTableau | str | None = None):
        self.adjoint = None if adjoint is None else get_tableau(adjoint)

    @property
    def name(self) -> str:
        """``"otd_partner"`` for the exact adjoint, ``"otd_<tableau>"`` otherwise."""
        return "otd_partner" if self.adjoint is None else f"otd_{self.adjoint.name}"

    def refusal(self, net):
        if self.adjoint is not None and isinstance(net.tableau, PartitionedTableau):
            return (f"an adjoint tableau ({self.adjoint.name!r}) needs a network stepped by a "
                    f"Runge--Kutta tableau, not the pair {net.tableau.name!r}; use OTD()")
        return None

    def _layer_adjoint(self, net):
        """The step of one layer of the sweep, ``(layer, y^k, _, p^{k+1}) -> (y^k, p^k, grads)``."""
        forward = net.tableau
        if isinstance(forward, PartitionedTableau):
            return lambda layer, y, _, p: (y, *vjp_step(layer, y, p))
        if self.adjoint is None:
            def exact(layer, y, _, p):
                _, stages = layer.linearised(y)
                return (y, *weighted_adjoint_step(stages, layer.theta, p, forward, layer.h))
            return exact
        adjoint = self.adjoint
        if adjoint.is_explicit:
            def reversed_time(layer, y, following, p):
                nodes = {0.0: following, 1.0: y}
                with torch.no_grad():
                    for g in adjoint.c:
                        if g not in nodes:
                            nodes[g] = layer.partial(1.0 - g)(y)
                stages = [layer.stage(nodes[g]) for g in adjoint.c]
                return (y, *adjoint_step(stages, layer.theta, p, adjoint.a, adjoint.b, layer.h))
            return reversed_time
        if adjoint.stages != forward.stages:
            raise ValueError(f"adjoint {adjoint.name!r} is implicit and has {adjoint.stages} "
                             f"stages: a stage-by-stage partner of {forward.name!r} needs "
                             f"{forward.stages}")
        coupling = tuple(tuple(adjoint.b[j] - adjoint.a[i][j] for j in range(adjoint.stages))
                         for i in range(adjoint.stages))
        try:
            sweep_order(coupling)
        except ValueError:
            raise ValueError(
                f"adjoint {adjoint.name!r} cannot be swept explicitly backwards: it must be "
                "explicit, or partnered stage by stage with bbar_j - abar_ij = 0 for j <= i "
                "(as the symplectic partner is)") from None

        def partnered(layer, y, _, p):
            _, stages = layer.linearised(y)
            return (y, *adjoint_step(stages, layer.theta, p, coupling, adjoint.b, layer.h))
        return partnered

    def _compute(self, net, x, y, data_loss):
        E, gradient, _ = sweep(net, x, y, data_loss, self._layer_adjoint(net), store_states=True)
        return E, gradient

    def costates(self, net, x, y, loss: str = "cross_entropy") -> list:
        """The costates ``[p^0, ..., p^K]`` of the sweep (states of the network's kind)."""
        self.check(net)
        data_loss, x, y = setup(net, x, y, loss)
        return sweep(net, x, y, data_loss, self._layer_adjoint(net), store_states=True,
                     keep_costates=True)[2]

    def __repr__(self) -> str:
        return f"OTD({'' if self.adjoint is None else repr(self.adjoint.name)})"
