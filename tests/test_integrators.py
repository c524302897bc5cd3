"""The explicit Runge--Kutta solver: its measured order, equality with torchdiffeq's fixed-grid
solvers (an independent implementation) for the same tableau, one field f(t, z) or a list of
per-step fields, tuple states, and the separable fields Separable(F(t, p), G(t, z)) that a
partitioned pair steps."""
import math

import numpy as np
import pytest
import torch
from torchdiffeq import odeint
from torchdiffeq._impl.misc import Perturb, _PerturbFunc
from torchdiffeq._impl.rk_common import _ButcherTableau, _runge_kutta_step

from lib import tableaux
from lib.integrators import Separable, rk_solve, rk_step
from lib.tableaux import METHODS, PAIRS, ButcherTableau

DT = torch.float64
T = 2.0


def non_autonomous(t, z):
    """``z_1' = cos(t) z_1``, ``z_2' = -2 t z_2``: solution ``(z_1(0) e^{sin t}, z_2(0) e^{-t^2})``.
    The field depends on ``t``, so a wrong node ``c_i`` lowers the order."""
    t = torch.as_tensor(t, dtype=z.dtype)
    return torch.stack([torch.cos(t) * z[..., 0], -2 * t * z[..., 1]], -1)


def exact(t, z0):
    return torch.stack([z0[..., 0] * math.exp(math.sin(t)), z0[..., 1] * math.exp(-t * t)], -1)


Z0 = torch.tensor([1.0, 0.5], dtype=DT)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_measured_convergence_order_matches_the_tableau(name):
    """The error at T falls like h^order on a non-autonomous ODE."""
    tableau = METHODS[name]
    steps = [32, 64, 128, 256]
    errors = [(rk_solve(non_autonomous, Z0, T / K, K, tableau)
               - exact(T, Z0)).norm().item() for K in steps]
    slope = np.polyfit(np.log([T / K for K in steps]), np.log(errors), 1)[0]
    assert abs(slope - tableau.order) < 0.15, f"{name}: measured order {slope:.3f}"


def test_one_step_of_each_method_has_the_local_error_of_its_order():
    """For ``z' = z`` one step is the Taylor polynomial of ``e^h`` of degree ``order``."""
    h = 0.1
    for tableau in METHODS.values():
        z1 = rk_step(lambda t, z: z, 0.0, torch.ones(1, dtype=DT), h, tableau)
        taylor = sum(h ** j / math.factorial(j) for j in range(tableau.order + 1))
        assert abs(z1.item() - taylor) < 1e-15, tableau.name


# --- torchdiffeq as the reference -------------------------------------------------------------

def torchdiffeq_tableau(tableau: ButcherTableau) -> _ButcherTableau:
    """The same method in torchdiffeq's own format (nodes and rows of stages 2..s, weights)."""
    s = tableau.stages
    return _ButcherTableau(
        alpha=torch.tensor(tableau.c[1:], dtype=DT),
        beta=[torch.tensor(tableau.a[i][:i], dtype=DT) for i in range(1, s)],
        c_sol=torch.tensor(tableau.b, dtype=DT),
        c_error=torch.zeros(s, dtype=DT))


def torchdiffeq_generic_solve(func, z0, grid, tableau: ButcherTableau) -> torch.Tensor:
    """Fixed-grid solve with torchdiffeq's generic step ``_runge_kutta_step``, time perturbed
    at the step ends exactly as its fixed-grid solvers do with ``perturb=True``."""
    func = _PerturbFunc(func)
    tab = torchdiffeq_tableau(tableau)
    states = [z0]
    for t0, t1 in zip(grid[:-1], grid[1:]):
        f0 = func(t0, states[-1], perturb=Perturb.NEXT)
        z1, *_ = _runge_kutta_step(func, states[-1], f0, t0, t1 - t0, t1, tab)
        states.append(z1)
    return torch.stack(states)


ODEINT_NAMES = {"euler": tableaux.EULER, "midpoint": tableaux.MIDPOINT, "rk4": tableaux.RK38}


def grid(K):
    return torch.linspace(0.0, T, K + 1, dtype=DT)


@pytest.mark.parametrize("method", sorted(ODEINT_NAMES))
def test_equals_torchdiffeq_odeint_on_a_non_autonomous_ode(method):
    """The trajectory equals torchdiffeq's odeint with the same method to 1e-12."""
    K = 20
    z0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=DT)
    ours = rk_solve(non_autonomous, z0, T / K, K, ODEINT_NAMES[method],
                    trajectory=True)
    theirs = odeint(non_autonomous, z0, grid(K), method=method)
    assert ours.shape == theirs.shape == (K + 1, 2, 2)
    assert (ours - theirs).abs().max() < 1e-12


@pytest.mark.parametrize("name", ["heun", "kutta3", "rk4", "rk38", "midpoint", "euler"])
def test_equals_torchdiffeq_generic_runge_kutta_step(name):
    """The trajectory equals torchdiffeq's generic step with the same tableau to 1e-12."""
    K = 20
    ours = rk_solve(non_autonomous, Z0, T / K, K, METHODS[name],
                    trajectory=True)
    theirs = torchdiffeq_generic_solve(non_autonomous, Z0, grid(K), METHODS[name])
    assert (ours - theirs).abs().max() < 1e-12


def test_torchdiffeq_rk4_is_the_three_eighths_rule_not_the_classic_method():
    """The reference itself: torchdiffeq's ``rk4`` differs from classic RK4 beyond round-off."""
    K = 20
    theirs = odeint(non_autonomous, Z0, grid(K), method="rk4")[-1]
    classic = rk_solve(non_autonomous, Z0, T / K, K, tableaux.RK4)
    assert (theirs - classic).abs().max() > 1e-9


class PiecewiseConstantField:
    """A network-like field ``tanh(A^k z + b^k) + 0.1 cos(t)`` whose parameters are constant on
    each step ``[t_k, t_{k+1})``; torchdiffeq sees it as a function of ``t`` (perturbed inside
    the step at its ends), ``lib`` as the list of per-step fields ``f_k(t, z)``."""

    def __init__(self, grid, width, seed=0):
        g = torch.Generator().manual_seed(seed)
        K = len(grid) - 1
        self.grid = grid
        self.A = torch.randn(K, width, width, generator=g, dtype=DT)
        self.b = torch.randn(K, width, generator=g, dtype=DT)

    def layer(self, k, t, z):
        t = torch.as_tensor(t, dtype=z.dtype)
        return torch.tanh(z @ self.A[k].T + self.b[k]) + 0.1 * torch.cos(t)

    def of_time(self, t, z):
        k = int(torch.searchsorted(self.grid, t.reshape(1), right=True)) - 1
        return self.layer(min(max(k, 0), len(self.grid) - 2), t, z)

    def fields(self):
        """The per-step fields f_k(t, z), one per step."""
        return [lambda t, z, k=k: self.layer(k, t, z) for k in range(len(self.grid) - 1)]


@pytest.mark.parametrize("method", sorted(ODEINT_NAMES))
def test_per_step_parameters_equal_torchdiffeq_odeint_with_a_piecewise_constant_field(method):
    """A list of per-step fields equals odeint of the piecewise-constant field of t."""
    K = 12
    field = PiecewiseConstantField(grid(K), width=3)
    z0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=DT)
    ours = rk_solve(field.fields(), z0, T / K, K, ODEINT_NAMES[method], trajectory=True)
    theirs = odeint(field.of_time, z0, grid(K), method=method, options={"perturb": True})
    assert (ours - theirs).abs().max() < 1e-12
    # the parameters really change from step to step: a single layer's field gives another answer
    frozen = rk_solve(field.fields()[0], z0, T / K, K, ODEINT_NAMES[method])
    assert (frozen - ours[-1]).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["heun", "kutta3", "rk4"])
def test_per_step_parameters_equal_torchdiffeq_generic_step(name):
    """A list of per-step fields equals torchdiffeq's generic step on the field of t."""
    K = 12
    field = PiecewiseConstantField(grid(K), width=3, seed=2)
    z0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(3), dtype=DT)
    ours = rk_solve(field.fields(), z0, T / K, K, METHODS[name], trajectory=True)
    theirs = torchdiffeq_generic_solve(field.of_time, z0, grid(K), METHODS[name])
    assert (ours - theirs).abs().max() < 1e-12


def test_h_one_euler_is_the_residual_update():
    """h = 1 Euler with per-step fields is z + f_k(k, z), exactly."""
    field = PiecewiseConstantField(grid(4), width=3, seed=4)
    z = torch.randn(5, 3, dtype=DT, generator=torch.Generator().manual_seed(5))
    out = rk_solve(field.fields(), z, 1.0, 4, "euler")
    for k in range(4):
        z = z + field.layer(k, float(k), z)
    assert torch.equal(out, z)


# --- shapes and bad input ---------------------------------------------------------------------

def test_trajectory_shape_and_first_entry():
    """trajectory=True stacks [z^0..z^K], z^0 first and z^K the plain solve's result."""
    z0 = torch.randn(7, 3, dtype=DT, generator=torch.Generator().manual_seed(0))
    traj = rk_solve(lambda t, z: -z, z0, 0.1, 5, "rk4", trajectory=True)
    assert traj.shape == (6, 7, 3)
    assert torch.equal(traj[0], z0)
    assert torch.equal(traj[-1], rk_solve(lambda t, z: -z, z0, 0.1, 5, "rk4"))
    assert traj.dtype == DT


def test_solve_follows_the_dtype_and_does_not_modify_z0():
    """The result has z0's dtype and z0 is left unchanged."""
    z0 = torch.ones(4, 2, dtype=torch.float32)
    copy = z0.clone()
    out = rk_solve(lambda t, z: -z, z0, 0.1, 3, "kutta3")
    assert out.dtype == torch.float32
    assert torch.equal(z0, copy)


def test_implicit_tableau_is_refused():
    """An implicit tableau is refused by the solve and by the step."""
    implicit_midpoint = ButcherTableau(a=[[0.5]], b=[1], c=[0.5], order=2, name="implicit midpoint")
    with pytest.raises(ValueError, match="implicit"):
        rk_solve(lambda t, z: -z, Z0, 0.1, 3, implicit_midpoint)
    with pytest.raises(ValueError, match="implicit"):
        rk_step(lambda t, z: -z, 0.0, Z0, 0.1, implicit_midpoint)


@pytest.mark.parametrize("steps", [0, -1, 1.5, True, "3"])
def test_bad_steps_are_refused(steps):
    """steps must be a positive integer."""
    with pytest.raises(ValueError, match="steps"):
        rk_solve(lambda t, z: -z, Z0, 0.1, steps, "euler")


@pytest.mark.parametrize("h, error", [(0, ValueError), (0.0, ValueError), (math.nan, ValueError),
                                      (math.inf, ValueError), (torch.tensor(0.1), TypeError),
                                      ("0.1", TypeError)])
def test_bad_step_size_is_refused(h, error):
    """h must be a finite non-zero Python number."""
    with pytest.raises(error, match="h must"):
        rk_solve(lambda t, z: -z, Z0, h, 3, "euler")
    with pytest.raises(error, match="h must"):
        rk_step(lambda t, z: -z, 0.0, Z0, h, "euler")


def test_bad_z0_and_method_are_refused():
    """A non-tensor z0 and an unknown method are refused."""
    with pytest.raises(TypeError, match="z0"):
        rk_solve(lambda t, z: -z, [1.0, 2.0], 0.1, 3, "euler")
    with pytest.raises(ValueError, match="unknown method"):
        rk_solve(lambda t, z: -z, Z0, 0.1, 3, "rk5")


# --- one field or one per step; tuple states; separable fields and pairs ----------------------

def test_a_list_of_fields_must_have_one_per_step():
    """rk_solve takes one field or a list of exactly `steps` fields (a tuple is not a list of
    fields: a field may itself be a tuple, as Separable is)."""
    fields = [lambda t, z, c=c: -c * z for c in (1.0, 2.0, 3.0)]
    out = rk_solve(fields, Z0, 0.1, 3, "euler")
    torch.testing.assert_close(out, Z0 * (1 - 0.1) * (1 - 0.2) * (1 - 0.3), rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="list of steps = 4 fields, got 3"):
        rk_solve(fields, Z0, 0.1, 4, "euler")
    with pytest.raises(TypeError):
        rk_solve(tuple(fields), Z0, 0.1, 3, "euler")


def harmonic(t, state):
    """u' = v, v' = -u (1 + t) on a tuple state."""
    u, v = state
    return v, -u * (1 + t)


def test_a_tuple_state_is_stepped_like_the_joined_tensor():
    """A Runge--Kutta solve on a tuple state equals the solve of the joined tensor state."""
    u0, v0 = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(6), dtype=DT)

    def joined(t, y):
        return torch.cat(harmonic(t, (y[..., :3], y[..., 3:])), -1)

    U, V = rk_solve(harmonic, (u0, v0), 0.05, 20, "rk4", trajectory=True)
    Y = rk_solve(joined, torch.cat([u0, v0], -1), 0.05, 20, "rk4", trajectory=True)
    assert U.shape == V.shape == (21, 5, 3)
    torch.testing.assert_close(torch.cat([U, V], -1), Y, rtol=0, atol=1e-15)
    with pytest.raises(TypeError, match="z0 must be a torch.Tensor or a tuple of tensors"):
        rk_solve(harmonic, [u0, v0], 0.05, 2, "rk4")


def separable():
    """z' = F(t, p) = tanh(p), p' = G(t, z) = -sin(z): autonomous, nonlinear."""
    return Separable(lambda t, p: torch.tanh(p), lambda t, z: -torch.sin(z))


def test_separable_is_the_whole_field_on_the_pair():
    """Separable(F, G)(t, (z, p)) = (F(t, p), G(t, z)); a single Separable is one field, not a
    sequence of two, and a Runge--Kutta tableau steps it as a tuple state."""
    f = separable()
    z, p = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(7), dtype=DT)
    dz, dp = f(0.3, (z, p))
    assert torch.equal(dz, torch.tanh(p)) and torch.equal(dp, -torch.sin(z))
    Z, P = rk_solve(f, (z, p), 0.1, 5, "rk4")
    Zj, Pj = rk_solve(lambda t, s: f(t, s), (z, p), 0.1, 5, "rk4")
    assert torch.equal(Z, Zj) and torch.equal(P, Pj)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_pairs_are_the_hand_written_partitioned_steps(name):
    """One step of each pair is its formula (Hairer, Lubich & Wanner I.1.9, I.1.10, I.1.17,
    I.1.18) for z' = F(p), p' = G(z); a list of per-step Separables is accepted too."""
    f = separable()
    F, G = (lambda p: f.dz(0.0, p)), (lambda z: f.dp(0.0, z))
    z, p = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(8), dtype=DT)
    h = 0.3
    if name == "symplectic_euler_pz":
        p1 = p + h * G(z)
        z1 = z + h * F(p1)
    elif name == "symplectic_euler_zp":
        z1 = z + h * F(p)
        p1 = p + h * G(z1)
    elif name == "stormer_verlet_pzp":
        half = p + h / 2 * G(z)
        z1 = z + h * F(half)
        p1 = half + h / 2 * G(z1)
    else:
        half = z + h / 2 * F(p)
        p1 = p + h * G(half)
        z1 = half + h / 2 * F(p1)
    ours = rk_step(f, 0.0, (z, p), h, PAIRS[name])
    torch.testing.assert_close(ours[0], z1, rtol=0, atol=1e-15)
    torch.testing.assert_close(ours[1], p1, rtol=0, atol=1e-15)
    solved = rk_solve([f, f, f], (z, p), h, 3, PAIRS[name])
    again = rk_solve(f, (z, p), h, 3, PAIRS[name])
    assert all(torch.equal(a, b) for a, b in zip(solved, again))


def test_a_pair_needs_a_separable_field_and_a_pair_state():
    """A pair refuses a plain field (TypeError naming Separable) and a state that is not (z, p)."""
    z = torch.zeros(3, 2, dtype=DT)
    with pytest.raises(TypeError, match="partitioned pair.*Separable"):
        rk_step(lambda t, s: s, 0.0, (z, z), 0.1, "stormer_verlet")
    with pytest.raises(TypeError, match="partitioned pair.*Separable"):
        rk_solve(lambda t, s: s, (z, z), 0.1, 2, "symplectic_euler")
    with pytest.raises(ValueError, match="steps a state \\(z, p\\) of two tensors"):
        rk_step(separable(), 0.0, (z, z, z), 0.1, "stormer_verlet")
    with pytest.raises(TypeError, match="tuple of tensors"):
        rk_step(separable(), 0.0, z, 0.1, "stormer_verlet")
