"""The reference implementation of the black-box adjoint: ``torchdiffeq.odeint_adjoint``."""
from __future__ import annotations

import torch

from ..tableaux import METHODS, PartitionedTableau
from .base import Strategy, autograd_gradient

__all__ = ["TorchdiffeqAdjoint"]

# torchdiffeq's fixed-grid methods that are one of lib's tableaux (its "rk4" is the 3/8 rule).
_TORCHDIFFEQ_METHODS = {"euler": "euler", "midpoint": "midpoint", "heun": "heun2", "rk38": "rk4"}


class _LayerwiseField(torch.nn.Module):
    """``f(t, z) = f(z; theta^k)`` for torchdiffeq, the layer ``k`` read off the step being taken
    (torchdiffeq calls ``callback_step`` at the start of each fixed-grid step, forwards and,
    as ``callback_step_adjoint``, backwards)."""

    def __init__(self, net):
        super().__init__()
        self.net, self.h, self.layer = net, net.h, 0

    def _set(self, t0, offset: int) -> None:
        self.layer = min(max(round(float(t0) / self.h) + offset, 0), self.net.depth - 1)

    def callback_step(self, t0, y0, dt) -> None:
        self._set(t0, 0)

    def callback_step_adjoint(self, t0, y0, dt) -> None:
        self._set(t0, -1)

    def forward(self, t, z):
        return self.net.layer(self.layer).rate(z)


class TorchdiffeqAdjoint(Strategy):
    """The gradient from ``torchdiffeq.odeint_adjoint`` (Chen et al. 2018) on the fixed grid of
    step ``h`` with the same method as the network (euler, midpoint, heun, rk38 = torchdiffeq's
    "rk4"): the black-box adjoint as published, the independent reference for
    :class:`~lib.gradients.Backsolve`.  With per-layer parameters its backward pass carries
    the whole stacked parameter tensor in every stage, so its cost grows like ``K^2``.
    Networks with a tensor state and one of those four tableaux."""

    name = "torchdiffeq_adjoint"

    def refusal(self, net):
        if isinstance(net.tableau, PartitionedTableau):
            return (f"torchdiffeq steps one tableau on a tensor state; the network is stepped by "
                    f"the pair {net.tableau.name!r} on (z, p)")
        if _torchdiffeq_method(net.tableau) is None:
            return (f"torchdiffeq has no fixed-grid method equal to {net.tableau.name!r}; "
                    f"expected one of {sorted(_TORCHDIFFEQ_METHODS)}")
        if not isinstance(net.field.initial_state(torch.zeros(1)), torch.Tensor):
            return "torchdiffeq's adjoint here steps a tensor state, not the pair (z, p)"
        return None

    def _compute(self, net, x, y, data_loss):
        import torchdiffeq

        func = _LayerwiseField(net)
        z0 = net.lift(x)
        t = torch.tensor([0.0, net.T], dtype=z0.dtype, device=z0.device)
        with torch.enable_grad():
            zK = torchdiffeq.odeint_adjoint(func, z0, t, method=_torchdiffeq_method(net.tableau),
                                            options={"step_size": net.h},
                                            adjoint_params=tuple(net.field.parameters()))[-1]
            return autograd_gradient(net, data_loss(net.classifier(zK), y))


def _torchdiffeq_method(tableau) -> str | None:
    names = {(t.a, t.b, t.c): name for name, t in METHODS.items()}
    key = (getattr(tableau, "a", None), getattr(tableau, "b", None), getattr(tableau, "c", None))
    return _TORCHDIFFEQ_METHODS.get(names.get(key))
