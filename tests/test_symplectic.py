"""Symplectic partners and the symplecticity checks of lib.tableaux.

References used: the conservation of the bilinear invariant p.z by a symplectic partitioned pair
applied to z' = Mz, p' = -M^T p (solved here with dense linear algebra, independently of the
library), the published symplectic methods (implicit midpoint, 2-stage Gauss), and the observed
order of convergence on y' = -y^2, y(0) = 1, whose solution is 1 / (1 + t).
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.tableaux import (METHODS, MIDPOINT, ButcherTableau, is_symplectic, is_symplectic_pair,
                          symplectic_partner)

WITH_PARTNER = [t for t in METHODS.values() if all(b != 0 for b in t.b)]
S3 = math.sqrt(3)
GAUSS2 = ButcherTableau(a=[[1 / 4, 1 / 4 - S3 / 6], [1 / 4 + S3 / 6, 1 / 4]], b=[1 / 2, 1 / 2],
                        c=[1 / 2 - S3 / 6, 1 / 2 + S3 / 6], order=4, name="gauss2")
IMPLICIT_MIDPOINT = ButcherTableau(a=[[1 / 2]], b=[1], c=[1 / 2], order=2, name="implicit_midpoint")


@st.composite
def explicit_tableaux(draw):
    """Random explicit tableaux with all weights non-zero."""
    s = draw(st.integers(1, 4))
    entry = st.floats(-1, 1, allow_nan=False)
    a = [[draw(entry) for _ in range(i)] for i in range(s)]
    w = [draw(st.floats(0.1, 1)) for _ in range(s)]
    b = [v / sum(w) for v in w]
    c = [sum(row) for row in a]
    return ButcherTableau(a=a, b=b, c=c, order=1, name="random")


def bilinear_drift(t: ButcherTableau, s: ButcherTableau, seed: int) -> float:
    """|p1.z1 - p0.z0| after one step of the pair (t for z' = Mz, s for p' = -M^T p), stages
    solved exactly as linear systems; zero iff the pair conserves the quadratic invariant."""
    g = torch.Generator().manual_seed(seed)
    d, h = 3, 0.3
    M = torch.randn(d, d, generator=g, dtype=torch.float64)
    z0, p0 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)

    def step(tab, L, y0):  # one RK step for y' = L y
        A = torch.tensor(tab.a, dtype=torch.float64)
        n = tab.stages
        Y = torch.linalg.solve(torch.eye(n * d, dtype=torch.float64) - h * torch.kron(A, L.contiguous()),
                               y0.repeat(n)).reshape(n, d)
        return y0 + h * sum(bi * (L @ Y[i]) for i, bi in enumerate(tab.b))

    z1, p1 = step(t, M, z0), step(s, -M.T, p0)
    return abs(float(p1 @ z1 - p0 @ z0))


def observed_order(t: ButcherTableau) -> float:
    """The order of t on y' = -y^2 (stages by fixed-point iteration; exact y = 1/(1+t))."""
    errors = []
    for K in (20, 40):
        h, y = 1.0 / K, 1.0
        for _ in range(K):
            Y = [y] * t.stages
            for _ in range(60):
                Y = [y + h * sum(t.a[i][j] * -Y[j] ** 2 for j in range(t.stages))
                     for i in range(t.stages)]
            y = y + h * sum(t.b[i] * -Y[i] ** 2 for i in range(t.stages))
        errors.append(abs(y - 0.5))
    return math.log2(errors[0] / errors[1])


@pytest.mark.parametrize("t", WITH_PARTNER, ids=lambda t: t.name)
def test_named_method_and_partner_form_a_symplectic_pair(t):
    partner = symplectic_partner(t)
    assert is_symplectic_pair(t, partner)
    assert bilinear_drift(t, partner, seed=0) < 1e-13
    assert not is_symplectic_pair(t, t)
    assert bilinear_drift(t, t, seed=0) > 1e-6


@settings(max_examples=25, deadline=None, derandomize=True)
@given(explicit_tableaux(), st.integers(0, 100))
def test_random_explicit_tableau_and_partner_conserve_pz(t, seed):
    partner = symplectic_partner(t)
    assert partner.b == t.b
    assert is_symplectic_pair(t, partner)
    assert bilinear_drift(t, partner, seed) < 1e-11 * (1 + max(abs(v) for r in partner.a for v in r))


def test_partner_of_euler_is_implicit_euler_and_of_heun_is_known():
    euler = symplectic_partner(METHODS["euler"])
    assert euler.a == ((1.0,),) and euler.b == (1.0,) and euler.c == (1.0,)
    assert not euler.is_explicit
    heun = symplectic_partner(METHODS["heun"])
    assert heun.a == ((0.5, -0.5), (0.5, 0.5)) and heun.c == (0.0, 1.0)


def test_midpoint_has_no_partner():
    with pytest.raises(ValueError, match=r"b_1 = 0.*divides by zero"):
        symplectic_partner(MIDPOINT)


def test_partner_rejects_non_tableaux():
    with pytest.raises(TypeError, match="t must be a ButcherTableau"):
        symplectic_partner("rk4")


@pytest.mark.parametrize("t", [IMPLICIT_MIDPOINT, GAUSS2], ids=lambda t: t.name)
def test_published_symplectic_methods(t):
    assert is_symplectic(t)
    partner = symplectic_partner(t)
    assert [v for r in partner.a for v in r] == pytest.approx([v for r in t.a for v in r], abs=1e-15)
    assert bilinear_drift(t, t, seed=1) < 1e-13


@pytest.mark.parametrize("t", list(METHODS.values()), ids=lambda t: t.name)
def test_no_explicit_method_is_symplectic(t):
    assert not is_symplectic(t)


def test_pairs_of_different_sizes_are_not_symplectic():
    assert not is_symplectic_pair(METHODS["euler"], METHODS["rk4"])


# The 3-stage third-order method with c = (0, 0.3, 0.8): its partner has nodes != c and is only
# of order 2 on its own (the pair still has order 3 for the adjoint system).
U, V = 0.3, 0.8
B2, B3 = (2 - 3 * V) / (6 * U * (U - V)), (2 - 3 * U) / (6 * V * (V - U))
KUTTA_UV = ButcherTableau(a=[[0], [U], [V - 1 / (6 * B3 * U), 1 / (6 * B3 * U)]],
                          b=[1 - B2 - B3, B2, B3], c=[0, U, V], order=3, name="kutta_uv")


@pytest.mark.parametrize("t", WITH_PARTNER + [KUTTA_UV], ids=lambda t: t.name)
def test_partner_order_is_its_observed_order(t):
    partner = symplectic_partner(t)
    assert abs(observed_order(partner) - partner.order) < 0.2
    assert partner.order == (2 if t is KUTTA_UV else t.order)
