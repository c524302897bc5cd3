"""Nonlinear stability: the one-sided Lipschitz constant ``nu`` of a field and the growth it
bounds (chapter 4; the talk's red curve).

``<f(t, z_2) - f(t, z_1), z_2 - z_1> <= nu |z_2 - z_1|^2`` gives
``|z_2(t) - z_1(t)| <= e^(nu t) |z_2(0) - z_1(0)|``.  On a convex set the smallest such ``nu``
is the supremum of the logarithmic norm ``mu_2(J)`` (:mod:`lib.spectra`; Söderlind 2006).

*Theorem* (the talk; Celledoni et al. 2021): for ``f = -A^T sigma(A z + b)`` with
``0 <= sigma' <= 1``, ``-s_*^2 <= nu <= 0`` with ``s_*`` the smallest singular value of ``A``
(the talk's ``mu_*``), and ``sigma(s) = s`` attains ``-s_*^2``.

``nu`` is a supremum.  Every value computed here from finitely many states or pairs (largest
``mu_2(J)`` over sampled states, largest pair quotient over sampled pairs, or the best a
search found, :func:`lipschitz_supremum`) is a *lower* estimate of it, and ``e^(int nu)``
built from such values is an *estimated* bound on the growth, not a guaranteed one.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from .models import ODENet, single_network
from .spectra import (_check_states, _row_jacobians, jacobians, joined_field, log_norm,
                      spectral_abscissa)
from .validate import integer, positive, positive_int

__all__ = ["OneSidedLipschitz", "pair_quotients", "one_sided_lipschitz", "StabilityCurves",
           "layer_curves", "network_curves", "gradient_flow_bounds", "growth_factor",
           "growth_bound", "PerturbationGrowth", "perturbation_growth", "LipschitzSupremum",
           "lipschitz_supremum"]


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
    positive_int(pairs, "pairs")
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
    return _curves(field, field.thetas(), states, h, pairs, generator)


def _curves(field: Callable, thetas: list, states: torch.Tensor, h: float, pairs: int,
            generator) -> StabilityCurves:
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
    single_network(net, "network_curves")
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    return _curves(joined_field(net), [layer.theta for layer in net.layers()], states, net.h,
                   pairs, generator)


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
    single_network(net, "growth_factor")
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
    positive(h, "h")
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
    positive(radius, "radius")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    u = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    x_perturbed = x + radius * u / u.norm(dim=-1, keepdim=True)
    factor = growth_factor(net, x, x_perturbed)
    curves = network_curves(net, torch.cat([x, x_perturbed]), pairs=pairs, generator=generator)
    t = net.h * torch.arange(net.depth + 1, dtype=x.dtype, device=x.device)
    return PerturbationGrowth(t, factor, growth_bound(curves.log_norm, net.h))


# --- searching for the supremum of nu ---------------------------------------------------------

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
    integer(steps, "steps", 0)
    lr, min_distance = positive(lr, "lr"), positive(min_distance, "min_distance")
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
