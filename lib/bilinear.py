"""The bilinear invariant ``<p^k, dy^k>`` of chapter 3: tangents carried forwards through the
linearised layers, costates swept backwards, and their pairing.

The continuous flows conserve it (``d/dt <p, dy> = <-J^T p, dy> + <p, J dy> = 0``); a
symplectic pair (the partner) conserves it exactly, step by step, and that is why OTD with
the partner is DTO (Sanz-Serna 2016, section 3); other adjoint methods conserve it only to
``O(h^q)``.  States may be tensors or pairs (:mod:`lib.state`).
"""
from __future__ import annotations

import torch

from . import state as tree
from .gradients import OTD, Strategy
from .models import ODENet, single_network

__all__ = ["tangents", "costates", "bilinear_invariant"]


def tangents(net: ODENet, x: torch.Tensor, dy0) -> object:
    """The perturbation ``dy^0`` of ``y^0 = lift(x)`` carried through the linearised layers,
    ``dy^{k+1} = (dPhi_h/dy)(y^k; theta^k) dy^k`` (forward-mode differentiation of each layer
    map, :func:`torch.func.jvp`), stacked ``[K+1, n, width]`` (a pair of stacks for a pair).
    A Runge--Kutta step's linearisation is the same method applied to the variational
    equation ``dy' = J(y) dy``."""
    single_network(net, "tangents")
    with torch.no_grad():
        y = net.lift(x)
    shapes = [list(c.shape) for c in tree.components(y)]
    if (type(dy0) is not type(y)
            or [list(c.shape) for c in tree.components(tree.check(dy0, "dy0"))] != shapes):
        raise ValueError(f"dy0 must be a state of the lifted states' kind and shapes {shapes}")
    out = [dy0]
    for layer in net.layers():
        layer = layer.with_theta(p.detach() for p in layer.theta)
        y, dy = torch.func.jvp(layer, (y,), (out[-1],))
        out.append(dy)
    return tree.stack(out)


def costates(net: ODENet, x: torch.Tensor, y: torch.Tensor, strategy: Strategy | None = None,
             loss: str = "cross_entropy") -> object:
    """The costates ``[p^0, ..., p^K]`` of a backward sweep from ``p^K = dE/dy^K``, stacked
    like :func:`tangents`: ``strategy`` is :class:`~lib.gradients.OTD` (default, the exact
    adjoint; ``OTD(tableau)`` another method for ``p``) or :class:`~lib.gradients.Backsolve`
    (along the reconstructed states)."""
    strategy = OTD() if strategy is None else strategy
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a lib.gradients.Strategy such as OTD(), got "
                        f"{type(strategy).__name__}")
    return tree.stack(strategy.costates(net, x, y, loss))


def bilinear_invariant(net: ODENet, x: torch.Tensor, y: torch.Tensor, dy0,
                       strategy: Strategy | None = None,
                       loss: str = "cross_entropy") -> torch.Tensor:
    """``<p^k, dy^k>`` for ``k = 0..K`` (``[K+1]``, summed over the points and the components of
    the state): the costates of :func:`costates` against the tangents of :func:`tangents`."""
    p, dy = costates(net, x, y, strategy, loss), tangents(net, x, dy0)
    return sum((pc * dc).flatten(1).sum(1)
               for pc, dc in zip(tree.components(p), tree.components(dy)))
