"""Stability of the forward problem ``z' = f(z; theta(t))``: Jacobian spectra, logarithmic
norms, one-sided Lipschitz constants and the gradient-flow theorem of the talk.

- *Linear stability* (Haber & Ruthotto 2017) looks at the eigenvalues of the Jacobian
  ``J(t, z) = df/dz`` and asks for ``Re lambda_i(J) <= 0``: its largest real part is the
  *spectral abscissa* ``alpha(J) = max_i Re lambda_i(J)``.
- *Nonlinear stability* asks for the one-sided Lipschitz condition
  ``<f(t, z_2) - f(t, z_1), z_2 - z_1> <= nu |z_2 - z_1|^2``, which gives
  ``|z_2(t) - z_1(t)| <= e^(nu t) |z_2(0) - z_1(0)|``.  On a convex set the smallest such
  ``nu`` is the supremum of the *logarithmic norm* ``mu_2(J) = lambda_max((J + J^T) / 2)``
  (Dahlquist 1959; Söderlind 2006), and ``alpha(J) <= mu_2(J)`` always.
- *Theorem* (the talk; Celledoni et al. 2021): for ``f = -A^T sigma(A z + b)`` with
  ``0 <= sigma' <= 1``, ``-mu_*^2 <= nu <= 0`` with ``mu_*`` the smallest singular value of ``A``,
  and ``sigma(s) = s`` attains ``-mu_*^2``.

A field is any callable ``field(z, theta)`` acting on the rows of ``z`` (shape ``[n, d]``)
independently, as every :class:`~lib.models.VectorField` does.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from .models import ODENet

__all__ = ["jacobians", "spectral_abscissa", "log_norm", "OneSidedLipschitz", "one_sided_lipschitz",
           "StabilityCurves", "layer_curves", "network_curves", "gradient_flow_bounds",
           "growth_factor", "growth_bound", "PerturbationGrowth", "perturbation_growth",
           "markus_yamabe", "markus_yamabe_network"]


def _check_single(net) -> None:
    if not isinstance(net, ODENet):
        raise TypeError(f"net must be an ODENet, got {type(net).__name__}")
    if net.members is not None:
        raise ValueError(f"net has {net.members} members; the stability diagnostics examine one "
                         "network: pass net.member(s)")


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


def jacobians(field: Callable, theta, states: torch.Tensor) -> torch.Tensor:
    """The Jacobians ``J_i = df/dz (z_i; theta)`` at every state ``z_i`` (a row of ``states``),
    shape ``[n, d, d]`` with ``J_i[r, c] = d f_r / d z_c``.

    Computed by reverse-mode differentiation of one row, vectorised over the rows
    (``torch.func.vmap(torch.func.jacrev(...))``).  The result does not track gradients
    with respect to ``theta``.
    """
    if not callable(field):
        raise TypeError(f"field must be callable as field(z, theta), got {type(field).__name__}")
    states = _check_states(states).detach()
    with torch.no_grad():
        probe = field(states[:1], theta)
    if not isinstance(probe, torch.Tensor) or probe.shape != states[:1].shape:
        raise ValueError(f"field(z, theta) must return a tensor of the shape of z [n, d] = "
                         f"[1, {states.shape[1]}], got {getattr(probe, 'shape', type(probe).__name__)}")

    def row(z: torch.Tensor) -> torch.Tensor:
        return field(z.unsqueeze(0), theta).squeeze(0)

    with torch.no_grad():  # torch.func differentiates anyway; theta is not tracked
        return torch.func.vmap(torch.func.jacrev(row))(states)


def spectral_abscissa(J: torch.Tensor) -> torch.Tensor:
    """``alpha(J) = max_i Re lambda_i(J)``, the largest real part of the eigenvalues, for a
    matrix or a batch ``[..., d, d]`` (result of shape ``[...]``).  Linear stability
    (Haber & Ruthotto 2017) asks for ``alpha(J) <= 0``."""
    return torch.linalg.eigvals(_check_square(J)).real.amax(-1)


def log_norm(J: torch.Tensor) -> torch.Tensor:
    """The logarithmic 2-norm ``mu_2(J) = lambda_max((J + J^T) / 2) = max_{|u|=1} <J u, u>``
    (Dahlquist 1959), for a matrix or a batch ``[..., d, d]``.  It bounds the spectrum,
    ``alpha(J) <= mu_2(J)``, and the growth ``|exp(tJ)| <= exp(t mu_2(J))``."""
    J = _check_square(J)
    return torch.linalg.eigvalsh(0.5 * (J + J.mT))[..., -1]


class OneSidedLipschitz(NamedTuple):
    """Two estimates of the one-sided Lipschitz constant ``nu`` of a field on a set of states:
    ``log_norm`` (the largest ``mu_2(J)`` over the states) and ``pairs`` (the largest pair
    quotient over sampled pairs).  Both are 0-dim tensors."""

    log_norm: torch.Tensor
    pairs: torch.Tensor


def one_sided_lipschitz(field: Callable, theta, states: torch.Tensor, pairs: int = 1024,
                        generator: torch.Generator | None = None) -> OneSidedLipschitz:
    """Estimate ``nu`` in ``<f(z_2) - f(z_1), z_2 - z_1> <= nu |z_2 - z_1|^2`` on the convex hull
    ``C`` of the ``states`` ``[n, d]``, for one layer's parameters ``theta``.

    - ``log_norm = max_i mu_2(J(z_i))``: on a convex set ``nu = sup_C mu_2(J)``, so this is the
      sharp estimate as the states fill ``C`` (Söderlind 2006, Hairer & Wanner, *Solving ODEs II*,
      IV.12).
    - ``pairs = max <f(z_j) - f(z_i), z_j - z_i> / |z_j - z_i|^2`` over ``pairs`` pairs ``i != j``
      drawn uniformly (with ``generator``): each quotient is the mean of ``<J u, u>`` along the
      segment from ``z_i`` to ``z_j`` (``u`` its direction), so it can only be a lower bound of
      ``nu``; it cannot exceed ``log_norm`` when ``J`` is constant, and in practice does not
      when the states are dense.
    """
    states = _check_states(states).detach()
    if not isinstance(pairs, int) or isinstance(pairs, bool) or pairs < 1:
        raise ValueError(f"pairs must be a positive integer, got {pairs!r}")
    n = states.shape[0]
    if n < 2:
        raise ValueError(f"states must hold at least two states to form pairs, got n = {n}")
    mu = log_norm(jacobians(field, theta, states)).amax()
    i = torch.randint(n, (pairs,), generator=generator)
    j = (i + torch.randint(1, n, (pairs,), generator=generator)) % n  # j != i
    i, j = i.to(states.device), j.to(states.device)
    with torch.no_grad():
        f = field(states, theta)
    dz = states[j] - states[i]
    quotient = ((f[j] - f[i]) * dz).sum(1) / dz.square().sum(1)
    return OneSidedLipschitz(mu, quotient.amax())


class StabilityCurves(NamedTuple):
    """Per-layer stability numbers, each a tensor ``[K]``: the layer's start time ``t_k = k h``,
    the largest spectral abscissa ``max_z alpha(J)`` (linear stability, the talk's blue curve),
    and the one-sided Lipschitz estimates ``max_z mu_2(J)`` and from pairs (the red curve)."""

    t: torch.Tensor
    spectral_abscissa: torch.Tensor
    log_norm: torch.Tensor
    pairs: torch.Tensor


def layer_curves(field, states: torch.Tensor, h: float = 1.0, pairs: int = 1024,
                 generator: torch.Generator | None = None) -> StabilityCurves:
    """:class:`StabilityCurves` of every layer ``theta^k`` of a stacked field (a
    :class:`~lib.models.VectorField`), over the states ``[n, d]`` (the same for every layer)
    or ``[K, n, d]`` (the states of layer ``k`` in ``states[k]``); ``t_k = k h``."""
    thetas = field.thetas()
    K = len(thetas)
    if not isinstance(states, torch.Tensor):
        raise TypeError(f"states must be a torch.Tensor, got {type(states).__name__}")
    if states.dim() == 2:
        states = states.expand(K, *states.shape)
    if states.dim() != 3 or states.shape[0] != K:
        raise ValueError(f"states must have shape [n, d] or [K, n, d] with K = {K}, "
                         f"got {list(states.shape)}")
    alpha, mu, pair = [], [], []
    for theta, z in zip(thetas, states):
        J = jacobians(field, theta, z)
        alpha.append(spectral_abscissa(J).amax())
        estimate = one_sided_lipschitz(field, theta, z, pairs=pairs, generator=generator)
        mu.append(estimate.log_norm)
        pair.append(estimate.pairs)
    t = h * torch.arange(K, dtype=states.dtype, device=states.device)
    return StabilityCurves(t, torch.stack(alpha), torch.stack(mu), torch.stack(pair))


def network_curves(net: ODENet, x: torch.Tensor, pairs: int = 1024,
                   generator: torch.Generator | None = None) -> StabilityCurves:
    """:class:`StabilityCurves` of a (trained) network along the features of the inputs ``x``:
    layer ``k`` is examined at the states ``z^k`` it acts on, ``t_k = k h``."""
    _check_single(net)
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    return layer_curves(net.field, states, net.h, pairs=pairs, generator=generator)


def gradient_flow_bounds(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The bounds ``(-mu_*^2, 0)`` of the talk's theorem: for ``f = -A^T sigma(A z + b)`` with
    ``0 <= sigma' <= 1`` the one-sided Lipschitz constant satisfies ``-mu_*^2 <= nu <= 0``,
    ``mu_*`` the smallest singular value of ``A`` (``[m, d]``; ``mu_* = 0`` when ``m < d``).

    ``A`` may be a stack ``[..., m, d]``; the bounds then have shape ``[...]``, and the bound
    for the whole time interval is the smallest lower bound (``mu_* = min_t mu(t)``).

    Proof sketch: ``J = -A^T D A`` with ``D = diag(sigma'(A z + b))``, ``0 <= D <= I``, is symmetric,
    so ``mu_2(J) = -lambda_min(A^T D A)``, which lies in ``[-lambda_min(A^T A), 0] = [-mu_*^2, 0]``;
    for ``sigma(s) = s`` we have ``D = I``.
    """
    if not isinstance(A, torch.Tensor):
        raise TypeError(f"A must be a torch.Tensor, got {type(A).__name__}")
    if A.dim() < 2 or not A.is_floating_point():
        raise ValueError(f"A must be a floating-point (stack of) matrix [..., m, d], got "
                         f"{A.dtype} {list(A.shape)}")
    m, d = A.shape[-2:]
    if m < d:
        mu_star = A.new_zeros(A.shape[:-2])
    else:
        mu_star = torch.linalg.svdvals(A)[..., -1]
    return -mu_star.square(), torch.zeros_like(mu_star)


def growth_factor(net: ODENet, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """The growth ``|z_2(t_k) - z_1(t_k)| / |z_2(0) - z_1(0)|`` of the distance between the
    features of the inputs ``x1`` and ``x2`` (each ``[n, in_features]``, row by row) after each
    layer, shape ``[K+1, n]``.  The one-sided Lipschitz condition bounds it by
    ``exp(int_0^t nu)``; see :func:`growth_bound`."""
    _check_single(net)
    if not isinstance(x1, torch.Tensor) or not isinstance(x2, torch.Tensor):
        raise TypeError("x1 and x2 must be torch.Tensors")
    if x1.shape != x2.shape:
        raise ValueError(f"x1 and x2 must have the same shape, got {list(x1.shape)} and {list(x2.shape)}")
    with torch.no_grad():
        distance = (net.trajectory(x2) - net.trajectory(x1)).norm(dim=-1)
    if not bool((distance[0] > 0).all()):
        raise ValueError("x1 and x2 must differ in every row (the growth of a zero distance is undefined)")
    return distance / distance[0]


def growth_bound(nu: torch.Tensor, h: float) -> torch.Tensor:
    """``exp(int_0^{t_k} nu(s) ds) = exp(h sum_{j<k} nu_j)`` for ``k = 0..K`` (shape ``[K+1]``), the
    bound on :func:`growth_factor` from the one-sided Lipschitz constants ``nu_j`` of the layers
    (``e^(nu t)`` when all are equal): ``d/dt |delta| <= nu |delta|`` (Dahlquist 1959)."""
    if not isinstance(nu, torch.Tensor) or nu.dim() != 1:
        raise ValueError(f"nu must be a 1-D tensor of per-layer constants, got {nu!r}")
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not math.isfinite(h) or h <= 0:
        raise ValueError(f"h must be a positive finite number, got {h!r}")
    return torch.cat([nu.new_zeros(1), h * nu]).cumsum(0).exp()


class PerturbationGrowth(NamedTuple):
    """The measured growth of input perturbations through a network beside its bound:
    ``t`` ``[K+1]`` the layer times, ``factor`` ``[K+1, n]`` the :func:`growth_factor` of each
    input, ``bound`` ``[K+1]`` the :func:`growth_bound` from the per-layer ``nu`` estimates."""

    t: torch.Tensor
    factor: torch.Tensor
    bound: torch.Tensor


def perturbation_growth(net: ODENet, x: torch.Tensor, radius: float = 1e-4, pairs: int = 1024,
                        generator: torch.Generator | None = None) -> PerturbationGrowth:
    """Perturb every input by ``radius`` in a random direction (``x' = x + radius u``, ``|u| = 1``,
    drawn with ``generator``), measure ``|z'(t_k) - z(t_k)| / |z'(0) - z(0)|`` through ``net`` and
    set it beside ``exp(h sum_{j<k} nu_j)``, with ``nu_j`` the largest logarithmic norm of
    layer ``j`` over the features of both ``x`` and ``x'`` (:func:`network_curves`).

    For small ``radius`` and a fine step the bound holds: the infinitesimal perturbation obeys
    ``d/dt |delta| <= mu_2(J(z(t))) |delta|``.  A coarse explicit step can exceed it when ``h J``
    leaves the method's stability region."""
    if not isinstance(radius, (int, float)) or isinstance(radius, bool) or not radius > 0 \
            or not math.isfinite(radius):
        raise ValueError(f"radius must be a positive finite number, got {radius!r}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    u = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    x_perturbed = x + radius * u / u.norm(dim=-1, keepdim=True)
    factor = growth_factor(net, x, x_perturbed)
    curves = network_curves(net, torch.cat([x, x_perturbed]), pairs=pairs, generator=generator)
    t = net.h * torch.arange(net.depth + 1, dtype=x.dtype, device=x.device)
    return PerturbationGrowth(t, factor, growth_bound(curves.log_norm, net.h))


def markus_yamabe(t: torch.Tensor) -> torch.Tensor:
    """The matrix of Markus & Yamabe (1960), shape ``[..., 2, 2]`` for times ``t`` ``[...]``:

        A(t) = [[-1 + 3/2 cos^2 t,  1 - 3/2 cos t sin t],
                [-1 - 3/2 sin t cos t,  -1 + 3/2 sin^2 t]].

    For every ``t`` its eigenvalues are ``(-1 +- i sqrt 7) / 4`` (real part ``-1/4``), yet
    ``z' = A(t) z`` has the solution ``e^(t/2) (-cos t, sin t)``: the logarithmic norm is
    ``mu_2(A(t)) = 1/2`` (the symmetric part is ``-I + 3/2 v v^T``, ``v = (cos t, -sin t)``), and
    the growth ``e^(t/2)`` attains the bound ``e^(nu t)``."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"t must be a floating-point torch.Tensor, got {type(t).__name__}")
    c, s = torch.cos(t), torch.sin(t)
    rows = [torch.stack([-1 + 1.5 * c * c, 1 - 1.5 * c * s], -1),
            torch.stack([-1 - 1.5 * s * c, -1 + 1.5 * s * s], -1)]
    return torch.stack(rows, -2)


def markus_yamabe_network(T: float, depth: int, method="rk4") -> ODENet:
    """The linear network ``z' = A(t) z`` of :func:`markus_yamabe` on ``[0, T]``: a width-2
    :class:`~lib.models.ODENet` with the identity ResNet field whose layer ``k`` holds
    ``A^k = A(t_k + h/2)`` (the midpoint of its step) and ``b^k = 0``; float64."""
    net = ODENet(width=2, depth=depth, T=T, method=method, activation="identity",
                 field="resnet").double()
    midpoints = (torch.arange(depth, dtype=torch.float64) + 0.5) * net.h
    with torch.no_grad():
        net.field.A.copy_(markus_yamabe(midpoints))
        net.field.b.zero_()
    return net


# --- the eigenvalues' prediction of perturbation growth (chapter 6) ---------------------------
#
# Along a trajectory z(t) of the flow, a small perturbation obeys the linear non-autonomous
# system delta' = J(t) delta with J(t) = df/dz(z(t); theta(t)).  Freezing t gives the
# eigenvalues' prediction |delta(t)| ~ exp(int alpha(J)) |delta(0)|, which holds up to constants
# when J(t) varies slowly (Desoer 1969); the logarithmic norm gives the bound
# exp(int mu_2(J)) for every J(t) (Dahlquist 1959), and the layer's nu (the largest mu_2 over
# its states) the bound exp(int nu) of growth_bound for all trajectories at once.

__all__ += ["TrajectorySpectra", "trajectory_spectra", "eigenvalue_growth", "GrowthComparison",
            "growth_comparison"]

class TrajectorySpectra(NamedTuple):
    """The spectral abscissa ``alpha`` and the logarithmic norm ``mu_2`` of the Jacobian of
    layer ``k`` at the state ``z_n^k`` of every input ``n`` (each ``[K, n]``), and the size of
    the change of that Jacobian from one layer to the next along each trajectory,
    ``|J(z_n^{k+1}; theta^{k+1}) - J(z_n^k; theta^k)|_2 / h`` (``[K-1, n]``)."""

    alpha: torch.Tensor
    log_norm: torch.Tensor
    variation: torch.Tensor


def trajectory_spectra(net: ODENet, x: torch.Tensor) -> TrajectorySpectra:
    """:class:`TrajectorySpectra` of a single network along the trajectories of the inputs
    ``x`` ``[n, in_features]``: the Jacobians ``J_n^k = df/dz(z_n^k; theta^k)`` come from
    :func:`jacobians`, their spectra from :func:`spectral_abscissa` and :func:`log_norm`."""
    _check_single(net)
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    J = torch.stack([jacobians(net.field, theta, z)
                     for theta, z in zip(net.field.thetas(), states)])
    variation = torch.linalg.matrix_norm(J.diff(dim=0), ord=2) / net.h
    return TrajectorySpectra(spectral_abscissa(J), log_norm(J), variation)


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
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not math.isfinite(h) \
            or h <= 0:
        raise ValueError(f"h must be a positive finite number, got {h!r}")
    start = alpha.new_zeros((1, *alpha.shape[1:]))
    return torch.cat([start, h * alpha]).cumsum(0).exp()


class GrowthComparison(NamedTuple):
    """The measured growth of input perturbations beside what the spectra say, all against the
    layer times ``t`` ``[K+1]``: ``measured`` ``[K+1, n]`` (:func:`growth_factor`),
    ``eigenvalues`` ``[K+1, n]`` (:func:`eigenvalue_growth` along each input's trajectory),
    ``log_norms`` ``[K+1, n]`` (``exp(int mu_2(J))`` along each trajectory, a bound for
    infinitesimal perturbations of the flow), ``bound`` ``[K+1]`` (:func:`growth_bound` with each
    layer's estimated ``nu``, the largest ``mu_2`` over its states) and the
    :class:`TrajectorySpectra` they come from."""

    t: torch.Tensor
    measured: torch.Tensor
    eigenvalues: torch.Tensor
    log_norms: torch.Tensor
    bound: torch.Tensor
    spectra: TrajectorySpectra


def growth_comparison(net: ODENet, x: torch.Tensor, radius: float = 1e-4,
                      generator: torch.Generator | None = None) -> GrowthComparison:
    """Perturb every input by ``radius`` in a random direction (drawn with ``generator``) and
    set the measured growth through ``net`` beside the eigenvalues' prediction, the
    trajectory's log-norm bound and the estimated bound ``exp(int nu)``.  To compare with the
    flow of ``theta(t)`` rather than with the network's own steps, pass
    ``lib.deep_limit.refine(net, m)``."""
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0 \
            or not math.isfinite(radius):
        raise ValueError(f"radius must be a positive finite number, got {radius!r}")
    spectra = trajectory_spectra(net, x)
    u = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    measured = growth_factor(net, x, x + radius * u / u.norm(dim=-1, keepdim=True))
    t = net.h * torch.arange(net.depth + 1, dtype=x.dtype, device=x.device)
    return GrowthComparison(t, measured, eigenvalue_growth(spectra.alpha, net.h),
                            eigenvalue_growth(spectra.log_norm, net.h),
                            growth_bound(spectra.log_norm.amax(1), net.h), spectra)
