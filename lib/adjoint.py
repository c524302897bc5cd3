"""Gradients of the training objective, computed four ways (the talk's DTO vs OTD).

The network of :class:`lib.models.ODENet` is ``z^0 = lift(x)``, ``K`` explicit Runge--Kutta steps
``Z_i = z^k + h sum_j a_ij f(Z_j; theta^k)``, ``z^{k+1} = z^k + h sum_i b_i f(Z_i; theta^k)``, and
the objective is the data loss ``E = L(w^T z^K + w0, y)`` of :data:`lib.train.LOSSES`.  With
``p^K = dE/dz^K`` the *discrete adjoint* (Sanz-Serna 2016, SIAM Review 58:3--33) is, for each step
backwards, with ``J_i = df/dz(Z_i; theta^k)``,

    P_i = p^{k+1} + h sum_j (b_j a_ji / b_i) J_j^T P_j,    p^k = p^{k+1} + h sum_i b_i J_i^T P_i,
    dE/dtheta^k = h sum_i b_i (df/dtheta(Z_i; theta^k))^T P_i,

which is the Runge--Kutta method with the *symplectic partner* tableau
(:func:`lib.tableaux.symplectic_partner`) applied to ``p' = -J^T p``.  This module computes

- :func:`dto_gradient`: discretise-then-optimise, autograd through the steps;
- :func:`checkpointed_dto_gradient`: the same, recomputing each segment's graph on the way back
  (Gholami, Keutzer & Biros 2019, ANODE);
- :func:`otd_gradient`: optimise-then-discretise, an explicit backward sweep for ``p`` with the
  partner (equal to DTO to round-off) or any other tableau (an ``O(h^q)`` error);
- :func:`backsolve_gradient`: the black-box adjoint of Chen et al. (2018), which reconstructs ``z``
  backwards from ``z^K`` alone;
- :func:`torchdiffeq_adjoint_gradient`: ``torchdiffeq.odeint_adjoint``, the reference
  implementation of the black-box adjoint.

Every gradient is a dict keyed like ``net.named_parameters()``.  The remaining functions set up
and measure the comparisons of chapters 2 and 3.
"""
from __future__ import annotations

import math
import time
import weakref
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.checkpoint import checkpoint

from .integrators import rk_solve, rk_step, weighted_sum
from .models import ODENet
from .tableaux import METHODS, ButcherTableau, get_tableau, symplectic_partner
from .train import LOSSES, per_member

Gradient = dict[str, torch.Tensor]


# --- shared pieces -------------------------------------------------------------------------------

def _setup(net, x, y, loss: str) -> tuple[Callable, torch.Tensor, torch.Tensor]:
    """Check the arguments of a gradient method; return the data loss and the data, repeated for
    each member when a network with ``S`` members is given one data set shared by all.  With
    members the objective is the sum of the members' losses, so each member's block of the
    gradient is that member's own gradient: S networks as one computation."""
    if not isinstance(net, ODENet):
        raise TypeError(f"net must be a lib.models.ODENet, got {type(net).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    x, y = per_member(net, x, y, "(x, y)", loss)
    layered = set(layer_keys(net))
    other = [name for name, _ in net.field.named_parameters(prefix="field") if name not in layered]
    if other:
        raise ValueError(f"the adjoint sweeps need every field parameter stacked per layer "
                         f"(in field.stacks()); {other} are not")
    return LOSSES[loss], x, y


def _require_tensor_state(net: ODENet, name: str) -> None:
    """Refuse a Hamiltonian network (state ``(z, p)``) in a method written for a tensor state."""
    if net.is_hamiltonian:
        raise ValueError(
            f"{name} sweeps a tensor state stepped by a Runge--Kutta tableau; net is a Hamiltonian "
            f"network (state (z, p), method {net.tableau.name!r}): use dto_gradient, or "
            "reversible_gradient, which stores no states")


def _layer(net: ODENet, k: int) -> tuple[torch.Tensor, ...]:
    """The parameters ``theta^k`` of layer ``k`` as fresh leaves (the sweeps differentiate by hand)."""
    return tuple(p.detach().requires_grad_(True) for p in net.field.layer(k))


def _terminal(net: ODENet, zK: torch.Tensor, y: torch.Tensor, data_loss) -> tuple:
    """``p^K = dE/dz^K`` and the classifier's gradient, by autograd through ``E`` alone."""
    params = dict(net.classifier.named_parameters(prefix="classifier"))
    with torch.enable_grad():
        zK = zK.detach().requires_grad_(True)
        E = data_loss(net.classifier(zK), y).sum()
        pK, *grads = torch.autograd.grad(E, (zK, *params.values()))
    return pK, dict(zip(params, grads))


def _assemble(net: ODENet, layer_grads: list, classifier: Gradient) -> Gradient:
    """Stack the per-layer gradients ``[theta^0, ..., theta^{K-1}]`` and order the dict like
    ``net.named_parameters()``."""
    out = dict(classifier)
    for m, key in enumerate(layer_keys(net)):
        out[key] = torch.stack([g[m] for g in layer_grads])
    return {name: out[name] for name, _ in net.named_parameters()}


def _linearise(net: ODENet, theta, Z: torch.Tensor):
    """``(Z, f(Z; theta))`` with ``Z`` a fresh leaf and the graph of this one evaluation kept, so
    that ``J^T P`` and ``(df/dtheta)^T P`` follow by one vector-Jacobian product."""
    with torch.enable_grad():
        Z = Z.detach().requires_grad_(True)
        return Z, net.field(Z, theta)


def _linearised_step(net: ODENet, theta, z: torch.Tensor, h: float, tableau: ButcherTableau):
    """One step of ``tableau`` from ``z`` (``h < 0`` steps backwards) and its stages, linearised."""
    stages: list = []

    def f(t, Z):
        stages.append(_linearise(net, theta, Z))
        return stages[-1][1].detach()

    with torch.no_grad():
        return rk_step(f, 0.0, z, h, tableau), stages


def _layer_states(net: ODENet, x: torch.Tensor) -> list[torch.Tensor]:
    """The layer states ``[z^0, ..., z^K]`` without any graph."""
    thetas = net.field.thetas()
    with torch.no_grad():
        states = [net.lift(x)]
        for theta in thetas:
            states.append(rk_step(lambda t, z: net.field(z, theta), 0.0, states[-1], net.h,
                                  net.tableau))
    return states


def _sweep_order(coupling) -> range:
    """An order in which the stage adjoints ``P_i = p + h sum_j C_ij V_j`` can be computed one
    after the other: forwards if ``C`` is strictly lower triangular, backwards if strictly upper."""
    s = len(coupling)
    if all(coupling[i][j] == 0.0 for i in range(s) for j in range(i, s)):
        return range(s)
    if all(coupling[i][j] == 0.0 for i in range(s) for j in range(i + 1)):
        return range(s - 1, -1, -1)
    raise ValueError("the stage adjoints cannot be computed one by one (the coupling matrix is "
                     "neither strictly lower nor strictly upper triangular)")


def _adjoint_step(stages, theta, p: torch.Tensor, coupling, weights, h: float):
    """One backward step of the adjoint sweep over a layer with parameters ``theta``.

    stages[i] = (Z_i, f(Z_i; theta)) with its graph, C = coupling, w = weights:
        P_i = p + h sum_j C_ij J_j^T P_j,     J_i = df/dz(Z_i; theta),
        returns  p + h sum_i w_i J_i^T P_i  and  h sum_i w_i (df/dtheta(Z_i))^T P_i.
    With the symplectic partner of (a, b): C_ij = b_j a_ji / b_i and w = b.
    """
    JP = [None] * len(stages)  # J_i^T P_i
    GP = [None] * len(stages)  # (df/dtheta(Z_i))^T P_i, one tensor per parameter
    for i in _sweep_order(coupling):
        P = weighted_sum(p, JP, coupling[i], h)
        Z, fZ = stages[i]
        JP[i], *GP[i] = torch.autograd.grad(fZ, (Z, *theta), P)
    grads = [weighted_sum(torch.zeros_like(G), [Gi[m] for Gi in GP], weights, h)
             for m, G in enumerate(GP[0])]
    return weighted_sum(p, JP, weights, h), grads


def _weighted_adjoint_step(stages, theta, p: torch.Tensor, tableau: ButcherTableau,
                           h: float):
    """One backward step of the partner's sweep in the weighted stage adjoints
    ``Lambda_i = b_i P_i``, which need no division by ``b_i`` (Matsubara, Miyatake &
    Yaguchi 2021, the symplectic adjoint; Hager 2000):

        Lambda_i = b_i p + h sum_j a_ji J_j^T Lambda_j,    J_i = df/dz(Z_i; theta),
        returns  p + h sum_i J_i^T Lambda_i  and  h sum_i (df/dtheta(Z_i))^T Lambda_i.

    The partner's ``P_i = p + h sum_j (b_j a_ji / b_i) J_j^T P_j`` times ``b_i`` gives
    these equations; they hold where ``b_i = 0`` too (explicit midpoint, dopri5), where
    no partner tableau exists: they are the reverse-mode derivative of the step.
    """
    s = tableau.stages
    JL = [None] * s  # J_i^T Lambda_i
    GL = [None] * s  # (df/dtheta(Z_i))^T Lambda_i
    for i in range(s - 1, -1, -1):
        later = range(i + 1, s)
        L = weighted_sum(tableau.b[i] * p, [JL[j] for j in later],
                         [tableau.a[j][i] for j in later], h)
        Z, fZ = stages[i]
        JL[i], *GL[i] = torch.autograd.grad(fZ, (Z, *theta), L)
    ones = [1.0] * s
    grads = [weighted_sum(torch.zeros_like(G), [Gi[m] for Gi in GL], ones, h)
             for m, G in enumerate(GL[0])]
    return weighted_sum(p, JL, ones, h), grads


# --- the gradients -------------------------------------------------------------------------------

def dto_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                 loss: str = "cross_entropy") -> Gradient:
    """Discretise-then-optimise: ``dE/dtheta`` by autograd through the ``K`` discrete steps
    (reverse-mode differentiation of the network, LeCun 1988), exact for the discrete network.
    Memory grows like ``K s`` stored stage activations."""
    data_loss, x, y = _setup(net, x, y, loss)
    params = dict(net.named_parameters())
    with torch.enable_grad():
        grads = torch.autograd.grad(data_loss(net(x), y).sum(), tuple(params.values()))
    return dict(zip(params, grads))


def checkpointed_dto_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                              segment: int | None = None, loss: str = "cross_entropy") -> Gradient:
    """DTO with checkpointing (Gholami, Keutzer & Biros 2019, ANODE): only the states at the
    start of each segment of ``segment`` layers (default ``ceil(sqrt(K))``) are kept, and each
    segment's graph is recomputed on the way back (:func:`torch.utils.checkpoint.checkpoint`).
    The same operations run in the same order, so the gradient is bitwise the DTO gradient;
    memory is about ``K / segment`` states plus one segment's graph."""
    data_loss, x, y = _setup(net, x, y, loss)
    _require_tensor_state(net, "checkpointed_dto_gradient")
    K = net.depth
    segment = math.ceil(math.sqrt(K)) if segment is None else segment
    if not isinstance(segment, int) or isinstance(segment, bool) or segment < 1:
        raise ValueError(f"segment must be a positive integer (layers per segment), got {segment!r}")
    params = dict(net.named_parameters())

    def run(z, start, stop, thetas):
        return rk_solve(lambda k, t, zk: net.field(zk, thetas[start + k]), z, net.h,
                        stop - start, net.tableau)

    with torch.enable_grad():
        thetas = net.field.thetas()
        z = net.lift(x)
        for start in range(0, K, segment):
            z = checkpoint(run, z, start, min(start + segment, K), thetas, use_reentrant=False)
        grads = torch.autograd.grad(data_loss(net.classifier(z), y).sum(), tuple(params.values()))
    return dict(zip(params, grads))


def otd_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                 adjoint_tableau: ButcherTableau | str | None = None,
                 loss: str = "cross_entropy") -> Gradient:
    """Optimise-then-discretise: sweep forward keeping only the layer states ``z^0..z^K``, then
    solve the adjoint equation ``p' = -J(z)^T p``, ``p(T) = dE/dz^K`` backwards step by step,
    recomputing the stages of each step, and sum ``dE/dtheta^k = h sum_i bbar_i
    (df/dtheta)^T P_i`` (Benning et al. 2019, section 3; Sanz-Serna 2016).

    ``adjoint_tableau`` is the method used for ``p``:

    - ``None`` (default): the symplectic partner of ``net.tableau``; the result is the DTO
      gradient to round-off.  Where some ``b_i = 0`` (explicit midpoint, dopri5) no partner
      tableau exists, and the sweep runs in the weighted stage adjoints ``b_i P_i``
      (:func:`_weighted_adjoint_step`), which need no division: DTO to round-off as well.
    - a tableau ``(abar, bbar)`` partnered stage by stage with ``net.tableau`` (the partner, or
      any with ``bbar_j - abar_ij = 0`` for ``j <= i``): the stage ``P_i`` uses ``J`` at the
      forward stage ``Z_i``, ``P_i = p^{k+1} + h sum_j (bbar_j - abar_ij) J_j^T P_j``.
    - an explicit tableau ``(alpha, beta, gamma)``: that method applied to the adjoint equation
      in reversed time from ``t_{k+1}`` to ``t_k``; the state at its node ``t_{k+1} - gamma_i h``
      is recomputed from ``z^k`` by one forward step of ``net.tableau``.  With an order ``q``
      method this differs from DTO by ``O(h^min(p, q))``.
    """
    return _otd_sweep(net, x, y, adjoint_tableau, loss, keep_costates=False)[0]


def _otd_sweep(net: ODENet, x: torch.Tensor, y: torch.Tensor, adjoint_tableau, loss: str,
               keep_costates: bool) -> tuple[Gradient, torch.Tensor | None]:
    """:func:`otd_gradient`'s sweep: the gradient and, with ``keep_costates``, the costates
    ``[p^0, ..., p^K]`` of the backward sweep (else ``None``)."""
    data_loss, x, y = _setup(net, x, y, loss)
    _require_tensor_state(net, "otd_gradient")
    forward = net.tableau
    weighted = adjoint_tableau is None and any(b == 0.0 for b in forward.b)
    if weighted:
        adjoint = forward
    else:
        adjoint = (symplectic_partner(forward) if adjoint_tableau is None
                   else get_tableau(adjoint_tableau))
    h = net.h
    reversed_time = adjoint.is_explicit and not weighted
    if weighted:
        coupling = None
    elif reversed_time:
        coupling = adjoint.a
    else:
        if adjoint.stages != forward.stages:
            raise ValueError(f"adjoint_tableau {adjoint.name!r} is implicit and has {adjoint.stages} "
                             f"stages: a stage-by-stage partner of {forward.name!r} needs "
                             f"{forward.stages}")
        coupling = tuple(tuple(adjoint.b[j] - adjoint.a[i][j] for j in range(adjoint.stages))
                         for i in range(adjoint.stages))
        try:
            _sweep_order(coupling)
        except ValueError:
            raise ValueError(
                f"adjoint_tableau {adjoint.name!r} cannot be swept explicitly backwards: it must be "
                "explicit, or partnered stage by stage with bbar_j - abar_ij = 0 for j <= i "
                "(as the symplectic partner is)") from None
    states = _layer_states(net, x)
    p, classifier = _terminal(net, states[-1], y, data_loss)
    costates = [p] if keep_costates else None
    layer_grads = []
    for k in range(net.depth - 1, -1, -1):
        theta = _layer(net, k)
        if reversed_time:
            nodes = {0.0: states[k + 1], 1.0: states[k]}
            for g in adjoint.c:
                if g not in nodes:
                    with torch.no_grad():
                        nodes[g] = rk_step(lambda t, z: net.field(z, theta), 0.0, states[k],
                                           (1.0 - g) * h, forward)
            stages = [_linearise(net, theta, nodes[g]) for g in adjoint.c]
        else:
            _, stages = _linearised_step(net, theta, states[k], h, forward)
        if weighted:
            p, grads = _weighted_adjoint_step(stages, theta, p, forward, h)
        else:
            p, grads = _adjoint_step(stages, theta, p, coupling, adjoint.b, h)
        layer_grads.append(grads)
        if keep_costates:
            costates.append(p)
    return (_assemble(net, layer_grads[::-1], classifier),
            torch.stack(costates[::-1]) if keep_costates else None)


def backward_states(net: ODENet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward states ``[z^0..z^K]`` and the states ``[zhat^0..zhat^K]`` that the black-box
    adjoint reconstructs by integrating ``z' = f(z; theta^k)`` backwards from ``zhat^K = z^K``
    with ``net.tableau`` and step ``-h`` (Chen et al. 2018).  Both ``[K+1, n, width]``."""
    _require_tensor_state(net, "backward_states")
    with torch.no_grad():
        states = net.trajectory(x)
        thetas = net.field.thetas()
        K = net.depth
        back = rk_solve(lambda k, t, z: net.field(z, thetas[K - 1 - k]), states[-1], -net.h, K,
                        net.tableau, trajectory=True)
    return states, back.flip(0)


def backsolve_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                       loss: str = "cross_entropy") -> Gradient:
    """The black-box adjoint of Chen et al. (2018): keep only ``z^K``; then for each step
    backwards integrate ``z' = f``, ``p' = -J^T p`` and ``g' = -(df/dtheta)^T p`` together from
    ``t_{k+1}`` to ``t_k`` with ``net.tableau`` and step ``-h``:

        Z_i = z^{k+1} - h sum_j a_ij f(Z_j),   P_i = p^{k+1} + h sum_j a_ij J_j^T P_j,
        z^k = z^{k+1} - h sum_i b_i f(Z_i),    p^k = p^{k+1} + h sum_i b_i J_i^T P_i,
        dE/dtheta^k ~ h sum_i b_i (df/dtheta(Z_i))^T P_i.

    Memory does not grow with ``K``, but the reconstructed ``z`` is not the forward one (the
    backward step is not the inverse of the forward step, and a contractive forward field is an
    expanding backward one), so the gradient is not the DTO gradient.
    """
    return _backsolve_sweep(net, x, y, loss, keep_costates=False)[0]


def _backsolve_sweep(net: ODENet, x: torch.Tensor, y: torch.Tensor, loss: str,
                     keep_costates: bool) -> tuple[Gradient, torch.Tensor | None]:
    """:func:`backsolve_gradient`'s sweep: the gradient and, with ``keep_costates``, the
    costates ``[p^0, ..., p^K]`` it computes along the reconstructed states (else ``None``)."""
    data_loss, x, y = _setup(net, x, y, loss)
    _require_tensor_state(net, "backsolve_gradient")
    with torch.no_grad():
        z = net.features(x)
    p, classifier = _terminal(net, z, y, data_loss)
    costates = [p] if keep_costates else None
    layer_grads = []
    for k in range(net.depth - 1, -1, -1):
        theta = _layer(net, k)
        z, stages = _linearised_step(net, theta, z, -net.h, net.tableau)
        p, grads = _adjoint_step(stages, theta, p, net.tableau.a, net.tableau.b, net.h)
        layer_grads.append(grads)
        if keep_costates:
            costates.append(p)
    return (_assemble(net, layer_grads[::-1], classifier),
            torch.stack(costates[::-1]) if keep_costates else None)


# torchdiffeq's fixed-grid methods that are one of lib's tableaux (its "rk4" is the 3/8 rule).
_TORCHDIFFEQ_METHODS = {"euler": "euler", "midpoint": "midpoint", "heun": "heun2", "rk38": "rk4"}


class _LayerwiseField(torch.nn.Module):
    """``f(t, z) = f(z; theta^k)`` for torchdiffeq, the layer ``k`` read off the step being taken
    (torchdiffeq calls ``callback_step`` at the start of each fixed-grid step, forwards and,
    as ``callback_step_adjoint``, backwards)."""

    def __init__(self, net: ODENet):
        super().__init__()
        self.field, self.h, self.depth, self.layer = net.field, net.h, net.depth, 0

    def _set(self, t0, offset: int) -> None:
        self.layer = min(max(round(float(t0) / self.h) + offset, 0), self.depth - 1)

    def callback_step(self, t0, y0, dt) -> None:
        self._set(t0, 0)

    def callback_step_adjoint(self, t0, y0, dt) -> None:
        self._set(t0, -1)

    def forward(self, t, z):
        return self.field(z, self.field.layer(self.layer))


def torchdiffeq_adjoint_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                                 loss: str = "cross_entropy") -> Gradient:
    """The gradient from ``torchdiffeq.odeint_adjoint`` (Chen et al. 2018) on the fixed grid of
    step ``h`` with the same method as ``net`` (euler, midpoint, heun, rk38 = torchdiffeq's
    "rk4"): the black-box adjoint as published.  With per-layer parameters its backward pass
    carries the whole stacked parameter tensor in every stage, so its cost grows like ``K^2``."""
    import torchdiffeq

    data_loss, x, y = _setup(net, x, y, loss)
    _require_tensor_state(net, "torchdiffeq_adjoint_gradient")
    names = {(t.a, t.b, t.c): name for name, t in METHODS.items()}
    method = _TORCHDIFFEQ_METHODS.get(names.get((net.tableau.a, net.tableau.b, net.tableau.c)))
    if method is None:
        raise ValueError(f"torchdiffeq has no fixed-grid method equal to {net.tableau.name!r}; "
                         f"expected one of {sorted(_TORCHDIFFEQ_METHODS)}")
    func = _LayerwiseField(net)
    params = dict(net.named_parameters())
    field_params = tuple(net.field.parameters())
    z0 = net.lift(x)
    t = torch.tensor([0.0, net.T], dtype=z0.dtype, device=z0.device)
    with torch.enable_grad():
        zK = torchdiffeq.odeint_adjoint(func, z0, t, method=method, options={"step_size": net.h},
                                        adjoint_params=field_params)[-1]
        grads = torch.autograd.grad(data_loss(net.classifier(zK), y).sum(), tuple(params.values()))
    return dict(zip(params, grads))


# --- comparisons and measurements ----------------------------------------------------------------

def relative_difference(g: Gradient, reference: Gradient, keys=None) -> float:
    """``|g - g_ref| / |g_ref|`` over the entries named in ``keys`` (default: all of
    ``reference``), the norms taken over all those entries together."""
    keys = list(reference) if keys is None else list(keys)
    missing = [k for k in keys if k not in g or k not in reference]
    if missing:
        raise ValueError(f"both gradients must have the entries {missing}")
    diff = math.sqrt(sum(float((g[k] - reference[k]).square().sum()) for k in keys))
    ref = math.sqrt(sum(float(reference[k].square().sum()) for k in keys))
    return diff / ref


def layer_keys(net: ODENet) -> list[str]:
    """The names of the per-layer parameters ``theta^k`` in a gradient dict; their gradients
    scale like ``h``, so relative differences over them measure the adjoint's error alone."""
    return [f"field.{name}" for name in net.field.stacks()]


def smooth_network(width: int = 4, depth: int = 16, T: float = 1.0, method="rk4",
                   activation: str = "tanh", contraction=0.0, seed: int = 0,
                   dtype: torch.dtype = torch.float64, device=None, field="resnet") -> ODENet:
    """An :class:`ODENet` whose layers sample one continuous ``theta(t)``:

        A(t) = (1 - t/T) A_a + (t/T) A_b - C,   b(t) = (1 - t/T) b_a + (t/T) b_b,

    at ``t_k = k h``, with ``(A_a, b_a)``, ``(A_b, b_b)`` two random layers drawn from ``seed``
    and the classifier drawn with them.
    Networks of different depths are then discretisations of the same continuous problem,
    which is what convergence in ``h`` needs.  ``C = contraction I`` for a number, and
    ``C = diag(contraction)`` for a sequence of ``width`` rates.  For ``contraction > 0`` the
    field is contractive where ``sigma' ~ 1`` (the identity activation: everywhere once
    ``contraction`` exceeds the largest eigenvalue of the symmetric part of ``A``); rates of
    both signs, ``(c, -c, ...)``, make a saddle that contracts some directions and expands
    others.  ``field`` is passed to :class:`ODENet`
    (e.g. :class:`~lib.hamiltonian.SecondOrderField` with ``method="stormer_verlet"``); every
    stacked parameter is interpolated the same way."""
    net = ODENet(width=width, depth=depth, T=T, method=method, activation=activation,
                 field=field, seed=seed)
    reference = ODENet(width=width, depth=2, activation=activation, field=field, seed=seed)
    rates = _contraction_rates(contraction, width)
    if bool(rates.ne(0).any()) and "A" not in net.field.stacks():
        raise ValueError(f"contraction needs a field with a matrix A; {type(net.field).__name__} "
                         f"has {list(net.field.stacks())}")
    s = torch.arange(depth, dtype=torch.float64) * net.h / net.T
    with torch.no_grad():
        for theta, ends in zip(net.field.stacks().values(), reference.field.stacks().values()):
            ends = ends.double()
            shape = (depth,) + (1,) * (ends.dim() - 1)
            theta.copy_((1 - s.view(shape)) * ends[0] + s.view(shape) * ends[1])
        if bool(rates.ne(0).any()):
            net.field.A.sub_(torch.diag(rates))
        for name, param in reference.classifier.named_parameters():
            getattr(net.classifier, name).copy_(param)
    return net.to(device=device, dtype=dtype)


def _contraction_rates(contraction, width: int) -> torch.Tensor:
    """The diagonal of ``C`` in :func:`smooth_network`: ``width`` copies of a number, or a
    sequence of ``width`` finite rates."""
    if isinstance(contraction, bool):
        raise TypeError("contraction must be a number or a sequence of numbers, "
                        f"got {contraction!r}")
    if isinstance(contraction, (int, float)):
        contraction = [float(contraction)] * width
    try:
        rates = torch.tensor([float(c) for c in contraction], dtype=torch.float64)
    except (TypeError, ValueError):
        raise TypeError("contraction must be a number or a sequence of numbers, "
                        f"got {contraction!r}") from None
    if rates.numel() != width or not bool(rates.isfinite().all()):
        raise ValueError(f"contraction must be one finite rate or {width} finite rates (one per "
                         f"coordinate), got {list(contraction)!r}")
    return rates


class _PeakMemory(TorchDispatchMode):
    """Counts the bytes of every tensor storage created while active and frees them again when
    the storage dies, keeping the peak."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self._seen:
                    self._seen.add(key)
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, storage.nbytes())
        return out


def peak_memory(fn: Callable, *args, **kwargs) -> tuple[object, int]:
    """``(fn(*args, **kwargs), peak)``: ``peak`` is the largest number of bytes held at once by
    tensors created during the call (inputs and parameters excluded), counted op by op.  It
    is deterministic and works on every device; it does not count allocator slack."""
    meter = _PeakMemory()
    with meter:
        out = fn(*args, **kwargs)
    return out, meter.peak


def seconds_per_call(fn: Callable, *args, repeat: int = 3, **kwargs) -> float:
    """The median wall-clock time of ``repeat`` calls of ``fn(*args, **kwargs)`` after one
    warm-up call (synchronising CUDA when it is in use)."""
    def once():
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return sorted(once() for _ in range(repeat))[repeat // 2]


# --- the Hamiltonian's gradient: stationarity at a trained optimum (chapter 2) --------------------

def weight_penalty(rho: float) -> Callable[[ODENet], torch.Tensor]:
    """The weight penalty ``Omega_h = (rho / 2) (h sum_k |theta^k|^2 + |w|^2 + w0^2)``, the
    discretisation of ``(rho / 2) (int_0^T |theta(t)|^2 dt + |w|^2 + w0^2)``, over all stacked
    field parameters and the classifier; one value per member.  It makes the training objective
    coercive, so that a minimiser exists, and it adds ``rho theta(t)`` to ``dH/dtheta``
    (:func:`hamiltonian_gradient`).  For :func:`lib.train.train`'s ``regulariser``."""
    if isinstance(rho, bool) or not (isinstance(rho, (int, float)) and math.isfinite(rho)
                                     and rho >= 0):
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}")

    def regulariser(net: ODENet) -> torch.Tensor:
        def squares(p: torch.Tensor, member_dim: int) -> torch.Tensor:
            if net.members is None:
                return p.square().sum()
            return p.square().transpose(0, member_dim).reshape(net.members, -1).sum(1)

        field = sum(squares(p, 1) for p in net.field.stacks().values())
        classifier = sum(squares(p, 0) for p in net.classifier.parameters())
        return 0.5 * rho * (net.h * field + classifier)

    return regulariser


def hamiltonian_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                         regulariser: Callable | None = None,
                         loss: str = "cross_entropy") -> Gradient:
    """The discrete dH/dtheta + dR/dtheta at each layer time t_k: the gradient of
    layer k divided by h, (1/h) dE_h/dtheta^k, keyed like layer_keys(net), [K, ...].

    The data part comes from the backward sweep of otd_gradient; it approximates
    sum_n df/dtheta(z_n(t_k); theta)^T p_n(t_k) (Benning et al. 2019, section 3).
    """
    grads = otd_gradient(net, x, y, loss=loss)
    keys = layer_keys(net)
    out = {key: grads[key] / net.h for key in keys}
    if regulariser is None:
        return out
    with torch.enable_grad():
        R = regulariser(net)
        if not isinstance(R, torch.Tensor) or R.dim() != 0:
            raise ValueError("regulariser(net) must return a 0-dim tensor")
        stacks = [dict(net.named_parameters())[key] for key in keys]
        dR = torch.autograd.grad(R, stacks, allow_unused=True)
    for key, g in zip(keys, dR):
        if g is not None:
            out[key] = out[key] + g / net.h
    return out


def layer_norms(g: Gradient) -> torch.Tensor:
    """The Euclidean norm of each layer's entries ``[K]``, over all the stacked ``[K, ...]``
    tensors of ``g`` (e.g. :func:`hamiltonian_gradient`) together."""
    if not g or len({v.shape[0] for v in g.values()}) != 1:
        raise ValueError("g must hold stacked per-layer tensors [K, ...] with one K")
    return torch.stack([v.flatten(1).square().sum(1) for v in g.values()]).sum(0).sqrt()


# --- the bilinear invariant <p^k, dz^k> (chapter 3) ----------------------------------------------

def tangents(net: ODENet, x: torch.Tensor, dz0: torch.Tensor) -> torch.Tensor:
    """The perturbation ``dz^0`` of ``z^0 = lift(x)`` carried through the linearised steps,
    ``dz^{k+1} = (dPhi_h/dz)(z^k; theta^k) dz^k`` (forward-mode differentiation of each step,
    :func:`torch.func.jvp`); ``[K+1, n, width]``.  A Runge--Kutta step's linearisation is the
    same method applied to the variational equation ``dz' = J(z) dz``."""
    if not isinstance(net, ODENet):
        raise TypeError(f"net must be a lib.models.ODENet, got {type(net).__name__}")
    if net.members is not None:
        raise ValueError(f"net has {net.members} members: pass net.member(s)")
    with torch.no_grad():
        z = net.lift(x)
    if not isinstance(dz0, torch.Tensor) or dz0.shape != z.shape:
        raise ValueError(f"dz0 must be a tensor of the lifted states' shape {list(z.shape)}")
    out = [dz0]
    for theta in net.field.thetas():
        theta = tuple(p.detach() for p in theta)

        def step(u, theta=theta):
            return rk_step(lambda t, v: net.field(v, theta), 0.0, u, net.h, net.tableau)

        z, dz = torch.func.jvp(step, (z,), (out[-1],))
        out.append(dz)
    return torch.stack(out)


def costates(net: ODENet, x: torch.Tensor, y: torch.Tensor, adjoint=None,
             loss: str = "cross_entropy") -> torch.Tensor:
    """The costates ``[p^0, ..., p^K]`` (``[K+1, n, width]``) of a backward sweep from
    ``p^K = dE/dz^K``: ``adjoint`` is ``None`` (the symplectic partner), a tableau or its name
    (as ``adjoint_tableau`` of :func:`otd_gradient`), or ``"backsolve"``
    (:func:`backsolve_gradient`, along the reconstructed states)."""
    if isinstance(adjoint, str) and adjoint == "backsolve":
        return _backsolve_sweep(net, x, y, loss, keep_costates=True)[1]
    return _otd_sweep(net, x, y, adjoint, loss, keep_costates=True)[1]


def bilinear_invariant(net: ODENet, x: torch.Tensor, y: torch.Tensor, dz0: torch.Tensor,
                       adjoint=None, loss: str = "cross_entropy") -> torch.Tensor:
    """``<p^k, dz^k>`` for ``k = 0..K`` (``[K+1]``, summed over the points): the costates of
    :func:`costates` against the tangents of :func:`tangents`.  The continuous flows conserve it
    (``d/dt <p, dz> = <-J^T p, dz> + <p, J dz> = 0``); a symplectic pair (the partner) conserves it
    exactly, step by step, and that is why OTD with the partner is DTO (Sanz-Serna 2016, section
    3); other adjoint methods conserve it only to ``O(h^q)``."""
    return (costates(net, x, y, adjoint, loss) * tangents(net, x, dz0)).flatten(1).sum(1)


# --- the reversible gradient of a Hamiltonian network (chapter 5) ---------------------------------

def _require_reversible(net: ODENet) -> None:
    if not net.is_hamiltonian or isinstance(net.tableau, ButcherTableau):
        raise ValueError(
            "reversible_gradient needs a Hamiltonian network stepped by a partitioned pair such "
            "as 'stormer_verlet' (its layers have an exact explicit inverse); net has the field "
            f"{type(net.field).__name__} and method {net.tableau.name!r}: use dto_gradient")


def reversible_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                        loss: str = "cross_entropy") -> Gradient:
    """The DTO gradient of a Hamiltonian network without storing its states (the
    reversible networks of Chang et al. 2018; Gomez et al. 2017).  Sweep forward keeping
    only ``(z^K, p^K)``.  Then for ``k = K-1, ..., 0`` reconstruct ``(z^k, p^k)`` with
    the exact inverse of layer ``k`` (:meth:`ODENet.inverse_step`), recompute that layer
    with autograd and backpropagate the adjoints ``(zbar, pbar)`` through it, from
    ``zbar^K = dE/dz^K`` and ``pbar^K = 0`` (the classifier reads ``z^K``).  Memory: one
    layer's states and graph, whatever ``K``.  The result is the DTO gradient up to the
    round-off of the reconstruction.  Needs a pair with an explicit adjoint (symplectic
    Euler, Störmer--Verlet)."""
    data_loss, x, y = _setup(net, x, y, loss)
    _require_reversible(net)
    with torch.no_grad():
        state = net.final_state(x)
    zbar, classifier = _terminal(net, state[0], y, data_loss)
    bars = (zbar, torch.zeros_like(zbar))
    names = layer_keys(net)
    stacks = {name: torch.empty_like(p)
              for name, p in zip(names, net.field.stacks().values())}
    for k in range(net.depth - 1, -1, -1):
        theta = _layer(net, k)
        with torch.no_grad():
            state = net.inverse_step(k, state, theta)
        with torch.enable_grad():
            leaves = tuple(c.detach().requires_grad_(True) for c in state)
            out = net.step(k, leaves, theta)
            grads = torch.autograd.grad(out, (*leaves, *theta), bars)
        bars = grads[:2]
        for name, g in zip(names, grads[2:]):
            stacks[name][k] = g
    gradient = classifier | stacks
    return {name: gradient[name] for name, _ in net.named_parameters()}


GRADIENTS: dict[str, Callable[..., Gradient]] = {
    "dto": dto_gradient,
    "checkpointed_dto": checkpointed_dto_gradient,
    "otd_partner": otd_gradient,
    "backsolve": backsolve_gradient,
    "torchdiffeq_adjoint": torchdiffeq_adjoint_gradient,
    "reversible": reversible_gradient,
}
"""The gradient methods by name, each ``(net, x, y) -> dict``; every one accepts a network
with members (each member's block is that member's gradient), and says which networks it
refuses (``reversible`` needs a Hamiltonian network with a partitioned pair; the sweeps that
step a tensor state refuse Hamiltonian networks)."""
