"""What the eigenvalues and the logarithmic norms of a layer's Jacobian say (chapters 4 and 6).

- *Linear stability* (Haber & Ruthotto 2017) looks at the eigenvalues ``spec(J)`` of the
  Jacobian ``J(t, z) = df/dz`` and asks for ``Re spec(J) <= 0``: the largest real part is
  the *spectral abscissa* ``alpha(J) = max Re spec(J)``.
- The *logarithmic norm* ``mu_2(J) = max spec((J + J^T) / 2)`` (Dahlquist 1959; Söderlind
  2006) bounds it, ``alpha(J) <= mu_2(J)``, and bounds the growth ``|exp(tJ)| <= exp(t mu_2)``;
  its supremum over a convex set is the one-sided Lipschitz constant of
  :mod:`lib.one_sided`.
- Henrici's *departure from normality* measures how far the eigenvalues can be from telling
  the growth.

A field is any callable ``field(z, theta)`` acting on the rows of ``z`` (shape ``[n, d]``)
independently, as every first-order :class:`~lib.fields.VectorField` does; a network's
layers are examined along its trajectories, a pair state joined (:func:`lib.state.join`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from . import state as tree
from .models import ODENet, single_network
from .validate import positive

__all__ = ["jacobians", "spectral_abscissa", "henrici_departure", "log_norm", "joined_field",
           "TrajectorySpectra", "trajectory_spectra", "eigenvalue_growth"]


def joined_field(net: ODENet) -> Callable:
    """The network's field as a map of joined states, ``(y, theta) -> join(f(split(y); theta))``
    (the field itself for a tensor state): the form whose Jacobians are ``[2 width, 2 width]``
    for a Hamiltonian network."""
    like = net.field.initial_state(torch.zeros(1, net.width))
    return lambda y, theta: tree.on_joined(lambda s: net.field(s, theta), like)(y)


def _check_states(states, name: str = "states") -> torch.Tensor:
    if not isinstance(states, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(states).__name__}")
    if states.dim() != 2 or states.shape[0] < 1:
        raise ValueError(f"{name} must have shape [n, d] with n >= 1, got {list(states.shape)}")
    if not states.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {states.dtype}")
    return states


def _check_square(J, name: str = "J") -> torch.Tensor:
    if not isinstance(J, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(J).__name__}")
    if J.dim() < 2 or J.shape[-1] != J.shape[-2]:
        raise ValueError(f"{name} must be a (batch of) square matrices [..., d, d], got {list(J.shape)}")
    return J


def _check_field(field, theta, states: torch.Tensor) -> torch.Tensor:
    """Check that ``field(z, theta)`` maps a row of ``states`` to a row of the same shape."""
    if not callable(field):
        raise TypeError(f"field must be callable as field(z, theta), got {type(field).__name__}")
    with torch.no_grad():
        probe = field(states[:1], theta)
    if not isinstance(probe, torch.Tensor) or probe.shape != states[:1].shape:
        raise ValueError(f"field(z, theta) must return a tensor of the shape of z [n, d] = "
                         f"[1, {states.shape[1]}], got {getattr(probe, 'shape', type(probe).__name__)}")
    return states


def _row_jacobians(field: Callable, theta, z: torch.Tensor) -> torch.Tensor:
    """The Jacobians ``[..., n, d, d]`` at the states ``z`` ``[..., n, d]`` of a field acting on
    every row independently (leading dimensions: the members of a field), one backward pass
    per output component."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        f = field(z, theta)
        rows = [torch.autograd.grad(f[..., r].sum(), z, retain_graph=True, allow_unused=True)[0]
                for r in range(z.shape[-1])]
    rows = [torch.zeros_like(z) if row is None else row for row in rows]
    return torch.stack(rows, -2)  # [..., n, r, c] = d f_r / d z_c


def jacobians(field: Callable, theta, states: torch.Tensor) -> torch.Tensor:
    """The Jacobians ``J_i = df/dz (z_i; theta)`` at every state ``z_i`` (a row of ``states``),
    shape ``[n, d, d]`` with ``J_i[r, c] = d f_r / d z_c``.

    Computed by reverse-mode differentiation, one backward pass per output component ``r``
    for all rows at once (the rows are independent).  The result does not track gradients.
    """
    states = _check_field(field, theta, _check_states(states).detach())
    return _row_jacobians(field, theta, states)


def spectral_abscissa(J: torch.Tensor) -> torch.Tensor:
    """``alpha(J) = max_i Re lambda_i(J)``, the largest real part of the eigenvalues, for a
    matrix or a batch ``[..., d, d]`` (result of shape ``[...]``).  Linear stability
    (Haber & Ruthotto 2017) asks for ``alpha(J) <= 0``."""
    return torch.linalg.eigvals(_check_square(J)).real.amax(-1)


def henrici_departure(J: torch.Tensor) -> torch.Tensor:
    """Henrici's departure from normality ``dep(J) = (|J|_F^2 - sum_i |lambda_i(J)|^2)^(1/2)``
    (Henrici 1962), for a matrix or a batch ``[..., d, d]``: zero exactly when ``J`` is
    normal, and ``|c|`` for ``[[a, c], [0, a]]``.  (Round-off can make the difference slightly
    negative for a normal ``J``; it is clamped at 0.)"""
    J = _check_square(J)
    eigenvalues = torch.linalg.eigvals(J).abs().square().sum(-1)
    frobenius = J.square().sum((-2, -1))
    return (frobenius - eigenvalues).clamp(min=0).sqrt()


def log_norm(J: torch.Tensor) -> torch.Tensor:
    """The logarithmic 2-norm ``mu_2(J) = max spec((J + J^T)/2) = max_{|u|=1} <J u, u>``
    (Dahlquist 1959), for a matrix or a batch ``[..., d, d]``.  It bounds the spectrum,
    ``alpha(J) <= mu_2(J)``, and the growth ``|exp(tJ)| <= exp(t mu_2(J))``."""
    J = _check_square(J)
    symmetric_part = 0.5 * (J + J.mT)
    return torch.linalg.eigvalsh(symmetric_part)[..., -1]  # eigenvalues ascend


# --- the eigenvalues' prediction of perturbation growth (chapter 6) ---------------------------
#
# Along a trajectory z(t) of the flow, a small perturbation obeys the linear non-autonomous
# system delta' = J(t) delta with J(t) = df/dz(z(t); theta(t)).  Freezing t gives the
# eigenvalues' prediction |delta(t)| ~ exp(int alpha(J)) |delta(0)|, which holds up to constants
# when J(t) varies slowly (Desoer 1969); the logarithmic norm gives the bound
# exp(int mu_2(J)) for every J(t) (Dahlquist 1959), and the layer's nu (the largest mu_2 over
# its states) the bound exp(int nu) of growth_bound for all trajectories at once.  The growth
# these predict is the largest over all directions; lib.growth measures it.

class TrajectorySpectra(NamedTuple):
    """The spectral abscissa ``alpha``, the logarithmic norm ``mu_2`` and Henrici's departure
    from normality (:func:`henrici_departure`) of the Jacobian of layer ``k`` at the state
    ``z_n^k`` of every input ``n`` (each ``[K, n]``), and the size of the change of that
    Jacobian from one layer to the next along each trajectory,
    ``|J(z_n^{k+1}; theta^{k+1}) - J(z_n^k; theta^k)|_2 / h`` (``[K-1, n]``)."""

    alpha: torch.Tensor
    log_norm: torch.Tensor
    departure: torch.Tensor
    variation: torch.Tensor


def trajectory_spectra(net: ODENet, x: torch.Tensor) -> TrajectorySpectra:
    """:class:`TrajectorySpectra` of a single network along the trajectories of the inputs
    ``x`` ``[n, in_features]``: the Jacobians ``J_n^k = df/dz(z_n^k; theta^k)`` come from
    :func:`jacobians`, their spectra from :func:`spectral_abscissa`, :func:`log_norm` and
    :func:`henrici_departure`."""
    single_network(net, "trajectory_spectra")
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    field = joined_field(net)
    J = torch.stack([jacobians(field, layer.theta, z) for layer, z in zip(net.layers(), states)])
    variation = torch.linalg.matrix_norm(J.diff(dim=0), ord=2) / net.h
    return TrajectorySpectra(spectral_abscissa(J), log_norm(J), henrici_departure(J),
                             variation)


def eigenvalue_growth(alpha: torch.Tensor, h: float) -> torch.Tensor:
    """The eigenvalues' (frozen-coefficient) prediction of the growth of perturbations,
    ``exp(h sum_{j<k} alpha_j)`` for ``k = 0..K``, from the spectral abscissas
    ``alpha_j`` of the layers: ``[K]`` (e.g. the largest over a layer's states) gives
    ``[K+1]``, and ``[K, n]`` (one trajectory per column, :class:`TrajectorySpectra`)
    gives ``[K+1, n]``.

    It is the growth of ``delta' = J delta`` if every frozen ``J`` were normal and
    constant; for slowly varying ``J(t)`` it holds up to constants (Desoer 1969), in
    general it is not a bound (:func:`markus_yamabe`).  Beside it, :func:`growth_bound`
    with ``nu_j >= alpha_j`` is one."""
    if not isinstance(alpha, torch.Tensor) or alpha.dim() not in (1, 2):
        raise ValueError(f"alpha must be a tensor [K] or [K, n] of spectral abscissas, "
                         f"got {alpha!r}")
    positive(h, "h")
    start = alpha.new_zeros((1, *alpha.shape[1:]))
    return torch.cat([start, h * alpha]).cumsum(0).exp()
