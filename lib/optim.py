"""Optimisers as steps of discretised flows (chapter 7).

Training is itself an ODE solve.  Each optimiser here is one step of a named discretisation of
a named flow on the parameters ``q`` (all parameters of a group, flattened into one vector)
with the objective ``f`` and, for the momentum methods, a momentum ``p``:

- :class:`GradientDescent`: explicit Euler (lib's ``"euler"`` tableau) on the gradient flow
  ``q' = -grad f(q)``, step ``h = lr``.
- :class:`HeavyBall`: the damped Hamiltonian flow ``q' = p``, ``p' = -gamma p - grad f(q)``
  split into the exact dissipation ``p <- mu p``, ``mu = exp(-gamma h)``, then one step of
  symplectic Euler (lib's pair ``symplectic_euler_pz``): *conformal symplectic Euler*
  (França, Sulam, Robinson & Vidal, NeurIPS 2020).  It is Polyak's heavy ball and
  ``torch.optim.SGD(lr=h^2, momentum=mu)`` with ``v = h p``.
- :class:`Nesterov`: the same flow, with the gradient taken at the extrapolated point
  ``q + h mu p`` (Sutskever et al. 2013): ``torch.optim.SGD(lr=h^2, momentum=mu,
  nesterov=True)``, whose parameters are that extrapolated point.  The extrapolation is not a
  step of a partitioned Runge--Kutta pair, and the step is not conformal symplectic.
- :class:`HamiltonianDescent`: the flow with a kinetic energy ``k(p) = |p|^a / a``
  (Maddison, Paulin, Teh, O'Donoghue & Doucet 2018, first explicit method), stepped like
  the heavy ball with ``dz = grad k(p)``; ``a = b / (b - 1)`` suits ``f ~ |q|^b``.
- :class:`RelativisticGD`: the dissipative leapfrog of the relativistic kinetic energy
  (França et al. 2020, their published ``relativistic2``).  Its drifts and kick have
  different scalings and ``alpha < 1`` mixes two positions, so it is written out rather than
  taken from the pair machinery.

A method with several gradient evaluations per step (RK4 on the gradient flow) would need
the gradient at points other than the current parameters, which ``torch.optim``'s interface
does not give; those are not here.  Every optimiser works on any device and dtype.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .integrators import Separable, rk_step
from .tableaux import EULER, SYMPLECTIC_EULER_PZ
from .validate import non_negative, positive, positive_int

__all__ = ["gradient_descent_step", "heavy_ball_step", "nesterov_step",
           "hamiltonian_descent_step", "power_kinetic_gradient", "relativistic_step",
           "GradientDescent", "HeavyBall", "Nesterov", "HamiltonianDescent",
           "RelativisticGD", "minimise", "momentum_iterates", "nesterov_sbc", "nesterov_ode",
           "linear_rate", "sharpness", "layer_displacements", "step_determinant"]

Gradient = Callable[[torch.Tensor], torch.Tensor]


# --- the steps, as functions of the state ---------------------------------------------------

def gradient_descent_step(q: torch.Tensor, gradient: Gradient, h: float) -> torch.Tensor:
    """Explicit Euler on ``q' = -grad f(q)``: ``q + h (-grad f(q))``."""
    return rk_step(lambda t, z: -gradient(z), 0.0, q, h, EULER)


def heavy_ball_step(q: torch.Tensor, p: torch.Tensor, gradient: Gradient, h: float,
                    gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Conformal symplectic Euler on ``q' = p``, ``p' = -gamma p - grad f(q)``:

        p <- exp(-gamma h) p   (the dissipation, exactly),
        p <- p - h grad f(q),   q <- q + h p   (symplectic Euler, p first).

    Its Jacobian maps the symplectic form ``dq ^ dp`` to ``mu dq ^ dp``, so its
    determinant is ``mu^d``, ``mu = exp(-gamma h)``, whatever ``f`` is."""
    mu = math.exp(-gamma * h)
    field = Separable(lambda t, v: v, lambda t, z: -gradient(z))
    return rk_step(field, 0.0, (q, mu * p), h, SYMPLECTIC_EULER_PZ)


def nesterov_step(q: torch.Tensor, p: torch.Tensor, gradient: Gradient, h: float,
                  gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Nesterov's step on the same flow: ``p <- mu p - h grad f(q + h mu p)``,
    ``q <- q + h p``.  Its Jacobian determinant is ``mu^d det(I - h^2 Hess f)``."""
    mu = math.exp(-gamma * h)
    p = mu * p - h * gradient(q + h * mu * p)
    return q + h * p, p


def power_kinetic_gradient(p: torch.Tensor, a: float) -> torch.Tensor:
    """``grad k(p) = |p|^(a-2) p`` of the kinetic energy ``k(p) = |p|^a / a`` (Euclidean
    norm over all entries); zero at ``p = 0``."""
    norm = p.norm()
    if norm == 0:
        return torch.zeros_like(p)
    return norm ** (a - 2) * p


def hamiltonian_descent_step(q: torch.Tensor, p: torch.Tensor, gradient: Gradient, h: float,
                             gamma: float, a: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Conformal symplectic Euler on ``q' = grad k(p)``, ``p' = -gamma p - grad f(q)`` with
    ``k(p) = |p|^a / a`` (Maddison et al. 2018, first explicit method, with the dissipation
    ``exp(-gamma h)`` in place of their ``1 / (1 + gamma h)``); ``a = 2`` is the heavy ball."""
    mu = math.exp(-gamma * h)
    field = Separable(lambda t, v: power_kinetic_gradient(v, a), lambda t, z: -gradient(z))
    return rk_step(field, 0.0, (q, mu * p), h, SYMPLECTIC_EULER_PZ)


def relativistic_step(x: torch.Tensor, v: torch.Tensor, gradient: Gradient, lr: float,
                      mu: float, delta: float, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Relativistic gradient descent, one step (França et al. 2020, ``relativistic2``):

        x_half = x + sqrt(mu) v / sqrt(1 + delta mu |v|^2)
        v_half = sqrt(mu) v - lr grad f(x_half)
        x <- alpha x_half + (1 - alpha) x + v_half / sqrt(1 + delta |v_half|^2)
        v <- sqrt(mu) v_half

    a dissipative leapfrog of ``H = f(x) + sqrt(|p|^2 + 1/delta) / sqrt(delta)`` in scaled
    variables; ``alpha = 1`` is the leapfrog itself."""
    root = math.sqrt(mu)
    x_half = x + root * v / torch.sqrt(1 + delta * mu * v.dot(v))
    v_half = root * v - lr * gradient(x_half)
    x = alpha * x_half + (1 - alpha) * x + v_half / torch.sqrt(1 + delta * v_half.dot(v_half))
    return x, root * v_half


# --- the same steps as torch.optim.Optimizers ---------------------------------------------------

class _FlowOptimizer(torch.optim.Optimizer):
    """A step of a flow on the flattened parameters ``q`` of each group, with state
    ``state["p"]`` (the momentum) where the flow has one.  Parameters without a gradient are
    treated as having a zero gradient."""

    def _vectors(self, group):
        params = group["params"]
        q = parameters_to_vector([p.detach() for p in params])
        g = parameters_to_vector([torch.zeros_like(p) if p.grad is None else p.grad
                                  for p in params])
        return params, q, g

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, q, g = self._vectors(group)
            state = self.state[params[0]]
            q = self._update(group, state, q, g)
            vector_to_parameters(q, params)
        return loss

    def _momentum(self, state, q):
        if "p" not in state:
            state["p"] = torch.zeros_like(q)
        return state["p"]


class GradientDescent(_FlowOptimizer):
    """Explicit Euler on the gradient flow ``q' = -grad f(q)`` with step ``lr``:
    ``torch.optim.SGD(lr=lr)``.  Stable on ``f = q^T Q q / 2`` iff ``lr < 2 / L``,
    ``L = lambda_max(Q)``: ``1 - lr lambda`` must lie in Euler's stability region."""

    def __init__(self, params, lr: float):
        super().__init__(params, dict(lr=positive(lr, "lr")))

    def _update(self, group, state, q, g):
        return gradient_descent_step(q, lambda z: g, group["lr"])


class HeavyBall(_FlowOptimizer):
    """Conformal symplectic Euler (:func:`heavy_ball_step`) with step ``h`` and damping
    ``gamma``: ``torch.optim.SGD(lr=h**2, momentum=exp(-gamma h))``."""

    def __init__(self, params, h: float, gamma: float):
        super().__init__(params, dict(h=positive(h, "h"), gamma=non_negative(gamma, "gamma")))

    def _update(self, group, state, q, g):
        q, state["p"] = heavy_ball_step(q, self._momentum(state, q), lambda z: g, group["h"],
                                        group["gamma"])
        return q


class Nesterov(_FlowOptimizer):
    """:func:`nesterov_step` with step ``h`` and damping ``gamma``; the parameters hold the
    extrapolated point ``y = q + h mu p`` at which the gradient is taken, as in
    ``torch.optim.SGD(lr=h**2, momentum=exp(-gamma h), nesterov=True)``."""

    def __init__(self, params, h: float, gamma: float):
        super().__init__(params, dict(h=positive(h, "h"), gamma=non_negative(gamma, "gamma")))

    def _update(self, group, state, y, g):
        h, mu = group["h"], math.exp(-group["gamma"] * group["h"])
        p = self._momentum(state, y)
        q, state["p"] = nesterov_step(y - h * mu * p, p, lambda z: g, h, group["gamma"])
        return q + h * mu * state["p"]


class HamiltonianDescent(_FlowOptimizer):
    """:func:`hamiltonian_descent_step` with step ``h``, damping ``gamma`` and the kinetic
    energy ``|p|^a / a`` over all parameters of the group (so members of a network are
    coupled through ``|p|``)."""

    def __init__(self, params, h: float, gamma: float, a: float):
        if positive(a, "a") <= 1:
            raise ValueError(f"a must be > 1 (a convex kinetic energy |p|^a / a), got {a!r}")
        super().__init__(params, dict(h=positive(h, "h"), gamma=non_negative(gamma, "gamma"),
                                      a=float(a)))

    def _update(self, group, state, q, g):
        q, state["p"] = hamiltonian_descent_step(q, self._momentum(state, q), lambda z: g,
                                                 group["h"], group["gamma"], group["a"])
        return q


class RelativisticGD(_FlowOptimizer):
    """:func:`relativistic_step` with the published parameters ``lr`` (their ``stepsize``),
    ``mu``, ``delta`` and ``alpha``; the parameters hold ``x_half``, where the gradient is
    taken."""

    def __init__(self, params, lr: float, mu: float, delta: float, alpha: float = 1.0):
        if not 0 < positive(mu, "mu") <= 1:
            raise ValueError(f"mu must lie in (0, 1], got {mu!r}")
        if not 0 <= non_negative(alpha, "alpha") <= 1:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
        super().__init__(params, dict(lr=positive(lr, "lr"), mu=float(mu),
                                      delta=non_negative(delta, "delta"), alpha=float(alpha)))

    def _update(self, group, state, x_half, g):
        mu, delta = group["mu"], group["delta"]
        if "x" not in state:
            state["x"], state["p"] = x_half.clone(), torch.zeros_like(x_half)
        x, v = relativistic_step(state["x"], state["p"], lambda z: g, group["lr"], mu, delta,
                                 group["alpha"])
        state["x"], state["p"] = x, v
        return x + math.sqrt(mu) * v / torch.sqrt(1 + delta * mu * v.dot(v))


# --- optimisation of a function on R^d -----------------------------------------------------------

def step_determinant(step: Callable, q: torch.Tensor, p: torch.Tensor, gradient: Gradient,
                     *args) -> torch.Tensor:
    """``det dPhi/d(q, p)`` of one momentum step ``Phi = step(q, p, gradient, *args)`` at
    ``(q, p)`` (autograd's Jacobian of the whole step).  A conformal symplectic step with
    friction ``gamma`` and step ``h`` has ``mu^d``, ``mu = e^{-gamma h}``, whatever ``f`` is
    (Franca, Sulam, Robinson & Vidal 2020)."""
    d = len(q)

    def phi(state):
        return torch.cat(step(state[:d], state[d:], gradient, *args))

    return torch.linalg.det(torch.func.jacrev(phi)(torch.cat([q, p])))


def minimise(f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor,
             make_optimizer: Callable, iterations: int) -> torch.Tensor:
    """Run ``make_optimizer([x])`` on ``f`` from ``x0`` (gradients by autograd) and return the
    values ``f(x_k)`` at the parameters it holds, ``k = 0..iterations``."""
    if not isinstance(x0, torch.Tensor) or x0.dim() != 1:
        raise ValueError("x0 must be a 1-D tensor")
    positive_int(iterations, "iterations")
    x = x0.detach().clone().requires_grad_(True)
    opt = make_optimizer([x])
    values = torch.empty(iterations + 1, dtype=x0.dtype, device=x0.device)
    for k in range(iterations + 1):
        opt.zero_grad(set_to_none=True)
        value = f(x)
        values[k] = value.detach()
        if k < iterations:
            value.backward()
            opt.step()
    return values


def momentum_iterates(step: Callable, q0: torch.Tensor, gradient: Gradient, steps: int,
                      *args) -> torch.Tensor:
    """``[q_0, ..., q_steps]`` of a momentum method ``step(q, p, gradient, *args)`` (e.g.
    :func:`heavy_ball_step` with ``h, gamma``) from ``q_0`` at rest, ``p_0 = 0``."""
    q, p, qs = q0, torch.zeros_like(q0), [q0]
    for _ in range(steps):
        q, p = step(q, p, gradient, *args)
        qs.append(q)
    return torch.stack(qs)


def nesterov_sbc(gradient: Gradient, x0: torch.Tensor, s: float, steps: int,
                 f: Callable | None = None) -> torch.Tensor:
    """Nesterov's method in the form of Su, Boyd & Candès (JMLR 2016, eq. (3)):

        x_k = y_{k-1} - s grad f(y_{k-1}),   y_k = x_k + (k - 1) / (k + 2) (x_k - x_{k-1}),

    from ``y_0 = x_0``; returns ``[x_0, ..., x_steps]``.  With ``f`` given, the momentum is
    restarted (``k`` set back to 1) whenever ``f(x_k) > f(x_{k-1})`` (the function restart of
    O'Donoghue & Candès 2015)."""
    s = positive(s, "s")
    xs = [x0]
    y, k = x0, 1
    for _ in range(steps):
        x = y - s * gradient(y)
        if f is not None and f(x) > f(xs[-1]):
            k = 1
        y = x + (k - 1) / (k + 2) * (x - xs[-1])
        xs.append(x)
        k += 1
    return torch.stack(xs)


def nesterov_ode(gradient: Gradient, x0: torch.Tensor, T: float, steps: int,
                 t0: float = 1e-6) -> torch.Tensor:
    """The solution of Su, Boyd & Candès's ODE ``x'' + (3/t) x' + grad f(x) = 0``,
    ``x(0) = x0``, ``x'(0) = 0``, at ``t_j = j T / steps`` (``[steps + 1, d]``), by lib's RK4
    on ``(x, v)``.  The start ``t = 0`` is singular: the solve starts at ``t0`` from the
    Taylor values ``x = x0 - t0^2 grad f(x0) / 8``, ``v = -t0 grad f(x0) / 4``, and its
    first step is shortened by ``t0`` so that the grid stays ``j T / steps``."""
    T, t0 = positive(T, "T"), positive(t0, "t0")
    h = T / steps
    if t0 >= h:
        raise ValueError(f"t0 = {t0:g} must be smaller than the step T / steps = {h:g}")
    g0 = gradient(x0)

    def field(t, state):
        x, v = state
        return v, -3.0 / t * v - gradient(x)

    state = (x0 - t0 ** 2 / 8 * g0, -t0 / 4 * g0)
    state = rk_step(field, t0, state, h - t0, "rk4")
    xs = [x0, state[0]]
    for j in range(1, steps):
        state = rk_step(field, j * h, state, h, "rk4")
        xs.append(state[0])
    return torch.stack(xs)


# --- measurements on a network ----------------------------------------------------------------

def sharpness(net, X: torch.Tensor, y: torch.Tensor, loss: str = "cross_entropy",
              iterations: int = 100) -> float:
    """The largest eigenvalue ``L`` of the Hessian of the data loss ``E(theta)`` over all of
    ``net``'s parameters (the *sharpness*), by ``iterations`` steps of power iteration with
    Hessian-vector products (forward over reverse: :func:`torch.func.jvp` of
    :func:`torch.func.grad`).  Near a minimum, gradient descent is explicit Euler on
    ``theta' = -grad E`` linearised to ``delta' = -Hess E delta``, stable iff
    ``lr < 2 / L``.  Power iteration finds the eigenvalue of largest modulus: at a minimum
    that is ``L``."""
    from .losses import LOSSES, check_data

    check_data(net, X, y, "(X, y)", loss)
    names = [name for name, _ in net.named_parameters()]
    theta = parameters_to_vector([p.detach() for p in net.parameters()])
    shapes = [p.shape for p in net.parameters()]

    def E(vector):
        chunks = vector.split([s.numel() for s in shapes])
        params = {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}
        return LOSSES[loss](torch.func.functional_call(net, params, (X,)), y)

    v = torch.ones_like(theta) / math.sqrt(theta.numel())
    value = 0.0
    for _ in range(iterations):
        Hv = torch.func.jvp(torch.func.grad(E), (theta,), (v,))[1]
        value = float(v @ Hv)
        v = Hv / Hv.norm()
    return value


def layer_displacements(net, X: torch.Tensor, y: torch.Tensor, optimizer, lr: float,
                        iterations: int, loss: str = "cross_entropy") -> torch.Tensor:
    """Train a copy of ``net`` with :func:`lib.train` (``optimizer``, ``lr``) and return
    ``|theta^k_end - theta^k_0|`` for each layer ``k`` ``[K]``, over all of the layer's field
    parameters: how far the optimiser moves each layer."""
    import copy

    from .parameter_path import parameter_path
    from .training import train

    net = copy.deepcopy(net)
    before = parameter_path(net)
    train(net, X, y, iterations=iterations, optimizer=optimizer, lr=lr, loss=loss,
          record_every=iterations)
    return (parameter_path(net) - before).norm(dim=-1)


def linear_rate(values: torch.Tensor, first: int, last: int) -> float:
    """The rate ``r`` of the least-squares line ``log f_k = c - r k`` over ``k = first..last``:
    for linear convergence ``f_k ~ C e^{-r k}`` it is the same on every window, for
    sublinear convergence it decays from window to window.  Oscillations about the trend, as
    momentum methods show, average out."""
    if not (isinstance(values, torch.Tensor) and values.dim() == 1 and 0 <= first < last
            < len(values)):
        raise ValueError("values must be a 1-D tensor and 0 <= first < last < len(values)")
    if not bool((values[first:last + 1] > 0).all()):
        raise ValueError("values must be positive on the window (they are fitted on a log scale)")
    k = torch.arange(first, last + 1, dtype=values.dtype, device=values.device)
    logs = values[first:last + 1].log()
    k = k - k.mean()
    return float(-(k * (logs - logs.mean())).sum() / k.square().sum())
