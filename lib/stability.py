"""Stability of the forward problem ``z' = f(z; theta(t))``: Jacobian spectra, logarithmic
norms, one-sided Lipschitz constants and the gradient-flow theorem of the talk.

- *Linear stability* (Haber & Ruthotto 2017) looks at the eigenvalues ``spec(J)`` of the
  Jacobian ``J(t, z) = df/dz`` and asks for ``Re spec(J) <= 0``: the largest real part is
  the *spectral abscissa* ``alpha(J) = max Re spec(J)``.
- *Nonlinear stability* asks for the one-sided Lipschitz condition
  ``<f(t, z_2) - f(t, z_1), z_2 - z_1> <= nu |z_2 - z_1|^2``, which gives
  ``|z_2(t) - z_1(t)| <= e^(nu t) |z_2(0) - z_1(0)|``.  On a convex set the smallest such
  ``nu`` is the supremum of the *logarithmic norm* ``mu_2(J) = max spec((J + J^T) / 2)``
  (Dahlquist 1959; Söderlind 2006), and ``alpha(J) <= mu_2(J)`` always.
- *Theorem* (the talk; Celledoni et al. 2021): for ``f = -A^T sigma(A z + b)`` with
  ``0 <= sigma' <= 1``, ``-s_*^2 <= nu <= 0`` with ``s_*`` the smallest singular value of
  ``A`` (the talk's ``mu_*``), and ``sigma(s) = s`` attains ``-s_*^2``.

``nu`` is a supremum.  Every value computed here from finitely many states or pairs (largest
``mu_2(J)`` over sampled states, largest pair quotient over sampled pairs, or the best a
search found, :func:`lipschitz_supremum`) is a *lower* estimate of it, and ``e^(int nu)``
built from such values is an *estimated* bound on the growth, not a guaranteed one.

A field is any callable ``field(z, theta)`` acting on the rows of ``z`` (shape ``[n, d]``)
independently, as every :class:`~lib.models.VectorField` does.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from .fields import ResNetField
from .integrators import rk_step
from .models import ODENet

__all__ = ["jacobians", "spectral_abscissa", "log_norm", "OneSidedLipschitz", "one_sided_lipschitz",
           "pair_quotients", "LipschitzSupremum", "lipschitz_supremum",
           "StabilityCurves", "layer_curves", "network_curves", "gradient_flow_bounds",
           "growth_factor", "growth_bound", "PerturbationGrowth", "perturbation_growth",
           "markus_yamabe", "markus_yamabe_network", "layer_determinants",
           "layer_jacobians", "step_lipschitz_bounds", "henrici_departure",
           "TrajectorySpectra", "trajectory_spectra", "eigenvalue_growth"]


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


class OneSidedLipschitz(NamedTuple):
    """Two lower estimates of the one-sided Lipschitz constant ``nu`` of a field on the convex
    hull of a set of states: ``log_norm`` (the largest ``mu_2(J)`` over the states) and
    ``pairs`` (the largest pair quotient over sampled pairs).  Both are 0-dim tensors."""

    log_norm: torch.Tensor
    pairs: torch.Tensor


def pair_quotients(field: Callable, theta, z1: torch.Tensor,
                   z2: torch.Tensor) -> torch.Tensor:
    """The quotients ``<f(z_2) - f(z_1), z_2 - z_1> / |z_2 - z_1|^2`` of the one-sided
    Lipschitz condition, row by row (``z1``, ``z2`` of shape ``[n, d]``, result
    ``[n]``).  ``nu`` is their supremum over all pairs, so each one is a lower estimate
    of ``nu``."""
    dz = z2 - z1
    df = field(z2, theta) - field(z1, theta)
    return (df * dz).sum(-1) / dz.square().sum(-1)


def one_sided_lipschitz(field: Callable, theta, states: torch.Tensor, pairs: int = 1024,
                        generator: torch.Generator | None = None) -> OneSidedLipschitz:
    """Estimate ``nu`` in ``<f(z_2) - f(z_1), z_2 - z_1> <= nu |z_2 - z_1|^2`` on the convex
    hull ``C`` of the ``states`` ``[n, d]``, for one layer's parameters ``theta``.

    - ``log_norm = max_i mu_2(J(z_i))``: on a convex set ``nu = sup_C mu_2(J)``
      (Söderlind 2006; Hairer & Wanner, *Solving ODEs II*, IV.12), so this is a lower
      estimate that becomes sharp as the states fill ``C``.
    - ``pairs``: the largest :func:`pair_quotients` over ``pairs`` pairs ``i != j`` drawn
      uniformly with ``generator``.  Each quotient is the mean of ``<J u, u>`` along the
      segment from ``z_i`` to ``z_j`` (``u`` its direction), so it is a lower estimate too.

    Both are lower estimates of the supremum ``nu``; :func:`lipschitz_supremum` searches for
    larger values.
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
        quotient = pair_quotients(field, theta, states[i], states[j])
    return OneSidedLipschitz(mu, quotient.amax())


class StabilityCurves(NamedTuple):
    """Per-layer stability numbers, each a tensor ``[K]``: the layer's start time ``t_k = k h``,
    the largest spectral abscissa ``max_z alpha(J)`` (linear stability, the talk's blue curve),
    and the lower estimates of the one-sided Lipschitz constant, ``max_z mu_2(J)`` and from
    pairs (the red curve), all over the layer's states."""

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
    """The bounds ``(-s_*^2, 0)`` of the talk's theorem: for ``f = -A^T sigma(A z + b)`` with
    ``0 <= sigma' <= 1`` the one-sided Lipschitz constant satisfies ``-s_*^2 <= nu <= 0``,
    ``s_* = s_min(A)`` the smallest singular value of ``A`` (``[m, d]``; ``s_* = 0`` when
    ``m < d``); the talk writes ``mu_*``.

    ``A`` may be a stack ``[..., m, d]``; the bounds then have shape ``[...]``, and the bound
    for the whole time interval is the smallest lower bound (``s_* = min_t s_min(A(t))``).

    Proof sketch: ``J = -A^T D A`` with ``D = diag(sigma'(A z + b))``, ``0 <= D <= I``, is
    symmetric, so ``mu_2(J) = -min spec(A^T D A)``, which lies in
    ``[-min spec(A^T A), 0] = [-s_min(A)^2, 0]``; for ``sigma(s) = s`` we have ``D = I``.
    """
    if not isinstance(A, torch.Tensor):
        raise TypeError(f"A must be a torch.Tensor, got {type(A).__name__}")
    if A.dim() < 2 or not A.is_floating_point():
        raise ValueError(f"A must be a floating-point (stack of) matrix [..., m, d], got "
                         f"{A.dtype} {list(A.shape)}")
    m, d = A.shape[-2:]
    if m < d:
        s_star = A.new_zeros(A.shape[:-2])
    else:
        s_star = torch.linalg.svdvals(A)[..., -1]
    return -s_star.square(), torch.zeros_like(s_star)


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
    (``e^(nu t)`` when all are equal): ``d/dt |delta| <= nu |delta|`` (Dahlquist 1959).  With
    true constants it is a bound on the flow; with lower estimates of them (sampled states or
    pairs, a search) it is an *estimated* bound."""
    if not isinstance(nu, torch.Tensor) or nu.dim() != 1:
        raise ValueError(f"nu must be a 1-D tensor of per-layer constants, got {nu!r}")
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not math.isfinite(h) or h <= 0:
        raise ValueError(f"h must be a positive finite number, got {h!r}")
    return torch.cat([nu.new_zeros(1), h * nu]).cumsum(0).exp()


class PerturbationGrowth(NamedTuple):
    """The measured growth of input perturbations through a network beside its estimated
    bound: ``t`` ``[K+1]`` the layer times, ``factor`` ``[K+1, n]`` the :func:`growth_factor`
    of each input, ``bound`` ``[K+1]`` the :func:`growth_bound` from the per-layer lower
    estimates of ``nu`` (so an estimated bound, not a guaranteed one)."""

    t: torch.Tensor
    factor: torch.Tensor
    bound: torch.Tensor


def perturbation_growth(net: ODENet, x: torch.Tensor, radius: float = 1e-4, pairs: int = 1024,
                        generator: torch.Generator | None = None) -> PerturbationGrowth:
    """Perturb every input by ``radius`` in a random direction (``x' = x + radius u``, ``|u| = 1``,
    drawn with ``generator``), measure ``|z'(t_k) - z(t_k)| / |z'(0) - z(0)|`` through ``net`` and
    set it beside the estimated bound ``exp(h sum_{j<k} nu_j)``, with ``nu_j`` the largest
    logarithmic norm of layer ``j`` over the features of both ``x`` and ``x'``
    (:func:`network_curves`, a lower estimate of the layer's ``nu``).

    For small ``radius`` and a fine step the estimate bounds the measured growth: the
    infinitesimal perturbation obeys ``d/dt |delta| <= mu_2(J(z(t))) |delta|`` along the
    states that were sampled.  A coarse explicit step can exceed it when ``h J`` leaves the
    method's stability region."""
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


# --- searching for the supremum of nu ---------------------------------------------------------

def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _rayleigh_quotients(field: Callable, theta, z: torch.Tensor,
                        u: torch.Tensor) -> torch.Tensor:
    """``<J(z) u, u> / |u|^2`` row by row, computed as ``<u, J(z)^T u>`` with one backward
    pass that stays differentiable (``z`` must require grad).  Its maximum over ``u`` is
    ``mu_2(J(z))``."""
    (jtu,) = torch.autograd.grad((field(z, theta) * u).sum(), z, create_graph=True,
                                 allow_unused=True)
    if jtu is None:  # f does not depend on z
        jtu = torch.zeros_like(z)
    return (jtu * u).sum(-1) / u.square().sum(-1)


def _ascend(objective: Callable, rows: list[torch.Tensor], steps: int, lr: float,
            project: Callable | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Maximise ``objective(*rows)`` (one value per row) by ``steps`` Adam steps from the
    given rows; return the best value of each row seen (the start included) and where."""
    with torch.enable_grad():
        xs = [r.detach().clone().requires_grad_(True) for r in rows]
        optimizer = torch.optim.Adam(xs, lr=lr, maximize=True)
        best, where = None, None
        for step in range(steps + 1):
            values = objective(*xs)
            with torch.no_grad():
                if best is None:
                    best, where = values.detach().clone(), [x.detach().clone() for x in xs]
                else:
                    better = values > best  # NaN never wins
                    best = torch.where(better, values, best)
                    where = [torch.where(better[..., None], x, w) for x, w in zip(xs, where)]
            if step == steps or not values.requires_grad:
                break
            grads = torch.autograd.grad(values.sum(), xs, allow_unused=True)
            for x, g in zip(xs, grads):
                x.grad = torch.zeros_like(x) if g is None else g
            optimizer.step()
            if project is not None:
                with torch.no_grad():
                    project(*xs)
    return best, where


class LipschitzSupremum(NamedTuple):
    """What :func:`lipschitz_supremum` found: the largest logarithmic norm ``log_norm`` =
    ``mu_2(J(z))`` at the state ``z`` ``[..., d]``, and the largest pair quotient ``pairs``
    at the ``pair`` ``[..., 2, d]`` (rows ``z_1``, ``z_2``); ``...`` is the member axis of a
    field with members, else empty.  Both values are lower estimates of the supremum ``nu``,
    at least as large as the sampled ones."""

    log_norm: torch.Tensor
    z: torch.Tensor
    pairs: torch.Tensor
    pair: torch.Tensor


def lipschitz_supremum(field: Callable, theta, starts: torch.Tensor, steps: int = 100,
                       lr: float = 0.05, min_distance: float = 1e-3,
                       generator: torch.Generator | None = None) -> LipschitzSupremum:
    """Search for the one-sided Lipschitz constant of ``field(., theta)`` on all of ``R^d``,
    ``nu = sup_z mu_2(J(z)) = sup_{z_1 != z_2} <f(z_2) - f(z_1), z_2 - z_1> / |z_2 - z_1|^2``,
    by gradient ascent (``steps`` Adam steps of rate ``lr``) from every row of ``starts``
    ``[m, d]`` (distinct rows, ``m >= 2``; ``[S, m, d]`` for a field with ``S`` members,
    each searched on its own):

    - over states: maximise ``<J(z) u, u> / |u|^2`` over ``z`` and a direction ``u`` (drawn
      with ``generator``); its maximum over ``u`` is ``mu_2(J(z))``, which is then evaluated
      at the starts and at the best point of every ascent;
    - over pairs: maximise :func:`pair_quotients` over ``(z_1, z_2)`` from the pairs
      ``(z_i, z_j)``, ``j != i`` drawn with ``generator``, keeping
      ``|z_2 - z_1| >= min_distance`` so that round-off in the quotient stays small.

    Every value found is a lower estimate of ``nu`` (on ``R^d``, ``nu = sup mu_2(J)``;
    Söderlind 2006): it can disprove a claimed upper bound (a value above it is a
    counterexample), while finding nothing above the bound is evidence, not proof.  The
    result is at least the sampled estimates of :func:`one_sided_lipschitz` over ``starts``,
    and deterministic given ``generator``.  For a piecewise-linear activation (ReLU) ``J`` is
    piecewise constant: the ascent over states gets no gradient and finds only what its
    starts reach, while the ascent over pairs still moves.
    """
    if not isinstance(starts, torch.Tensor):
        raise TypeError(f"starts must be a torch.Tensor, got {type(starts).__name__}")
    if starts.dim() < 2 or not starts.is_floating_point():
        raise ValueError(f"starts must be a floating-point tensor [m, d] (or [S, m, d] for a "
                         f"field with members), got {starts.dtype} {list(starts.shape)}")
    m = starts.shape[-2]
    if m < 2:
        raise ValueError(f"starts must hold at least two states to form pairs, got m = {m}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    lr, min_distance = _positive(lr, "lr"), _positive(min_distance, "min_distance")
    starts = starts.detach()
    if not callable(field):
        raise TypeError(f"field must be callable as field(z, theta), got {type(field).__name__}")
    with torch.no_grad():
        probe = field(starts, theta)
    if not isinstance(probe, torch.Tensor) or probe.shape != starts.shape:
        raise ValueError(f"field(z, theta) must return a tensor of the shape of starts "
                         f"{list(starts.shape)}, got {getattr(probe, 'shape', probe)}")
    u = torch.randn(starts.shape, generator=generator, dtype=starts.dtype).to(starts.device)
    j = (torch.arange(m) + torch.randint(1, m, (m,), generator=generator)) % m

    # over states and directions: the Rayleigh quotient of J(z), then mu_2 where it peaked
    _, (z, _) = _ascend(lambda z, u: _rayleigh_quotients(field, theta, z, u), [starts, u],
                        steps, lr)
    candidates = torch.cat([starts, z], -2)
    mu = log_norm(_row_jacobians(field, theta, candidates))
    state = mu.argmax(-1, keepdim=True)

    # over pairs, kept at least min_distance apart
    def keep_apart(z1: torch.Tensor, z2: torch.Tensor) -> None:
        gap = z2 - z1
        scale = (min_distance / gap.norm(dim=-1, keepdim=True)).clamp(min=1.0) - 1.0
        z1.sub_(0.5 * scale * gap)
        z2.add_(0.5 * scale * gap)

    quotients, (z1, z2) = _ascend(lambda a, b: pair_quotients(field, theta, a, b),
                                  [starts, starts[..., j.to(starts.device), :]], steps, lr,
                                  project=keep_apart)
    pair = quotients.argmax(-1, keepdim=True)
    best_pair = torch.stack([torch.take_along_dim(x, pair[..., None], -2).squeeze(-2)
                             for x in (z1, z2)], -2)
    return LipschitzSupremum(torch.take_along_dim(mu, state, -1).squeeze(-1),
                             torch.take_along_dim(candidates, state[..., None], -2).squeeze(-2),
                             torch.take_along_dim(quotients, pair, -1).squeeze(-1), best_pair)


def markus_yamabe(t: torch.Tensor) -> torch.Tensor:
    """The matrix of Markus & Yamabe (1960), shape ``[..., 2, 2]`` for times ``t`` ``[...]``:

        A(t) = [[-1 + 3/2 cos^2 t,  1 - 3/2 cos t sin t],
                [-1 - 3/2 sin t cos t,  -1 + 3/2 sin^2 t]].

    For every ``t`` its eigenvalues are ``(-1 +- i sqrt 7) / 4`` (real part ``-1/4``), yet
    ``z' = A(t) z`` has the solution ``e^(t/2) (-cos t, sin t)``: the logarithmic norm is
    ``mu_2(A(t)) = 1/2`` (the symmetric part is ``-I + 3/2 v v^T``, ``v = (cos t, -sin t)``), so
    ``nu = 1/2`` exactly, and the growth ``e^(t/2)`` attains the bound ``e^(nu t)``."""
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


# =============================================================================================
# Folding: the Jacobian determinant of each layer map (chapter 1)
# =============================================================================================
# A layer of a network is the map Phi_h(z) = z + h sum_i beta_i f(Z_i; theta^k): one step of its
# explicit Runge--Kutta method.  For Euler, Phi_h(z) = z + h f(z) and, for the ResNet field
# f = sigma(A z + b), D Phi_h = I + h diag(sigma'(A z + b)) A.  Where det D Phi_h < 0 the layer
# reverses orientation: it folds the plane.  An injective C^1 map of R^d never has a Jacobian
# determinant of both signs (its local degree is constant), so a layer whose determinant takes
# both signs is not a homeomorphism.  When h Lip f < 1 it is one: Phi_h is bi-Lipschitz and its
# inverse is the fixed point of z = w - h f(z) (Banach), and det D Phi_h > 0 everywhere.



def layer_jacobians(net: ODENet, x: torch.Tensor) -> torch.Tensor:
    """``D Phi_h(z^k_n; theta^k)``, the Jacobian of the map of layer ``k`` at the state
    ``z^k_n`` of every input of ``x`` (``[n, in_features]``) that the layer acts on: shape
    ``[K, n, d, d]``.

    ``Phi_h(z; theta^k)`` is one step of size ``h`` of the network's explicit Runge--Kutta
    method for ``z' = f(z; theta^k)`` (:func:`lib.integrators.rk_step`; Hairer, Norsett &
    Wanner, *Solving ODEs I*, II.1); its Jacobian is computed per point by reverse-mode
    differentiation of the step (``d`` backward passes for all points at once, as the step
    acts on each point alone), so any tableau and any field is covered.  For Euler and the
    ResNet field it is ``I + h diag(sigma'(A^k z + b^k)) A^k``.  One network at a time: pass
    ``net.member(s)``."""
    _check_single(net)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    with torch.no_grad():
        states = net.trajectory(x)[:-1]

    def layer_map(z, theta):  # z -> Phi_h(z; theta^k); theta^k is fixed, t plays no part
        return rk_step(lambda t, y: net.field(y, theta), 0.0, z, net.h, net.tableau)

    return torch.stack([_row_jacobians(layer_map, tuple(p.detach() for p in theta), z)
                        for theta, z in zip(net.field.thetas(), states)])


def layer_determinants(net: ODENet, x: torch.Tensor) -> torch.Tensor:
    """``det D Phi_h(z^k_n; theta^k)`` for every layer ``k`` at the states ``z^k_n`` of the inputs
    ``x`` (``[n, in_features]``) that the layer acts on: shape ``[K, n]``, the determinants of
    :func:`layer_jacobians`.  For Euler and the ResNet field it is
    ``det(I + h diag(sigma'(A^k z + b^k)) A^k)``; it is positive everywhere when
    ``h ||A^k||_2 < 1`` (:func:`step_lipschitz_bounds`), and a negative value marks a point
    where the layer folds the space (chapter 1).  One network at a time: pass ``net.member(s)``.
    """
    return torch.linalg.det(layer_jacobians(net, x))


def step_lipschitz_bounds(net: ODENet) -> torch.Tensor:
    """``h ||A^k||_2`` for every layer ``k`` of a network with the ResNet field
    ``f = sigma(A z + b)``: shape ``[K]``, or ``[K, S]`` for a network with ``S`` members.

    With ``0 <= sigma' <= 1`` (every activation of :mod:`lib.activations`) the field is
    Lipschitz with constant ``||A^k||_2``, so ``h ||A^k||_2`` bounds ``h Lip f``; where it is
    below 1 the Euler layer ``z + h f(z; theta^k)`` is a bi-Lipschitz homeomorphism of ``R^d``
    (chapter 1; Banach's fixed point theorem gives the inverse, as for the invertible ResNets
    of Behrmann et al. 2019)."""
    if not isinstance(net, ODENet):
        raise TypeError(f"net must be an ODENet, got {type(net).__name__}")
    if not isinstance(net.field, ResNetField):
        raise TypeError("step_lipschitz_bounds needs the ResNet field sigma(A z + b), got "
                        f"{type(net.field).__name__}")
    A = net.field.stacks()["A"].detach()
    return net.h * torch.linalg.matrix_norm(A, ord=2)


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
    _check_single(net)
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    J = torch.stack([jacobians(net.field, theta, z)
                     for theta, z in zip(net.field.thetas(), states)])
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
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not math.isfinite(h) \
            or h <= 0:
        raise ValueError(f"h must be a positive finite number, got {h!r}")
    start = alpha.new_zeros((1, *alpha.shape[1:]))
    return torch.cat([start, h * alpha]).cumsum(0).exp()
