"""Runge--Kutta steps and fixed-step solves, for a tensor state or a tuple state.

One step of an explicit method ``(a, b, c)`` with step ``h`` (Hairer, Norsett & Wanner,
*Solving ODEs I*, II.1):

    Z_i = z + h sum_{j<i} a_ij k_j,   k_i = f(t + c_i h, Z_i),   z_next = z + h sum_i b_i k_i.

Every vector field here has one signature, ``f(t, z)``: time, state.  A network layer is one
such step with the layer's own parameters ``theta^k`` held fixed (:class:`lib.layers.Layer`);
with the Euler tableau and ``h = 1`` it is exactly the ResNet layer ``z + f(z)``.

The state may also be a tuple of tensors (the same tableau steps each component), and a
:class:`~lib.tableaux.PartitionedTableau` steps a pair ``(z, p)`` of a separable field
``z' = F(t, p)``, ``p' = G(t, z)`` (:class:`Separable`) with one tableau for ``z`` and one for
``p`` (:func:`partitioned_step`; Hairer, Lubich & Wanner, *Geometric Numerical Integration*, II.2).

The stage sums are fused: each term ``h a_ij k_j`` is one ``torch.add(..., alpha=...)``
kernel and zero coefficients cost nothing.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from . import state
from .tableaux import ButcherTableau, PartitionedTableau, get_method
from .validate import positive_int

Field = Callable[[float, torch.Tensor], torch.Tensor]


class Separable(NamedTuple):
    """A separable field ``z' = F(t, p)``, ``p' = G(t, z)`` on the state ``(z, p)``:
    ``dz = F`` and ``dp = G``.

    Calling it gives the whole field, ``f(t, (z, p)) = (F(t, p), G(t, z))``, so a Runge--Kutta
    tableau can step it too; a :class:`~lib.tableaux.PartitionedTableau` needs the two halves.
    A Hamiltonian ``H = T(t, p) + V(t, z)`` gives ``F = grad_p T`` and ``G = -grad_z V``."""

    dz: Callable
    dp: Callable

    def __call__(self, t, state):
        z, p = state
        return self.dz(t, p), self.dp(t, z)


def require_explicit(tableau: ButcherTableau) -> ButcherTableau:
    """Return ``tableau`` if it is explicit, else raise a ``ValueError`` saying why."""
    if not tableau.is_explicit:
        raise ValueError(
            f"tableau {tableau.name!r} is implicit (a_ij != 0 for some j >= i); "
            "the explicit stepper needs a strictly lower-triangular a")
    return tableau


def require_explicit_pair(pair: PartitionedTableau) -> PartitionedTableau:
    """Return ``pair`` if its stages can be computed one after the other on a separable field,
    else raise a ``ValueError`` saying why (:attr:`~lib.tableaux.PartitionedTableau.schedule`)."""
    pair.schedule
    return pair


def _check_step(h: float) -> float:
    if isinstance(h, torch.Tensor) or not isinstance(h, (int, float)):
        raise TypeError(f"h must be a Python number, got {type(h).__name__}")
    if not math.isfinite(h) or h == 0:
        raise ValueError(f"h must be finite and non-zero, got {h!r}")
    return float(h)


def weighted_sum(z: torch.Tensor, terms, weights, h: float) -> torch.Tensor:
    """``z + h * sum_i w_i terms_i``, one fused kernel per non-zero weight.  If the terms have
    another memory layout than ``z`` (:class:`~lib.fields.ResNetField` members keep the points
    axis contiguous), the sum takes theirs: a state takes the layout of its field in the first
    step, and no later kernel mixes two layouts."""
    out = z
    for w, term in zip(weights, terms):
        if w != 0.0:
            if out is not z:
                out.add_(term, alpha=h * w)
            elif (term.stride() == z.stride() or term.shape != z.shape
                  or term.dtype != z.dtype):
                out = torch.add(z, term, alpha=h * w)
            else:
                out = torch.empty_like(term).copy_(z).add_(term, alpha=h * w)
    return out


def _weighted_sums(z: tuple, terms, weights, h: float) -> tuple:
    """:func:`weighted_sum` for each component of a tuple state."""
    return tuple(weighted_sum(zm, [term[m] for term in terms], weights, h)
                 for m, zm in enumerate(z))


def _check_state(state, method) -> None:
    """A tensor, or a tuple of tensors; for a pair exactly ``(z, p)`` of one shape."""
    if isinstance(state, torch.Tensor) and not isinstance(method, PartitionedTableau):
        return
    if not (isinstance(state, tuple) and state and all(isinstance(c, torch.Tensor) for c in state)):
        raise TypeError(f"the state must be a torch.Tensor or a tuple of tensors, got "
                        f"{type(state).__name__}")
    pair = isinstance(method, PartitionedTableau)
    if pair and (len(state) != 2 or state[0].shape != state[1].shape):
        raise ValueError(f"the partitioned method {method.name!r} steps a state (z, p) of two "
                         f"tensors of one shape, got shapes {[list(c.shape) for c in state]}")


def _check_method(f, method):
    """The method, checked explicit; for a pair also the field, which must be :class:`Separable`."""
    method = get_method(method)
    if isinstance(method, ButcherTableau):
        return require_explicit(method)
    if not isinstance(f, Separable):
        raise TypeError(
            f"method {method.name!r} is a partitioned pair: it steps z and p with different "
            "tableaux, which needs a separable field z' = F(t, p), p' = G(t, z). Pass the field "
            "as lib.integrators.Separable(F, G) (a Hamiltonian field's .vector_field(theta) is one), "
            f"not a {type(f).__name__}; for a field that is not separable use a Runge--Kutta "
            "tableau such as 'rk4' on the tuple state")
    return require_explicit_pair(method)


def rk_step(f, t: float, z, h: float, tableau, times: str = "argument"):
    """One explicit step from ``(t, z)`` of size ``h``: for a tableau, of ``z' = f(t, z)`` with a
    tensor or tuple state; for a :class:`~lib.tableaux.PartitionedTableau`, of the
    :class:`Separable` field ``f`` with the state ``(z, p)`` and stage times ``times``
    (:meth:`~lib.tableaux.PartitionedTableau.slope_times`).  Checks its arguments, then
    :func:`advance`."""
    method = _check_method(f, tableau)
    _check_state(z, method)
    return advance(f, t, z, _check_step(h), method, times)


def advance(f, t: float, z, h: float, method, times: str = "argument"):
    """:func:`rk_step` without the checks, for a caller that validated ``method`` (an explicit
    tableau or pair object), the field and ``h`` once: the layer map of a network
    (:class:`lib.layers.Layer`), which takes this step ``K`` times per forward pass."""
    if isinstance(method, PartitionedTableau):
        return partitioned_step(f, t, z, h, method, method.slope_times(times))
    combine = weighted_sum if isinstance(z, torch.Tensor) else _weighted_sums
    return _step(f, t, z, h, method, combine)


def _step(f: Field, t: float, z, h: float, tableau: ButcherTableau,
          combine=weighted_sum):
    k: list = []
    for i in range(tableau.stages):
        Z = combine(z, k, tableau.a[i][:i], h)
        k.append(f(t + tableau.c[i] * h, Z))
    return combine(z, k, tableau.b, h)


def partitioned_step(f: Separable, t: float, state: tuple, h: float,
                     pair: PartitionedTableau, times: tuple) -> tuple:
    """One step of the explicit pair for ``z' = F(t, p)``, ``p' = G(t, z)`` with the
    slope times ``times = pair.slope_times(...)``: the stages in the order
    ``pair.schedule``; a stage equal to an earlier one (same row, same time) is computed
    once.  ``dZ[i] = F(P_i)`` and ``dP[i] = G(Z_i)`` are the stage derivatives."""
    (z, p), s = state, pair.stages
    (tau, tauhat), (first_z, first_p) = times, pair.first_equal_stage
    Z, P, dZ, dP = [None] * s, [None] * s, [None] * s, [None] * s
    for part, i in pair.schedule:
        if part == "z":  # Z_i = z + h sum_j a_ij dZ_j; dP_i = G(t + tauhat_i h, Z_i)
            j = first_z[i]
            Z[i] = Z[j] if j < i else weighted_sum(z, dZ, pair.z.a[i], h)
            reuse = j < i and tauhat[j] == tauhat[i]
            dP[i] = dP[j] if reuse else f.dp(t + tauhat[i] * h, Z[i])
        else:  # P_i = p + h sum_j ahat_ij dP_j; dZ_i = F(t + tau_i h, P_i)
            j = first_p[i]
            P[i] = P[j] if j < i else weighted_sum(p, dP, pair.p.a[i], h)
            reuse = j < i and tau[j] == tau[i]
            dZ[i] = dZ[j] if reuse else f.dz(t + tau[i] * h, P[i])
    last = s - 1  # a tableau whose weights are its last row ends on that stage
    z_end = Z[last] if pair.z.b == pair.z.a[last] else weighted_sum(z, dZ, pair.z.b, h)
    p_end = P[last] if pair.p.b == pair.p.a[last] else weighted_sum(p, dP, pair.p.b, h)
    return z_end, p_end


def rk_solve(f, z0, h: float, steps: int, tableau, t0: float = 0.0,
             trajectory: bool = False, times: str = "argument"):
    """``steps`` explicit steps of size ``h`` from ``z(t0) = z0``.

    ``f(t, z)`` is the vector field, or a list of ``steps`` fields, the one used during step
    ``k`` (a :class:`Separable` for a pair).  Returns ``z^K``, or with ``trajectory=True`` the
    stacked states ``[z^0, ..., z^K]`` of shape ``[K+1, *z0.shape]``; a tuple state gives a tuple
    of such stacks, one per component (:func:`lib.state.stack`).
    """
    # not state.check: a tableau steps tuple components of any shapes, e.g. extended_run's
    # (z, p, p_t); _check_state below checks the components
    if not isinstance(z0, (torch.Tensor, tuple)):
        raise TypeError(f"z0 must be a torch.Tensor or a tuple of tensors, got {type(z0).__name__}")
    positive_int(steps, "steps")
    fields = f if isinstance(f, list) else [f] * steps
    if len(fields) != steps:
        raise ValueError(f"f must be one field or a list of steps = {steps} fields, got "
                         f"{len(fields)}")
    methods = [_check_method(field, tableau) for field in fields]
    _check_state(z0, methods[0])
    h = _check_step(h)
    y, states = z0, [z0]
    for k, field in enumerate(fields):
        y = advance(field, t0 + k * h, y, h, methods[0], times)
        if trajectory:
            states.append(y)
    return state.stack(states) if trajectory else y
