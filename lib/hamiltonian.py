"""Hamiltonian fields: the talk's second way to shape a network (chapter 5).

With a state ``(z, p)`` and per-layer parameters ``theta``, the Hamiltonian

    H(z, p; theta) = T(p) + V(z),   T = gamma_1(A_1 p + b_1) . 1,   V = gamma_2(A_2 z + b_2) . 1,

with ``gamma_i' = sigma_i`` (:mod:`lib.activations`), gives the separable field

    z' = dH/dp = A_1^T sigma_1(A_1 p + b_1),    p' = -dH/dz = -A_2^T sigma_2(A_2 z + b_2)

(Haber & Ruthotto 2017; Chang et al. 2018; Celledoni et al. 2021, section 3).  Special cases:
the *second-order* model ``z'' = -A^T sigma(A z + b)`` (``sigma_1 = id``, ``A_1 = I``,
``b_1 = 0``, so ``z' = p``) and the *coupled* model (``A_1 = A_2 = A``, ``b_1 = b_2 = b``,
``sigma_1 = sigma_2 = sigma``).

Every field here is a :class:`~lib.fields.VectorField` (per-layer parameters through
``stacks()``, ``thetas()``, ``layer(k)``, ``repeat_layers(m)``, ``member(s)``) whose
``forward((z, p), theta)`` acts on the phase-space state, a pair (:mod:`lib.state`; Jacobians
and stability diagnostics see it joined along the last axis, ``[n, 2 width]``, through
:func:`lib.state.on_joined`), and whose halves :meth:`HamiltonianField.dz`,
:meth:`HamiltonianField.dp` are what a partitioned method steps.
The functions after the fields measure what chapter 5 shows: energy errors, the symplecticity
of a step, the extended phase space of a non-autonomous ``H``, and a symplectic Euler step for a
non-separable ``H``.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple

import torch
from torch.autograd import forward_ad

from . import state as tree
from .activations import get_activation
from .fields import AffineParameters, VectorField, affine
from .integrators import Separable, rk_solve
from .parameter_path import theta_at, theta_rate
from .tableaux import (RK4, STORMER_VERLET, SYMPLECTIC_EULER_PZ, PartitionedTableau,
                       get_method)
from .validate import positive_int

__all__ = ["HamiltonianField", "GeneralHamiltonianField", "SecondOrderField", "CoupledField",
           "HAMILTONIAN_FIELDS", "time_dependent", "EnergyRun",
           "energy_run", "canonical_matrix", "symplectic_defect", "ExtendedRun", "extended_run",
           "extended_verlet_step", "reconstruction_error", "tangent_growth",
           "nonseparable_example", "symplectic_euler_general"]


def _term_rate(x: torch.Tensor, A, b, dA, db, sigma) -> torch.Tensor:
    """``d/de gamma((A + e dA) x + b + e db) . 1 = sigma(A x + b) . (dA x + db)`` per row."""
    return (sigma(affine(x, A, b)) * affine(x, dA, db)).sum(-1)


class HamiltonianField(VectorField):
    """Base class of the separable Hamiltonian fields ``H(z, p; theta) = T(p) + V(z)``.

    Subclasses implement :meth:`kinetic` ``T``, :meth:`potential` ``V`` and their gradients
    :meth:`dz` ``= grad_p T`` and :meth:`dp` ``= -grad_z V``.  ``width`` is the dimension of
    ``z`` (and of ``p``); ``activation`` is ``sigma_2``, the activation of ``V``.
    """

    def _draw_all(self, names: tuple[str, ...], generator) -> None:
        """Register stacked parameters ``name^k``: a matrix ``N(0, 1/width)`` (``width x width``)
        for a name starting with ``A``, a bias ``N(0, 0.1^2)`` otherwise, drawn in the order of
        ``names`` from each member's generator."""
        d = self.width
        for name in names:
            shape, std = ((d, d), 1 / math.sqrt(d)) if name.startswith("A") else ((d,), 0.1)
            self._draw(name, shape, std, generator)

    def kinetic(self, p: torch.Tensor, theta) -> torch.Tensor:
        """``T(p; theta)`` per row, shape ``p.shape[:-1]``."""
        raise NotImplementedError

    def potential(self, z: torch.Tensor, theta) -> torch.Tensor:
        """``V(z; theta)`` per row, shape ``z.shape[:-1]``."""
        raise NotImplementedError

    def dz(self, p: torch.Tensor, theta) -> torch.Tensor:
        """``z' = dH/dp = grad_p T(p; theta)``, the shape of ``p``."""
        raise NotImplementedError

    def dp(self, z: torch.Tensor, theta) -> torch.Tensor:
        """``p' = -dH/dz = -grad_z V(z; theta)``, the shape of ``z``."""
        raise NotImplementedError

    def energy(self, z: torch.Tensor, p: torch.Tensor, theta) -> torch.Tensor:
        """The Hamiltonian ``H(z, p; theta) = T(p) + V(z)`` of one layer, per row: ``z`` and
        ``p`` of shape ``[(S,) n, width]`` give ``[(S,) n]``."""
        self._check_pair(z, p)
        return self.kinetic(p, theta) + self.potential(z, theta)

    def energy_rate(self, z: torch.Tensor, p: torch.Tensor, theta, rate) -> torch.Tensor:
        """``d/de H(z, p; theta + e rate)`` at ``e = 0``, per row: with parameters ``theta(t)``
        this is ``dH/dt`` for ``rate = theta'(t)`` (each term ``gamma(A x + b) . 1`` contributes
        ``sigma(A x + b) . (A' x + b')``), the sum of :meth:`kinetic_rate` and
        :meth:`potential_rate`."""
        self._check_pair(z, p)
        return self.kinetic_rate(p, theta, rate) + self.potential_rate(z, theta, rate)

    def kinetic_rate(self, p: torch.Tensor, theta, rate) -> torch.Tensor:
        """``d/de T(p; theta + e rate)`` at ``e = 0``, per row."""
        raise NotImplementedError

    def potential_rate(self, z: torch.Tensor, theta, rate) -> torch.Tensor:
        """``d/de V(z; theta + e rate)`` at ``e = 0``, per row."""
        raise NotImplementedError

    def vector_field(self, theta) -> Separable:
        """The layer's field as a :class:`~lib.integrators.Separable` ``(F(t, p), G(t, z))``
        (autonomous: ``t`` is ignored): a partitioned pair steps its two halves, a
        Runge--Kutta tableau the whole field."""
        return Separable(lambda t, p: self.dz(p, theta), lambda t, z: self.dp(z, theta))

    def initial_state(self, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The phase-space state ``(z^0, p^0) = (z0, 0)``: the network starts at rest (for the
        second-order model ``z^(-1) = z^0``, as in Chang et al. 2018)."""
        return z0, torch.zeros_like(z0)

    def readout(self, state) -> torch.Tensor:
        """The classifier reads ``z`` of the state ``(z, p)``."""
        return state[0]

    def forward(self, state, theta) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole field on the state ``(z, p)``: ``(dH/dp, -dH/dz)``."""
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(f"a Hamiltonian field acts on the pair state (z, p), got "
                            f"{type(state).__name__}; split a joined state with lib.state.split")
        z, p = state
        return self.dz(p, theta), self.dp(z, theta)

    def _check_pair(self, z, p) -> None:
        if not isinstance(z, torch.Tensor) or not isinstance(p, torch.Tensor):
            raise TypeError("z and p must be torch.Tensors")
        if z.shape != p.shape or z.shape[-1] != self.width:
            raise ValueError(f"z and p must have one shape [..., width = {self.width}], got "
                             f"{list(z.shape)} and {list(p.shape)}")


class GeneralHamiltonianField(HamiltonianField):
    """The talk's Hamiltonian field, ``T = gamma_1(A_1 p + b_1) . 1``,
    ``V = gamma_2(A_2 z + b_2) . 1``:

        z' = A_1^T sigma_1(A_1 p + b_1),    p' = -A_2^T sigma_2(A_2 z + b_2).

    ``activation`` is ``sigma_2`` (of ``V``) and ``kinetic_activation`` is ``sigma_1`` (of ``T``;
    default: the same).  Parameters ``(A1, b1, A2, b2)``, drawn in that order."""

    theta_names = ("A1", "b1", "A2", "b2")

    def __init__(self, width: int, layers: int, activation: str = "tanh", generator=None,
                 kinetic_activation: str | None = None):
        super().__init__(width, layers, activation, generator)
        self.kinetic_activation = activation if kinetic_activation is None else kinetic_activation
        self.sigma_kinetic = get_activation(self.kinetic_activation)
        self._draw_all(self.theta_names, generator)

    def kinetic(self, p, theta):
        A1, b1, _, _ = theta
        return self.sigma_kinetic.gamma(affine(p, A1, b1)).sum(-1)

    def potential(self, z, theta):
        _, _, A2, b2 = theta
        return self.sigma.gamma(affine(z, A2, b2)).sum(-1)

    def dz(self, p, theta):
        A1, b1, _, _ = theta
        return torch.matmul(self.sigma_kinetic(affine(p, A1, b1)), A1)

    def dp(self, z, theta):
        _, _, A2, b2 = theta
        return torch.matmul(self.sigma(affine(z, A2, b2)), -A2)

    def kinetic_rate(self, p, theta, rate):
        return _term_rate(p, *theta[:2], *rate[:2], self.sigma_kinetic)

    def potential_rate(self, z, theta, rate):
        return _term_rate(z, *theta[2:], *rate[2:], self.sigma)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kinetic_activation={self.kinetic_activation!r}"


class SecondOrderField(AffineParameters, HamiltonianField):
    """The second-order model ``z'' = -A^T sigma(A z + b)``: ``T = |p|^2 / 2`` (``sigma_1 = id``,
    ``A_1 = I``, ``b_1 = 0``), ``V = gamma(A z + b) . 1``, so ``z' = p``,
    ``p' = -A^T sigma(A z + b)``.  Under symplectic Euler (``p`` first) with ``p^0 = 0`` its
    states satisfy ``z^(k+1) = 2 z^k - z^(k-1) - h^2 A_k^T sigma(A_k z^k + b_k)``, the leapfrog
    network of Chang et al. (2018), Störmer's two-step form of Störmer--Verlet."""

    theta_names = ("A", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh", generator=None):
        super().__init__(width, layers, activation, generator)
        self._draw_all(self.theta_names, generator)

    def kinetic(self, p, theta):
        return 0.5 * p.square().sum(-1)

    def potential(self, z, theta):
        A, b = theta
        return self.sigma.gamma(affine(z, A, b)).sum(-1)

    def dz(self, p, theta):
        return p

    def kinetic_rate(self, p, theta, rate):
        return torch.zeros_like(p[..., 0])

    def potential_rate(self, z, theta, rate):
        return _term_rate(z, *theta, *rate, self.sigma)

    def dp(self, z, theta):
        A, b = theta
        return torch.matmul(self.sigma(affine(z, A, b)), -A)


class CoupledField(AffineParameters, HamiltonianField):
    """The coupled model ``z' = A^T sigma(A p + b)``, ``p' = -A^T sigma(A z + b)``: one layer
    ``(A, b)`` and one activation for both halves,
    ``H = gamma(A p + b) . 1 + gamma(A z + b) . 1``."""

    theta_names = ("A", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh", generator=None):
        super().__init__(width, layers, activation, generator)
        self._draw_all(self.theta_names, generator)

    def kinetic(self, p, theta):
        A, b = theta
        return self.sigma.gamma(affine(p, A, b)).sum(-1)

    def potential(self, z, theta):
        return self.kinetic(z, theta)

    def dz(self, p, theta):
        A, b = theta
        return torch.matmul(self.sigma(affine(p, A, b)), A)

    def dp(self, z, theta):
        A, b = theta
        return torch.matmul(self.sigma(affine(z, A, b)), -A)

    def kinetic_rate(self, p, theta, rate):
        return _term_rate(p, *theta, *rate, self.sigma)

    def potential_rate(self, z, theta, rate):
        return _term_rate(z, *theta, *rate, self.sigma)


HAMILTONIAN_FIELDS: dict[str, type[HamiltonianField]] = {
    "hamiltonian": GeneralHamiltonianField, "second_order": SecondOrderField,
    "coupled": CoupledField}
"""The Hamiltonian fields by name (pass the class or an object to :class:`lib.models.ODENet`)."""


# --- time-dependent parameters --------------------------------------------------------------

def time_dependent(field: HamiltonianField, T: float) -> Separable:
    """The non-autonomous field ``(F(t, p), G(t, z))`` with ``theta(t) = theta_at(field, t, T)``."""
    return Separable(lambda t, p: field.dz(p, theta_at(field, t, T)),
                     lambda t, z: field.dp(z, theta_at(field, t, T)))


# --- the autonomous case: energy and symplecticity -------------------------------------------

class EnergyRun(NamedTuple):
    """A long run of an autonomous Hamiltonian layer, every ``every``-th step: the times ``t``
    ``[N]``, the states ``z``, ``p`` ``[N, n, width]`` and the energy error
    ``H(z^k, p^k) - H(z^0, p^0)`` ``[N, n]``."""

    t: torch.Tensor
    z: torch.Tensor
    p: torch.Tensor
    error: torch.Tensor


def energy_run(field: HamiltonianField, theta, z0: torch.Tensor, p0: torch.Tensor, h: float,
               steps: int, method, every: int = 1) -> EnergyRun:
    """``steps`` steps of size ``h`` of ``method`` (a pair or a Runge--Kutta tableau) for the
    autonomous layer ``theta`` of ``field``, from each row of ``(z0, p0)`` ``[n, width]``, kept
    every ``every`` steps, with the energy error ``H(z^k, p^k) - H(z^0, p^0)``."""
    if not isinstance(field, HamiltonianField):
        raise TypeError(f"field must be a HamiltonianField, got {type(field).__name__}")
    field._check_pair(z0, p0)
    positive_int(every, "every")
    with torch.no_grad():
        Z, P = rk_solve(field.vector_field(theta), (z0, p0), h, steps, method, trajectory=True)
        Z, P = Z[::every], P[::every]
        H = field.energy(Z.flatten(0, 1), P.flatten(0, 1), theta).view(Z.shape[:2])
    t = h * every * torch.arange(Z.shape[0], dtype=z0.dtype, device=z0.device)
    return EnergyRun(t, Z, P, H - H[:1])


def canonical_matrix(d: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """The canonical structure matrix ``[[0, I], [-I, 0]]`` of size ``2d`` (state ``(z, p)``;
    the book writes it as a blackboard-bold J, since ``J`` is the Jacobian of the field)."""
    eye = torch.eye(d, dtype=dtype, device=device)
    zero = torch.zeros_like(eye)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)


def symplectic_defect(step: Callable, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``max |M^T J M - J|`` (``J`` the :func:`canonical_matrix`) over the rows of ``(z, p)``
    ``[n, d]``, where ``M`` is the Jacobian
    (by reverse-mode autodiff) of the map ``(z, p) -> step(z, p)`` at each row.  Zero in exact
    arithmetic exactly when the map is symplectic (Hairer, Lubich & Wanner, VI.2)."""
    if not (isinstance(z, torch.Tensor) and isinstance(p, torch.Tensor)) or z.shape != p.shape \
            or z.dim() != 2:
        raise ValueError("z and p must be tensors of one shape [n, d]")
    d = z.shape[1]

    def joined(y):
        out = step(y[:d].unsqueeze(0), y[d:].unsqueeze(0))
        return torch.cat([out[0], out[1]], -1).squeeze(0)

    with torch.no_grad():  # differentiates in (z, p) only, not in the field's parameters
        M = torch.func.vmap(torch.func.jacrev(joined))(torch.cat([z, p], -1))
        J = canonical_matrix(d, z.dtype, z.device)
        return (M.mT @ J @ M - J).abs().amax()


def _require_hamiltonian(net, members: bool) -> None:
    """A ``TypeError`` unless ``net`` is an ODENet with a Hamiltonian field (and no members
    unless ``members``)."""
    from .models import ODENet

    if (not isinstance(net, ODENet) or not isinstance(net.field, HamiltonianField)
            or (not members and net.members is not None)):
        raise TypeError(f"net must be a {'' if members else 'single (no members) '}Hamiltonian "
                        "lib.models.ODENet")


def reconstruction_error(net, x: torch.Tensor, per_point: bool = False) -> torch.Tensor:
    """How well a Hamiltonian network run backwards recovers its input: the largest entry of
    ``|Phi^(-1)(Phi(z^0, p^0)) - (z^0, p^0)|`` relative to the largest entry of the states
    ``(z^k, p^k)`` the network passes through (the scale of the round-off it commits), for the
    inputs ``x`` of ``net`` (an :class:`~lib.models.ODENet` with an invertible method, see
    :meth:`~lib.models.ODENet.inverse`); one value per member ``[S]``, or 0-dim.  With
    ``per_point`` the error of each input, on the same scale, ``[(S,) n]``."""
    _require_hamiltonian(net, members=True)
    with torch.no_grad():
        states = net.trajectory(x)
        d = net.width
        back = tree.join(net.inverse((states[-1, ..., :d], states[-1, ..., d:])))
        dims = tuple(range(-2, 0))
        error = (back - states[0]).abs().amax(-1 if per_point else dims)
        scale = states.abs().amax(0).amax(dims)
        return error / (scale.unsqueeze(-1) if per_point else scale)


def tangent_growth(net, x: torch.Tensor) -> torch.Tensor:
    """The growth of perturbations in the worst direction: ``||dy^k / dy^0||_2`` ``[K+1, n]``,
    the 2-norm of the Jacobian of the phase-space map ``y^0 = (z^0, p^0) -> y^k`` after each
    layer ``k``, at the lifted inputs ``x`` ``[n, in_features]`` of a single (no members)
    Hamiltonian :class:`~lib.models.ODENet`, by forward-mode differentiation of each layer
    (``torch.autograd.forward_ad``) along the ``2 width`` unit directions.  For a symplectic network
    ``M^(-1) = J^T M^T J`` has the same norm as ``M``: this is also how much the inverse
    network amplifies an error in ``y^k`` on its way back to ``y^0`` (the round-off of
    :func:`reconstruction_error`), and ``log ||M|| / t`` is the finite-time Lyapunov exponent."""
    _require_hamiltonian(net, members=False)
    z, p = net.lift(x)
    n, d = z.shape
    D = 2 * d
    y = torch.cat([z, p], -1).unsqueeze(1).expand(n, D, D).reshape(n * D, D)
    tangent = torch.eye(D, dtype=y.dtype, device=y.device).expand(n, D, D).reshape(n * D, D)

    tangents = [tangent]
    with torch.no_grad(), forward_ad.dual_level():
        y = forward_ad.make_dual(y, tangent)
        for layer in net.layers():
            y = tree.on_joined(layer, (z, p))(y)
            tangents.append(forward_ad.unpack_dual(y).tangent)
    # the norms of 256 layers at a time: one batched call instead of one per layer
    return torch.cat([torch.linalg.matrix_norm(torch.stack(part).view(-1, n, D, D), 2)
                      for part in (tangents[i:i + 256] for i in range(0, len(tangents), 256))])


# --- the non-autonomous case -----------------------------------------------------------------

class ExtendedRun(NamedTuple):
    """A solution of the extended system ``z' = dH/dp``, ``p' = -dH/dz``, ``p_t' = -dH/dt``:
    the times ``t`` ``[N+1]``, and per row ``[N+1, n]`` the Hamiltonian ``H(t, z, p)``, the
    conjugate momentum ``p_t`` (``p_t(0) = 0``) and the extended Hamiltonian ``K = H + p_t``."""

    t: torch.Tensor
    H: torch.Tensor
    p_t: torch.Tensor
    K: torch.Tensor


def extended_verlet_step(field: HamiltonianField, T: float, t: float, h: float,
                         state: tuple, piece: int) -> tuple:
    """One Störmer--Verlet step on the extended phase space: the pair Lobatto
    IIIA--IIIB (:data:`~lib.tableaux.STORMER_VERLET`) applied to the autonomous
    ``K(z, t, p, p_t) = H(t, z, p) + p_t`` with positions ``(z, t)``, momenta
    ``(p, p_t)``.  As ``t' = 1`` exactly and ``K`` is linear in ``p_t``, the stages
    are explicit, even when ``T`` depends on ``t`` (``T'``, ``V'``: rates in ``t``):

        p_1  = p - h/2 grad_z V(t, z),
        z'   = z + h/2 [grad_p T(t, p_1) + grad_p T(t + h, p_1)],
        p'   = p_1 - h/2 grad_z V(t + h, z'),
        p_t' = p_t - h/2 [T'(t, p_1) + V'(t, z) + T'(t + h, p_1) + V'(t + h, z')],

    with ``theta`` and its rate on the linear ``piece`` of :func:`theta_at`.  The
    pair meets both conditions of Hairer, Lubich & Wanner (Thm. VI.4.6): the step
    is symplectic on the extended space for every ``H``, and keeps ``K`` to
    ``O(h^2)``."""
    z, p, p_t = state
    start, end = (theta_at(field, s, T, piece) for s in (t, t + h))
    rate = theta_rate(field, t, T, piece)
    p1 = p + h / 2 * field.dp(z, start)
    z1 = z + h / 2 * (field.dz(p1, start) + field.dz(p1, end))
    p2 = p1 + h / 2 * field.dp(z1, end)
    dHdt = (field.kinetic_rate(p1, start, rate) + field.potential_rate(z, start, rate)
            + field.kinetic_rate(p1, end, rate) + field.potential_rate(z1, end, rate))
    return z1, p2, p_t - h / 2 * dHdt


def extended_run(field: HamiltonianField, T: float, z0: torch.Tensor, p0: torch.Tensor,
                 steps: int, method=RK4) -> ExtendedRun:
    """Solve the extended autonomous system of the non-autonomous ``H(t, z, p)`` with
    ``theta(t) = theta_at(field, t, T)`` on ``[0, T]`` (the talk's second reading): ``t' = 1``
    and ``p_t' = -dH/dt`` beside ``(z, p)``, with ``steps`` steps of ``method``: a
    Runge--Kutta tableau (or its name) on the state ``(z, p, p_t)`` (``dH/dt`` from
    :meth:`HamiltonianField.energy_rate`), or Störmer--Verlet (``"stormer_verlet"`` or
    :data:`~lib.tableaux.STORMER_VERLET`) on the extended phase space
    (:func:`extended_verlet_step`).  Along the exact flow ``K = H + p_t`` is constant
    while ``H`` changes by ``int dH/dt``.  ``steps`` must be a multiple of ``layers - 1``, so
    that each step lies on one linear piece of ``theta(t)``, where the field is smooth."""
    field._check_pair(z0, p0)
    pieces = field.layers - 1
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1 or steps % pieces:
        raise ValueError(f"steps must be a positive multiple of layers - 1 = {pieces} (one linear "
                         f"piece of theta(t) per group of steps), got {steps!r}")
    method = get_method(method)
    if isinstance(method, PartitionedTableau) and method is not STORMER_VERLET:
        raise ValueError(f"method must be a Runge--Kutta tableau or 'stormer_verlet' (the pair "
                         f"on the extended phase space), got the pair {method.name!r}")
    h = T / steps

    def f(t, y, piece):
        z, p, _ = y
        theta = theta_at(field, t, T, piece)
        dHdt = field.energy_rate(z, p, theta, theta_rate(field, t, T, piece))
        return field.dz(p, theta), field.dp(z, theta), -dHdt

    with torch.no_grad():
        state = (z0, p0, torch.zeros(z0.shape[:-1], dtype=z0.dtype, device=z0.device))
        if method is STORMER_VERLET:
            states = [state]
            for k in range(steps):
                states.append(extended_verlet_step(field, T, k * h, h, states[-1],
                                                   k * pieces // steps))
            Z, P, Pt = (torch.stack(c) for c in zip(*states))
        else:
            fields = [partial(f, piece=k * pieces // steps) for k in range(steps)]
            Z, P, Pt = rk_solve(fields, state, h, steps, method, trajectory=True)
        t = torch.linspace(0, T, steps + 1, dtype=z0.dtype, device=z0.device)
        H = torch.stack([field.energy(zk, pk, theta_at(field, float(tk), T))
                         for tk, zk, pk in zip(t, Z, P)])
    return ExtendedRun(t, H, Pt, H + Pt)


def nonseparable_example(t: float, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``H(t, z, p) = (|z|^2 + |p|^2)/2 + sin(3t) sum_i z_i p_(i-1)``, per row: a Hamiltonian whose
    z--p coupling ``d^2H/dz dp`` changes with time (the counterexample of chapter 5)."""
    return 0.5 * (z.square() + p.square()).sum(-1) + math.sin(3 * t) * (z * p.roll(1, -1)).sum(-1)


def symplectic_euler_general(H: Callable, t: float, z: torch.Tensor, p: torch.Tensor, h: float,
                             times: str = "z", iterations: int = 60) -> tuple:
    """One step of symplectic Euler (``p`` first) for a general, possibly non-separable
    Hamiltonian ``H(t, z, p)`` (per row, summed for the gradients):

        p_1 = p - h dH/dz(t + tauhat h, z, p_1),    z_1 = z + h dH/dp(t + tau h, z, p_1),

    the implicit ``p_1`` found by ``iterations`` fixed-point iterations (converged to round-off
    when ``h |d^2H/dz dp|`` is small).  ``times`` places ``tau`` and ``tauhat`` as in
    :meth:`~lib.tableaux.PartitionedTableau.slope_times` of
    :data:`~lib.tableaux.SYMPLECTIC_EULER_PZ`
    (nodes ``c = 0`` for ``z``, ``chat = 1`` for ``p``): ``"z"`` or ``"p"`` use one time for
    both derivatives, and the step is symplectic (its generating function is
    ``z p_1 + h H(t', z, p_1)``); ``"argument"`` and ``"equation"`` use ``t`` for one and
    ``t + h`` for the other, which is symplectic only if ``d^2H/dz dp`` is the same at both
    times (Jay 2021).  Differentiable with ``torch.func``."""
    positive_int(iterations, "iterations")
    tau, tauhat = (x[0] for x in SYMPLECTIC_EULER_PZ.slope_times(times))
    grad_z = torch.func.grad(lambda z_, p_: H(t + tauhat * h, z_, p_).sum(), argnums=0)
    grad_p = torch.func.grad(lambda z_, p_: H(t + tau * h, z_, p_).sum(), argnums=1)
    p1 = p
    for _ in range(iterations):
        p1 = p - h * grad_z(z, p1)
    return z + h * grad_p(z, p1), p1
