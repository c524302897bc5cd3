"""The backward sweep that OTD, backsolve and the reversible gradient share, and its steps.

The network is ``y^0 = lift(x)``, ``y^{k+1} = Phi_h(y^k; theta^k)`` (:meth:`ODENet.layer`), and
the data loss ``E`` reads ``y^K``.  With ``p^K = dE/dy^K`` the discrete adjoint runs backwards,

    p^k = (dPhi_h/dy)(y^k; theta^k)^T p^{k+1},    dE/dtheta^k = (dPhi_h/dtheta)(y^k; theta^k)^T p^{k+1},

and for a Runge--Kutta step it is the method with the *symplectic partner* tableau applied to
``p' = -J^T p`` (Sanz-Serna 2016, SIAM Review 58:3--33; Hager 2000).  :func:`sweep` runs the
loop; a strategy supplies the step of one layer: :func:`adjoint_step` (a coupling matrix and
weights, for the partner and for other adjoint tableaux), :func:`weighted_adjoint_step` (the
partner in the weighted stage adjoints ``b_i P_i``, which needs no division by ``b_i``) or
:func:`vjp_step` (the transposed layer by one vector-Jacobian product, for a partitioned
pair, whose adjoint is again a partitioned pair).  The states may be tensors or pairs
(:mod:`lib.state`).
"""
from __future__ import annotations

from typing import Callable

import torch

from .. import state as tree
from ..integrators import weighted_sum
from ..layers import Layer
from ..models import ODENet
from .base import Gradient, assemble, terminal

__all__ = ["sweep", "adjoint_step", "weighted_adjoint_step", "vjp_step", "sweep_order"]


def combine(p, terms, weights, h: float):
    """``p + h sum_i w_i terms_i`` for tensor or tuple states; zero weights cost nothing."""
    if isinstance(p, torch.Tensor):
        return weighted_sum(p, terms, weights, h)
    out = p
    for w, term in zip(weights, terms):
        if w != 0.0:
            out = tuple(o + (h * w) * t for o, t in zip(out, term))
    return out


def _pullback(stage, theta, P) -> tuple:
    """``(J^T P, (df/dtheta)^T P)`` at one recorded stage ``(Y, f(Y))``: one vector-Jacobian
    product, for tensor or tuple states."""
    Y, fY = stage
    n = len(tree.components(Y))
    grads = torch.autograd.grad(tree.components(fY), (*tree.components(Y), *theta),
                                tree.components(P), materialize_grads=True)
    JP = grads[0] if isinstance(Y, torch.Tensor) else tuple(grads[:n])
    return JP, list(grads[n:])


def sweep_order(coupling) -> range:
    """An order in which the stage adjoints ``P_i = p + h sum_j C_ij V_j`` can be computed one
    after the other: forwards if ``C`` is strictly lower triangular, backwards if strictly upper."""
    s = len(coupling)
    if all(coupling[i][j] == 0.0 for i in range(s) for j in range(i, s)):
        return range(s)
    if all(coupling[i][j] == 0.0 for i in range(s) for j in range(i + 1)):
        return range(s - 1, -1, -1)
    raise ValueError("the stage adjoints cannot be computed one by one (the coupling matrix is "
                     "neither strictly lower nor strictly upper triangular)")


def adjoint_step(stages, theta, p, coupling, weights, h: float):
    """One backward step of the adjoint sweep over a layer with parameters ``theta``.

    stages[i] = (Y_i, f(Y_i; theta)) with its graph, C = coupling, w = weights:
        P_i = p + h sum_j C_ij J_j^T P_j,     J_i = df/dy(Y_i; theta),
        returns  p + h sum_i w_i J_i^T P_i  and  h sum_i w_i (df/dtheta(Y_i))^T P_i.
    With the symplectic partner of (a, b): C_ij = b_j a_ji / b_i and w = b.
    """
    JP = [None] * len(stages)  # J_i^T P_i
    GP = [None] * len(stages)  # (df/dtheta(Y_i))^T P_i, one tensor per parameter
    for i in sweep_order(coupling):
        JP[i], GP[i] = _pullback(stages[i], theta, combine(p, JP, coupling[i], h))
    grads = [weighted_sum(torch.zeros_like(G), [Gi[m] for Gi in GP], weights, h)
             for m, G in enumerate(GP[0])]
    return combine(p, JP, weights, h), grads


def weighted_adjoint_step(stages, theta, p, tableau, h: float):
    """One backward step of the partner's sweep in the weighted stage adjoints
    ``Lambda_i = b_i P_i``, which need no division by ``b_i`` (Matsubara, Miyatake &
    Yaguchi 2021, the symplectic adjoint; Hager 2000):

        Lambda_i = b_i p + h sum_j a_ji J_j^T Lambda_j,    J_i = df/dy(Y_i; theta),
        returns  p + h sum_i J_i^T Lambda_i  and  h sum_i (df/dtheta(Y_i))^T Lambda_i.

    The partner's ``P_i = p + h sum_j (b_j a_ji / b_i) J_j^T P_j`` times ``b_i`` gives
    these equations; they hold where ``b_i = 0`` too (explicit midpoint, dopri5), where
    no partner tableau exists: they are the reverse-mode derivative of the step.
    """
    s = tableau.stages
    JL = [None] * s  # J_i^T Lambda_i
    GL = [None] * s  # (df/dtheta(Y_i))^T Lambda_i
    zero = tree.tree_map(torch.zeros_like, p)
    for i in range(s - 1, -1, -1):
        later = range(i + 1, s)
        start = (tree.tree_map(lambda c: tableau.b[i] * c, p) if tableau.b[i] != 0.0
                 else zero)
        L = combine(start, [JL[j] for j in later], [tableau.a[j][i] for j in later], h)
        JL[i], GL[i] = _pullback(stages[i], theta, L)
    ones = [1.0] * s
    grads = [weighted_sum(torch.zeros_like(G), [Gi[m] for Gi in GL], ones, h)
             for m, G in enumerate(GL[0])]
    return combine(p, JL, ones, h), grads


def vjp_step(layer: Layer, y, p):
    """``((dPhi/dy)^T p, (dPhi/dtheta)^T p)`` at the state ``y`` of the layer: the layer
    recomputed with autograd and differentiated once (for a partitioned pair this is the
    adjoint pair's step on the costate pair)."""
    with torch.enable_grad():
        y = tree.detached(y, requires_grad=True)
        n = len(tree.components(y))
        grads = torch.autograd.grad(tree.components(layer(y)),
                                    (*tree.components(y), *layer.theta),
                                    tree.components(p), materialize_grads=True)
    return (grads[0] if isinstance(y, torch.Tensor) else tuple(grads[:n])), list(grads[n:])


LayerAdjoint = Callable[[Layer, object, object, object], tuple]
"""``(layer, y^k or None, y^{k+1}, p^{k+1}) -> (y^k, p^k, grads of theta^k)``."""


def sweep(net: ODENet, x: torch.Tensor, y: torch.Tensor, data_loss: Callable,
          layer_adjoint: LayerAdjoint, store_states: bool,
          keep_costates: bool = False) -> tuple[torch.Tensor, Gradient, list | None]:
    """The backward sweep: forwards without a graph (keeping all states ``y^0..y^K``
    when ``store_states``, else only ``y^K``), then ``p^K = dE/dy^K`` and, for
    ``k = K-1..0``, ``layer_adjoint`` on layer ``k`` with fresh parameter leaves.
    Returns the data loss per member, the gradient and, with ``keep_costates``, the
    costates ``[p^0, ..., p^K]``."""
    with torch.no_grad():
        states = net.states(x) if store_states else [net.final_state(x)]
    E, p, classifier = terminal(net, states[-1], y, data_loss)
    costates = [p] if keep_costates else None
    layer_grads, following = [], states[-1]
    for k in range(net.depth - 1, -1, -1):
        layer = net.layer(k).leaves()
        following, p, grads = layer_adjoint(layer, states[k] if store_states else None,
                                            following, p)
        layer_grads.append(grads)
        if keep_costates:
            costates.append(p)
    return (E, assemble(net, layer_grads[::-1], classifier),
            costates[::-1] if keep_costates else None)
