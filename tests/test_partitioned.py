"""Partitioned Runge--Kutta pairs (lib.tableaux) and the one stepper for tensor and tuple states
(lib.integrators).

References used: the separable non-autonomous oscillator z' = a(t) p, p' = -a(t) z, whose
solution is a rotation by tau(t) = int a (closed form), for the measured orders; the published
one-step formulas of symplectic Euler and Störmer--Verlet (Hairer, Lubich & Wanner, eqs.
(I.1.9), (I.1.10), (I.1.17), (I.1.18)) written out by hand; the pair conditions of Hairer,
Lubich & Wanner, Thm. VI.4.6, evaluated independently with exact fractions.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from lib import tableaux
from lib.integrators import Separable, rk_solve, rk_step
from lib.tableaux import (EULER, IMPLICIT_EULER, LOBATTO_IIIA2, LOBATTO_IIIB2, PAIRS, RK4,
                          SLOPE_TIMES, STORMER_VERLET, SYMPLECTIC_EULER, ButcherTableau,
                          PartitionedTableau, get_method)

DT = torch.float64
T = 2.0


def a(t):
    return 1.0 + 0.5 * t


def oscillator():
    """``z' = a(t) p``, ``p' = -a(t) z``: ``H = a(t)(|z|^2 + |p|^2)/2``, separable."""
    return Separable(lambda t, p: a(t) * p, lambda t, z: -a(t) * z)


def exact(t, z0, p0):
    tau = t + 0.25 * t * t
    return (math.cos(tau) * z0 + math.sin(tau) * p0, -math.sin(tau) * z0 + math.cos(tau) * p0)


Z0 = torch.tensor([[1.0, 0.3]], dtype=DT)
P0 = torch.tensor([[0.2, -0.5]], dtype=DT)


def error(K, method, times="argument"):
    z, p = rk_solve(oscillator(), (Z0, P0), T / K, K, method, times=times)
    ze, pe = exact(T, Z0, P0)
    return float(torch.cat([z - ze, p - pe]).norm())


def slope(method, times="argument", steps=(32, 64, 128, 256)):
    errors = [error(K, method, times) for K in steps]
    return np.polyfit(np.log([T / K for K in steps]), np.log(errors), 1)[0]


# --- the pairs as data ----------------------------------------------------------------------

def exact_pair_conditions(pair):
    """The conditions of Thm. VI.4.6 with exact fractions (independent of is_symplectic_pair)."""
    f = lambda v: Fraction(v).limit_denominator(1000)  # noqa: E731
    s = range(pair.stages)
    b, bh = [f(v) for v in pair.z.b], [f(v) for v in pair.p.b]
    A, Ah = [[f(v) for v in r] for r in pair.z.a], [[f(v) for v in r] for r in pair.p.a]
    return (all(b[i] == bh[i] for i in s)
            and all(b[i] * Ah[i][j] + bh[j] * A[j][i] - b[i] * bh[j] == 0 for i in s for j in s))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_the_named_pairs_are_explicit_and_symplectic(name):
    pair = PAIRS[name]
    assert pair.is_explicit and pair.is_symplectic and exact_pair_conditions(pair)
    assert get_method(name) is pair
    assert sorted(pair.schedule) == sorted((part, i) for part in "zp" for i in range(pair.stages))


def test_neither_tableau_of_stormer_verlet_is_explicit_alone():
    """Explicitness is a property of the pair on a separable field, not of each tableau."""
    assert not LOBATTO_IIIA2.is_explicit and not LOBATTO_IIIB2.is_explicit
    assert STORMER_VERLET.is_explicit
    assert STORMER_VERLET.schedule == (("z", 0), ("p", 0), ("p", 1), ("z", 1))


def test_non_symplectic_pairs_are_rejected_by_the_conditions():
    for pair in (PartitionedTableau(EULER, EULER, 1), PartitionedTableau(RK4, RK4, 4),
                 PartitionedTableau(LOBATTO_IIIA2, LOBATTO_IIIA2, 2)):
        assert not pair.is_symplectic and not exact_pair_conditions(pair)


def test_implicit_pairs_are_found_and_refused():
    implicit_midpoint = ButcherTableau(a=[[0.5]], b=[1], c=[0.5], order=2, name="implicit midpoint")
    for pair in (PartitionedTableau(LOBATTO_IIIA2, LOBATTO_IIIA2, 2, "iiia-iiia"),
                 PartitionedTableau(implicit_midpoint, implicit_midpoint, 2, "midpoint"),
                 PartitionedTableau(IMPLICIT_EULER, IMPLICIT_EULER, 1, "implicit euler")):
        assert not pair.is_explicit
        with pytest.raises(ValueError, match="implicit on a separable field.*use an explicit pair"):
            pair.schedule
        with pytest.raises(ValueError, match="implicit"):
            rk_step(Separable(lambda t, p: p, lambda t, z: -z), 0.0, (Z0, P0), 0.1, pair)
    # the midpoint pair is symplectic, but no order of its stages is explicit
    assert PartitionedTableau(implicit_midpoint, implicit_midpoint, 2).is_symplectic


def test_impossible_pairs_are_refused_when_built():
    with pytest.raises(TypeError, match="z must be a ButcherTableau"):
        PartitionedTableau("euler", EULER, 1)
    with pytest.raises(ValueError, match="same number of stages"):
        PartitionedTableau(EULER, LOBATTO_IIIB2, 1)
    with pytest.raises(ValueError, match="order must be a positive integer"):
        PartitionedTableau(EULER, IMPLICIT_EULER, 0)
    with pytest.raises(ValueError, match="unknown method 'leapfrog'.*stormer_verlet"):
        get_method("leapfrog")
    with pytest.raises(TypeError, match="method must be"):
        get_method(3)
    with pytest.raises(ValueError, match="times must be one of"):
        STORMER_VERLET.slope_times("midpoint")


def test_adjoint_pairs():
    """Störmer--Verlet is symmetric; the two symplectic Euler orderings are adjoint."""
    assert tableaux.STORMER_VERLET_PZP.adjoint is tableaux.STORMER_VERLET_PZP
    assert tableaux.STORMER_VERLET_ZPZ.adjoint is tableaux.STORMER_VERLET_ZPZ
    assert tableaux.SYMPLECTIC_EULER_PZ.adjoint is tableaux.SYMPLECTIC_EULER_ZP
    assert tableaux.SYMPLECTIC_EULER_ZP.adjoint is tableaux.SYMPLECTIC_EULER_PZ
    custom = PartitionedTableau(EULER, IMPLICIT_EULER, 1, "custom")
    assert custom.adjoint.adjoint.z.a == custom.z.a


# --- the stepper ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("times", SLOPE_TIMES)
def test_measured_order_of_each_pair_and_time_convention(name, times):
    """Order 1 for symplectic Euler, 2 for Störmer--Verlet, whichever stage times are used."""
    pair = PAIRS[name]
    assert abs(slope(pair, times) - pair.order) < 0.15


def test_frozen_time_lowers_stormer_verlet_to_order_one():
    """A wrong treatment of time is caught by the oscillator (the test can fail)."""
    frozen = [Separable(lambda t, p, s=k * T / 64: a(s) * p, lambda t, z, s=k * T / 64: -a(s) * z)
              for k in range(64)]   # one field per step, its time frozen at the step's start
    errors = [float(torch.cat([u - v for u, v in zip(
        rk_solve(frozen, (Z0, P0), T / 64, 64, STORMER_VERLET), exact(T, Z0, P0))]).norm())]
    assert errors[0] > 10 * error(64, STORMER_VERLET)


def test_one_steps_are_the_published_formulas():
    """With the default stage times each slope is taken at the time of the state it reads."""
    g = torch.Generator().manual_seed(1)
    z, p = torch.randn(5, 3, generator=g, dtype=DT), torch.randn(5, 3, generator=g, dtype=DT)
    M = torch.randn(3, 3, generator=g, dtype=DT)
    F = lambda t, q: torch.tanh(q @ M) * (1 + t)  # noqa: E731
    G = lambda t, q: -torch.sin(q) * (2 - t)  # noqa: E731
    f, t, h = Separable(F, G), 0.3, 0.1
    p1 = p + h * G(t, z)
    assert torch.allclose(torch.stack(rk_step(f, t, (z, p), h, "symplectic_euler_pz")),
                          torch.stack((z + h * F(t + h, p1), p1)), rtol=0, atol=1e-15)
    z1 = z + h * F(t, p)
    assert torch.allclose(torch.stack(rk_step(f, t, (z, p), h, "symplectic_euler_zp")),
                          torch.stack((z1, p + h * G(t + h, z1))), rtol=0, atol=1e-15)
    ph = p + h / 2 * G(t, z)
    z1 = z + h * F(t + h / 2, ph)
    assert torch.allclose(torch.stack(rk_step(f, t, (z, p), h, "stormer_verlet_pzp")),
                          torch.stack((z1, ph + h / 2 * G(t + h, z1))), rtol=0, atol=1e-15)
    zh = z + h / 2 * F(t, p)
    p1 = p + h * G(t + h / 2, zh)
    assert torch.allclose(torch.stack(rk_step(f, t, (z, p), h, "stormer_verlet_zpz")),
                          torch.stack((zh + h / 2 * F(t + h, p1), p1)), rtol=0, atol=1e-15)


def test_equal_stages_are_computed_once():
    calls = {"dz": 0, "dp": 0}

    def count(name, fn):
        def wrapped(t, x):
            calls[name] += 1
            return fn(t, x)
        return wrapped

    f = Separable(count("dz", lambda t, p: p), count("dp", lambda t, z: -z))
    rk_step(f, 0.0, (Z0, P0), 0.1, STORMER_VERLET)
    assert calls == {"dz": 1, "dp": 2}
    rk_step(f, 0.0, (Z0, P0), 0.1, STORMER_VERLET, times="z")  # the two drifts differ in time
    assert calls == {"dz": 3, "dp": 4}


def test_runge_kutta_on_a_tuple_state_matches_the_joined_tensor_state():
    g = torch.Generator().manual_seed(2)
    z, p = torch.randn(4, 2, generator=g, dtype=DT), torch.randn(4, 2, generator=g, dtype=DT)
    f = Separable(lambda t, q: torch.tanh(q) * (1 + t), lambda t, q: -q ** 3)
    joined = lambda t, y: torch.cat(f(t, (y[:, :2], y[:, 2:])), 1)  # noqa: E731
    Z, P = rk_solve(f, (z, p), 0.05, 20, "rk4", trajectory=True)
    Y = rk_solve(joined, torch.cat([z, p], 1), 0.05, 20, "rk4", trajectory=True)
    assert Z.shape == P.shape == (21, 4, 2)
    assert torch.equal(torch.cat([Z, P], -1), Y)
    assert abs(slope(RK4) - 4) < 0.2


def test_tuple_trajectories_are_stacked_per_component():
    Z, P = rk_solve(oscillator(), (Z0, P0), 0.1, 7, SYMPLECTIC_EULER, trajectory=True)
    assert Z.shape == P.shape == (8, *Z0.shape)
    assert torch.equal(Z[0], Z0) and torch.equal(P[0], P0)
    last = rk_solve(oscillator(), (Z0, P0), 0.1, 7, SYMPLECTIC_EULER)
    assert torch.equal(Z[-1], last[0]) and torch.equal(P[-1], last[1])


def test_bad_input_to_the_stepper_is_refused():
    f = Separable(lambda t, p: p, lambda t, z: -z)
    with pytest.raises(TypeError, match="separable field.*Separable"):
        rk_step(lambda t, y: y, 0.0, (Z0, P0), 0.1, STORMER_VERLET)
    with pytest.raises(ValueError, match=r"state \(z, p\) of two tensors of one shape"):
        rk_step(f, 0.0, (Z0, P0[:, :1]), 0.1, STORMER_VERLET)
    with pytest.raises(ValueError, match=r"state \(z, p\)"):
        rk_step(f, 0.0, (Z0, P0, Z0), 0.1, STORMER_VERLET)
    with pytest.raises(TypeError, match="state must be a torch.Tensor or a tuple"):
        rk_step(f, 0.0, torch.cat([Z0, P0]), 0.1, STORMER_VERLET)
    with pytest.raises(TypeError, match="z0 must be"):
        rk_solve(lambda t, z: z, [Z0, P0], 0.1, 3, "rk4")
    with pytest.raises(TypeError, match="tuple of tensors"):
        rk_solve(lambda t, z: z, (Z0, 1.0), 0.1, 3, "rk4")
    with pytest.raises(ValueError, match="times must be one of"):
        rk_solve(Separable(lambda t, p: p, lambda t, z: -z), (Z0, P0), 0.1, 3,
                 STORMER_VERLET, times="frozen")
