"""One layer of a network as a map of states: the primitive every gradient, diagnostic and
figure uses.

Layer ``k`` of an :class:`~lib.models.ODENet` is one step of its explicit method from
``t_k = k h`` with the layer's parameters ``theta^k`` held fixed,

    Phi_h(y; theta^k) = y + h sum_i b_i f(Y_i; theta^k),   Y_i = y + h sum_j a_ij f(Y_j; theta^k),

(for a partitioned pair, the two tableaux on the halves ``(z, p)``).  :meth:`ODENet.layer`
returns it as a small frozen :class:`Layer`: call it on a state; take its
:meth:`~Layer.inverse` (exact for a symplectic pair with an explicit adjoint), its step run
:meth:`~Layer.backwards` (the black-box adjoint's reconstruction), a :meth:`~Layer.partial`
step, or its :meth:`~Layer.linearised` stages (the graphs the adjoint sweeps differentiate).
Every variant is the same step with other data, so the layer's time, parameters and method
are set in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from . import state as tree
from .integrators import advance
from .tableaux import ButcherTableau, PartitionedTableau

__all__ = ["Layer"]


@dataclass(frozen=True, eq=False)
class Layer:
    """``y -> Phi_h(y; theta)``: one step of ``method`` of size ``h`` from time ``t`` for the
    field ``field`` with parameters ``theta`` (a tuple of tensors), on a tensor or tuple state
    (:mod:`lib.state`).  ``method`` is a validated explicit tableau or pair object."""

    field: object
    theta: tuple
    method: ButcherTableau | PartitionedTableau
    t: float
    h: float

    def __call__(self, state):
        return advance(self.field.vector_field(self.theta), self.t, state, self.h,
                       self.method)

    def rate(self, state):
        """The field's value ``f(state; theta)`` at this layer."""
        return self.field(state, self.theta)

    def with_theta(self, theta: tuple) -> "Layer":
        """The same step with other parameters."""
        return replace(self, theta=tuple(theta))

    def leaves(self) -> "Layer":
        """The same step with its parameters as fresh leaves that require a gradient: the
        sweeps differentiate a layer by hand, in ``theta^k`` alone."""
        return self.with_theta(p.detach().requires_grad_(True) for p in self.theta)

    def partial(self, fraction: float) -> "Layer":
        """The step of size ``fraction h`` from the same time."""
        return replace(self, h=fraction * self.h)

    def backwards(self) -> "Layer":
        """The same method stepped backwards, from ``t + h`` with step ``-h``: not the inverse
        of the layer for an explicit Runge--Kutta method (Chen et al. 2018's reconstruction)."""
        return replace(self, t=self.t + self.h, h=-self.h)

    def inverse(self) -> "Layer":
        """``Phi_h^(-1)``: one step of size ``-h`` from ``t + h`` of the adjoint pair
        (:attr:`~lib.tableaux.PartitionedTableau.adjoint`), explicit for symplectic Euler and
        Störmer--Verlet.  Exact in exact arithmetic; a ``ValueError`` for a method whose
        inverse is implicit."""
        if not isinstance(self.method, PartitionedTableau) or not self.method.adjoint.is_explicit:
            raise ValueError(
                f"this layer (method {self.method.name!r}) has no explicit inverse: a "
                "Runge--Kutta step is inverted by its adjoint method, which is implicit for an "
                "explicit tableau. Use a Hamiltonian field with a symplectic pair such as "
                "'stormer_verlet' or 'symplectic_euler'")
        return replace(self, method=self.method.adjoint, t=self.t + self.h, h=-self.h)

    def stage(self, state, t: float | None = None) -> tuple:
        """One evaluation of the field at ``state`` (time ``t``, default the layer's) with its
        graph: ``(Y, f(t, Y; theta))`` with ``Y`` a fresh leaf."""
        with torch.enable_grad():
            Y = tree.detached(state, requires_grad=True)
            return Y, self.field.vector_field(self.theta)(self.t if t is None else t, Y)

    def linearised(self, state) -> tuple[object, list]:
        """The step from ``state`` without a graph, and its stages ``[(Y_i, f(Y_i; theta))]``,
        each ``Y_i`` a fresh leaf and each evaluation's graph kept, so that ``J_i^T P`` and
        ``(df/dtheta)^T P`` follow by one vector-Jacobian product (a Runge--Kutta tableau; a
        pair's stages are differentiated through the whole step instead)."""
        if not isinstance(self.method, ButcherTableau):
            raise ValueError(f"the stages of the pair {self.method.name!r} are not one tableau's; "
                             "differentiate the whole step")
        stages = []

        def recorded(t, Y):
            stages.append(self.stage(Y, t))
            return tree.detached(stages[-1][1])

        with torch.no_grad():
            return advance(recorded, self.t, state, self.h, self.method), stages
