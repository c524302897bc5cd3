"""Tests for lib.stability and the stable vector fields of lib.fields: Jacobians against
torch.autograd, spectral abscissa and logarithmic norm against 2x2 closed forms, the
gradient-flow theorem on random instances, the growth of perturbations against matrix
exponentials and the bound e^(nu t), and the structure of the restricted fields."""
import math

import pytest
import torch

from lib import stability as st
from lib.fields import (FIELDS, AntisymmetricField, GradientField, NegativeDefiniteField,
                        ResNetField)
from lib.models import ODENet
from lib.train import train

F64 = torch.float64
ACTIVATIONS = ("tanh", "relu", "identity")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make_field(cls, width, layers, activation, seed=0, **kwargs):
    return cls(width, layers, activation, generator=gen(seed), **kwargs).to(F64)


# --- Jacobians -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_jacobians_agree_with_autograd(name, activation):
    field = make_field(FIELDS[name], 3, 2, activation, seed=1)
    theta = field.thetas()[1]
    z = torch.randn(5, 3, generator=gen(2), dtype=F64)
    J = st.jacobians(field, theta, z)
    reference = torch.stack([torch.autograd.functional.jacobian(lambda v: field(v[None], theta)[0], zi)
                             for zi in z])
    assert J.shape == (5, 3, 3)
    assert not J.requires_grad
    torch.testing.assert_close(J, reference, rtol=0, atol=1e-13)


def test_jacobian_of_relu_gradient_field_is_closed_form():
    field = make_field(GradientField, 4, 1, "relu", seed=3)
    A, b = field.thetas()[0]
    z = torch.randn(50, 4, generator=gen(4), dtype=F64)
    D = (z @ A.T + b > 0).to(F64)
    expected = -(A.T[None] * D[:, None, :]) @ A  # -A^T diag(sigma') A
    torch.testing.assert_close(st.jacobians(field, (A, b), z), expected.detach(), rtol=0, atol=1e-14)


# --- spectral abscissa and logarithmic norm ----------------------------------------------------

def test_spectral_abscissa_and_log_norm_match_2x2_closed_forms():
    M = 3 * torch.randn(500, 2, 2, generator=gen(5), dtype=F64)
    a, b, c, d = M[:, 0, 0], M[:, 0, 1], M[:, 1, 0], M[:, 1, 1]
    disc = ((a - d) / 2).square() + b * c
    alpha = (a + d) / 2 + torch.sqrt(disc.clamp(min=0))  # Re sqrt of a negative number is 0
    mu = (a + d) / 2 + torch.sqrt(((a - d) / 2).square() + ((b + c) / 2).square())
    torch.testing.assert_close(st.spectral_abscissa(M), alpha, rtol=0, atol=1e-12)
    torch.testing.assert_close(st.log_norm(M), mu, rtol=0, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 6])
def test_log_norm_bounds_spectral_abscissa(d):
    g = gen(d)
    # random, strongly non-normal (upper-triangular part scaled up) and normal matrices
    M = torch.randn(400, d, d, generator=g, dtype=F64)
    M[:200] += 10 * torch.randn(200, d, d, generator=g, dtype=F64).triu(1)
    M[300:] = M[300:] - M[300:].mT
    alpha, mu = st.spectral_abscissa(M), st.log_norm(M)
    assert bool((mu >= alpha - 1e-10).all())
    assert float((mu - alpha).max()) > 1.0  # non-normal matrices do separate them
    torch.testing.assert_close(mu[300:], alpha[300:], rtol=0, atol=1e-10)  # skew: both 0


def test_log_norm_bounds_spectral_abscissa_on_field_jacobians():
    for name in sorted(FIELDS):
        field = make_field(FIELDS[name], 4, 1, "tanh", seed=6)
        J = st.jacobians(field, field.thetas()[0], torch.randn(100, 4, generator=gen(7), dtype=F64))
        assert bool((st.log_norm(J) >= st.spectral_abscissa(J) - 1e-12).all()), name


# --- one-sided Lipschitz estimates -------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_flow_theorem_on_200_random_instances(activation):
    """-mu_*^2 <= nu <= 0 for f = -A^T sigma(A z + b), 0 <= sigma' <= 1; identity attains -mu_*^2."""
    g = gen(8)
    field = make_field(GradientField, 4, 200, activation, seed=9)
    with torch.no_grad():  # spread the biases beyond the initialisation
        field.b.copy_(torch.randn(200, 4, generator=g, dtype=F64))
    states = 1.5 * torch.randn(64, 4, generator=g, dtype=F64)
    nu = st.layer_curves(field, states, pairs=64, generator=g).log_norm
    lower, upper = st.gradient_flow_bounds(field.A.detach())
    # independent reference for mu_*^2: the smallest eigenvalue of A^T A
    A = field.A.detach()
    torch.testing.assert_close(-lower, torch.linalg.eigvalsh(A.mT @ A)[:, 0], rtol=1e-10, atol=1e-12)
    assert nu.shape == lower.shape == upper.shape == (200,)
    assert bool((nu >= lower - 1e-12).all())
    assert bool((nu <= upper + 1e-12).all())
    if activation == "identity":
        assert float((nu - lower).abs().max()) <= 1e-10
    else:
        assert float((nu - lower).max()) > 1e-3  # saturation lifts nu above -mu_*^2


def test_gradient_flow_bounds_shapes_and_wide_matrices():
    A = torch.randn(3, 5, 4, generator=gen(10), dtype=F64)
    lower, upper = st.gradient_flow_bounds(A)
    assert lower.shape == upper.shape == (3,)
    torch.testing.assert_close(lower, -torch.linalg.svdvals(A)[:, -1].square())
    wide_lower, _ = st.gradient_flow_bounds(torch.randn(2, 3, dtype=F64))  # A^T A is singular
    assert float(wide_lower) == 0.0


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_pairs_never_exceed_log_norm_for_linear_fields(name):
    """With sigma the identity J is constant, and every pair quotient <J u, u> <= mu_2(J)."""
    field = make_field(FIELDS[name], 3, 4, "identity", seed=11)
    for theta in field.thetas():
        estimate = st.one_sided_lipschitz(field, theta, torch.randn(40, 3, generator=gen(12), dtype=F64),
                                          pairs=500, generator=gen(13))
        assert float(estimate.pairs) <= float(estimate.log_norm) + 1e-12
        assert float(estimate.pairs) >= float(estimate.log_norm) - 0.5  # and it is a real estimate


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_pairs_never_exceed_log_norm_on_dense_states(name):
    field = make_field(FIELDS[name], 2, 3, "tanh", seed=14)
    u = torch.linspace(-2, 2, 41, dtype=F64)
    grid = torch.cartesian_prod(u, u)
    for theta in field.thetas():
        estimate = st.one_sided_lipschitz(field, theta, grid, pairs=4000, generator=gen(15))
        assert float(estimate.pairs) <= float(estimate.log_norm)


def test_pair_quotient_is_the_defining_inner_product():
    """Two states: the only pairs are (z1, z2) and (z2, z1), with the same quotient."""
    field = make_field(ResNetField, 3, 1, "tanh", seed=16)
    theta = field.thetas()[0]
    z = torch.randn(2, 3, generator=gen(17), dtype=F64)
    f = field(z, theta).detach()
    dz = z[1] - z[0]
    expected = torch.dot(f[1] - f[0], dz) / torch.dot(dz, dz)
    estimate = st.one_sided_lipschitz(field, theta, z, pairs=3, generator=gen(18))
    torch.testing.assert_close(estimate.pairs, expected, rtol=1e-14, atol=0)


# --- searching for the supremum of nu ------------------------------------------------------------

def members(cls, count, activation, width=4, seed=100):
    """A one-layer field with ``count`` members: ``count`` independent random instances."""
    gens = [gen(seed + s) for s in range(count)]
    return cls(width, 1, activation, generator=gens).to(F64)


def test_search_finds_the_supremum_of_a_diagonal_tanh_field():
    """f(z) = tanh(a * z + b) entrywise: J = diag(a_i (1 - tanh^2(a_i z_i + b_i))), so
    nu = max_i a_i, attained where a_i z_i + b_i = 0 for the largest a_i."""
    a = torch.tensor([0.7, -0.5, 1.3], dtype=F64)
    b = torch.tensor([0.2, 0.1, -0.4], dtype=F64)
    field = make_field(ResNetField, 3, 1, "tanh")
    with torch.no_grad():
        field.A.copy_(torch.diag(a)[None])
        field.b.copy_(b[None])
    theta = field.layer(0)
    starts = 2 * torch.randn(16, 3, generator=gen(40), dtype=F64)
    found = st.lipschitz_supremum(field, theta, starts, generator=gen(41))
    assert abs(float(found.log_norm) - 1.3) <= 1e-6
    assert abs(float(found.z[2]) - 0.4 / 1.3) <= 1e-3
    assert 1.3 - 0.01 <= float(found.pairs) <= 1.3 + 1e-12  # a quotient never exceeds nu
    sampled = st.one_sided_lipschitz(field, theta, starts, pairs=240, generator=gen(42))
    assert float(sampled.log_norm) <= float(found.log_norm)
    # the returned state and pair reproduce the returned values
    torch.testing.assert_close(st.log_norm(st.jacobians(field, theta, found.z[None]))[0],
                               found.log_norm, rtol=1e-13, atol=0)
    torch.testing.assert_close(st.pair_quotients(field, theta, found.pair[:1], found.pair[1:])[0],
                               found.pairs, rtol=1e-12, atol=0)
    assert float((found.pair[1] - found.pair[0]).norm()) >= 1e-3 * (1 - 1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_search_finds_positive_nu_for_the_sign_flipped_gradient_field(activation):
    """f = +A^T sigma(A z + b) has J = A^T D A, so nu = max_D max spec(A^T D A) = ||A||_2^2,
    attained where A z + b = 0 (tanh: D = I there) or where every unit is active (relu).
    For relu J is piecewise constant, the ascent over states gets no gradient and the search
    finds the all-active region only if a start lies in it: there it finds nu > 0, not more."""
    gradient = members(GradientField, 6, activation)
    theta = gradient.layer(0)
    flipped = lambda z, th: -gradient(z, th)  # noqa: E731
    starts = 1.5 * torch.randn(6, 32, 4, generator=gen(43), dtype=F64)
    found = st.lipschitz_supremum(flipped, theta, starts, generator=gen(44))
    norm2 = torch.linalg.matrix_norm(gradient.A.detach()[0], ord=2).square()
    assert found.log_norm.shape == found.pairs.shape == (6,) and found.pair.shape == (6, 2, 4)
    close = {"log_norm": 1e-3, "pairs": 1e-2} if activation == "tanh" else {}
    for name in ("log_norm", "pairs"):
        value = getattr(found, name)
        assert bool((value <= norm2 * (1 + 1e-12)).all())
        assert bool((value >= (1 - close.get(name, 0.5)) * norm2).all())
    # and the gradient field itself: nothing above 0 (up to round-off)
    unflipped = st.lipschitz_supremum(gradient, theta, starts, generator=gen(44))
    assert float(unflipped.log_norm.max()) <= 1e-14 * float(norm2.max())
    assert float(unflipped.pairs.max()) <= 1e-14 * float(norm2.max())


@pytest.mark.parametrize("cls", [ResNetField, GradientField])
def test_search_finds_the_closed_form_nu_of_linear_fields(cls):
    """sigma = identity: J is constant, nu = mu_2(A) for the ResNet field and -s_min(A)^2 for
    the gradient field (the equality case of the theorem)."""
    field = members(cls, 8, "identity")
    A = field.A.detach()[0]
    exact = st.log_norm(A) if cls is ResNetField else -torch.linalg.svdvals(A)[:, -1].square()
    found = st.lipschitz_supremum(field, field.layer(0),
                                  torch.randn(8, 16, 4, generator=gen(45), dtype=F64),
                                  steps=300, generator=gen(46))
    torch.testing.assert_close(found.log_norm, exact, rtol=0, atol=1e-13)
    assert bool((found.pairs <= exact + 1e-12).all())
    assert float((exact - found.pairs).max()) <= 1e-4  # the pair ascent finds the maximiser


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_searched_nu_of_gradient_fields_obeys_the_theorem_and_resnet_fields_do_not(activation):
    """20 random A, b: the search finds nu in [-s_*^2, 0] for -A^T sigma(A z + b), and nu > 0
    for the ResNet field sigma(A z + b) with the same A, b."""
    gradient, resnet = members(GradientField, 20, activation), members(ResNetField, 20, activation)
    assert torch.equal(gradient.A, resnet.A) and torch.equal(gradient.b, resnet.b)
    lower, _ = st.gradient_flow_bounds(gradient.A.detach()[0])
    starts = 1.5 * torch.randn(20, 32, 4, generator=gen(47), dtype=F64)
    found = st.lipschitz_supremum(gradient, gradient.layer(0), starts, generator=gen(48))
    for value in (found.log_norm, found.pairs):  # lower estimates of nu: none may exceed 0
        assert bool((value <= 1e-14).all())
    best = torch.maximum(found.log_norm, found.pairs)  # proves nu >= best
    assert bool((best >= lower - 1e-13).all())
    if activation == "identity":
        torch.testing.assert_close(found.log_norm, lower, rtol=0, atol=1e-13)
    contrast = st.lipschitz_supremum(resnet, resnet.layer(0), starts, generator=gen(48))
    assert float(contrast.log_norm.min()) > 0.1 and float(contrast.pairs.min()) > 0.1


def test_search_improves_on_its_starts_and_is_deterministic():
    field = make_field(ResNetField, 4, 1, "tanh", seed=49)
    theta = field.layer(0)
    starts = torch.randn(12, 4, generator=gen(50), dtype=F64)
    none = st.lipschitz_supremum(field, theta, starts, steps=0, generator=gen(51))
    assert float(none.log_norm) == float(st.log_norm(st.jacobians(field, theta, starts)).max())
    found = st.lipschitz_supremum(field, theta, starts, generator=gen(51))
    again = st.lipschitz_supremum(field, theta, starts, generator=gen(51))
    assert all(torch.equal(x, y) for x, y in zip(found, again))
    assert float(found.log_norm) >= float(none.log_norm)
    assert float(found.pairs) > float(none.pairs)
    with torch.no_grad():  # works inside no_grad, as the rest of the module
        inside = st.lipschitz_supremum(field, theta, starts, generator=gen(51))
    assert all(torch.equal(x, y) for x, y in zip(found, inside))


# --- growth of perturbations -------------------------------------------------------------------

def test_growth_bound_is_exponential_of_integrated_nu():
    nu = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    expected = torch.exp(0.1 * torch.tensor([0.0, 0.5, -0.5, 1.5], dtype=F64))
    torch.testing.assert_close(st.growth_bound(nu, 0.1), expected)
    torch.testing.assert_close(st.growth_bound(torch.full((10,), 0.3, dtype=F64), 0.2)[-1],
                               torch.tensor(math.exp(0.3 * 2.0), dtype=F64))


def test_growth_factor_of_linear_gradient_network_matches_rk4_polynomial_and_expm():
    """sigma = identity, b = 0: each layer is z' = M z with M = -A^T A; one RK4 step multiplies by
    the stability polynomial R(hM) = I + hM + (hM)^2/2 + (hM)^3/6 + (hM)^4/24 exactly, and
    approximates the exact flow expm(hM)."""
    net = ODENet(width=3, depth=20, T=1.0, method="rk4", activation="identity", field="gradient",
                 in_features=3, seed=19).double()
    with torch.no_grad():
        net.field.b.zero_()
    x1 = torch.randn(6, 3, generator=gen(20), dtype=F64)
    x2 = x1 + 1e-3 * torch.randn(6, 3, generator=gen(21), dtype=F64)
    factor = st.growth_factor(net, x1, x2)
    rk4, exact = x2 - x1, x2 - x1
    for A in net.field.A.detach():
        hM = -net.h * A.T @ A
        R = torch.eye(3, dtype=F64) + hM + hM @ hM / 2 + hM @ hM @ hM / 6 + hM @ hM @ hM @ hM / 24
        rk4, exact = rk4 @ R.T, exact @ torch.linalg.matrix_exp(hM).T
    distance = (x2 - x1).norm(dim=1)
    torch.testing.assert_close(factor[-1], rk4.norm(dim=1) / distance, rtol=1e-11, atol=0)
    torch.testing.assert_close(factor[-1], exact.norm(dim=1) / distance, rtol=1e-4, atol=0)
    assert torch.equal(factor[0], torch.ones(6, dtype=F64))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_growth_of_finely_integrated_gradient_network_never_exceeds_bound(activation):
    """RK4 with h = 0.01 on a gradient field (tolerance: relative 1e-6)."""
    net = ODENet(width=4, depth=100, T=1.0, method="rk4", activation=activation, field="gradient",
                 seed=22).double()
    with torch.no_grad():
        net.field.A.mul_(3.0)  # contract visibly
    x = torch.randn(40, 2, generator=gen(23), dtype=F64)
    growth = st.perturbation_growth(net, x, radius=1e-6, pairs=8, generator=gen(24))
    assert growth.factor.shape == (101, 40) and growth.bound.shape == growth.t.shape == (101,)
    assert bool((growth.factor <= growth.bound[:, None] * (1 + 1e-6)).all())
    assert bool((growth.bound <= 1 + 1e-12).all())  # the theorem: nu <= 0
    assert float(growth.factor[-1].min()) < 0.9  # and the flow does contract


def test_markus_yamabe_is_linearly_stable_yet_grows_like_exp_half_t():
    t = torch.linspace(0, 10, 57, dtype=F64)
    A = st.markus_yamabe(t)
    torch.testing.assert_close(torch.linalg.eigvals(A).real, torch.full((57, 2), -0.25, dtype=F64))
    torch.testing.assert_close(st.log_norm(A), torch.full((57,), 0.5, dtype=F64))
    # the solution e^(t/2) (-cos t, sin t) solves z' = A(t) z
    z = torch.exp(t / 2)[:, None] * torch.stack([-torch.cos(t), torch.sin(t)], 1)
    dz = torch.exp(t / 2)[:, None] * torch.stack([-torch.cos(t) / 2 + torch.sin(t),
                                                  torch.sin(t) / 2 + torch.cos(t)], 1)
    torch.testing.assert_close((A @ z[:, :, None])[:, :, 0], dz)
    net = st.markus_yamabe_network(T=4.0, depth=400)
    x1 = torch.tensor([[-1.0, 0.0]], dtype=F64)
    factor = st.growth_factor(net, x1, 1.001 * x1)
    torch.testing.assert_close(factor[:, 0], torch.exp(net.h * torch.arange(401, dtype=F64) / 2),
                               rtol=1e-4, atol=0)
    curves = st.network_curves(net, torch.randn(5, 2, generator=gen(25), dtype=F64), pairs=8)
    torch.testing.assert_close(curves.spectral_abscissa, torch.full((400,), -0.25, dtype=F64))
    torch.testing.assert_close(curves.log_norm, torch.full((400,), 0.5, dtype=F64))


# --- the restricted fields ---------------------------------------------------------------------

def test_antisymmetric_field_structure():
    field = make_field(AntisymmetricField, 4, 3, "tanh", seed=26, kappa=0.3)
    z = torch.randn(30, 4, generator=gen(27), dtype=F64)
    for theta in field.thetas():
        K = field.matrix(theta).detach()
        torch.testing.assert_close(K + K.T, -0.6 * torch.eye(4, dtype=F64))
        torch.testing.assert_close(torch.linalg.eigvals(K).real, torch.full((4,), -0.3, dtype=F64))
        W, b = theta
        torch.testing.assert_close(field(z, theta), torch.tanh(z @ (W - W.T - 0.3 * torch.eye(4)).T + b))
        assert float(st.spectral_abscissa(st.jacobians(field, theta, z)).max()) <= 1e-12


def test_negative_definite_field_structure():
    field = make_field(NegativeDefiniteField, 4, 3, "tanh", seed=28, kappa=0.2)
    z = torch.randn(30, 4, generator=gen(29), dtype=F64)
    for theta in field.thetas():
        A = field.matrix(theta).detach()
        B, b = theta
        torch.testing.assert_close(A, -(B @ B.T).detach() - 0.2 * torch.eye(4, dtype=F64))
        torch.testing.assert_close(A, A.T)
        assert float(torch.linalg.eigvalsh(A).max()) <= -0.2 + 1e-12
        torch.testing.assert_close(field(z, theta), torch.tanh(z @ A.T + b))
        J = st.jacobians(field, theta, z)
        assert float(torch.linalg.eigvals(J).imag.abs().max()) <= 1e-10  # similar to symmetric
        assert float(st.spectral_abscissa(J).max()) <= 1e-12


def test_gradient_field_is_minus_gradient_of_potential():
    """f = -grad V with V(z) = sum log cosh(A z + b) for sigma = tanh."""
    field = make_field(GradientField, 3, 1, "tanh", seed=30)
    theta = field.thetas()[0]
    A, b = theta
    z = torch.randn(8, 3, generator=gen(31), dtype=F64, requires_grad=True)
    V = torch.log(torch.cosh(z @ A.T + b)).sum()
    (grad,) = torch.autograd.grad(V, z)
    torch.testing.assert_close(field(z, theta), -grad)
    J = st.jacobians(field, theta, z)
    torch.testing.assert_close(J, J.mT)


@pytest.mark.parametrize("name", ["gradient", "antisymmetric", "negdef"])
def test_new_fields_train_in_odenet(name):
    net = ODENet(width=3, depth=4, T=2.0, field=name, seed=32)
    X = torch.randn(60, 2, generator=gen(33))
    y = (X.norm(dim=1) > 1).long()
    assert net(X).shape == (60,)
    history = train(net, X, y, iterations=30, lr=0.05, record_every=30)
    assert history.loss[-1] < history.loss[0]
    assert all(p.grad is not None for p in net.field.stacks().values())


# --- figures -------------------------------------------------------------------------------------

def test_stability_figures_say_estimated_and_show_the_spread():
    import matplotlib.pyplot as plt
    from lib.plotting import stability as splot

    net = ODENet(width=2, depth=4, T=1.0, seed=60).double()
    x = torch.randn(20, 2, generator=gen(61), dtype=F64)
    curves = st.network_curves(net, x, pairs=16, generator=gen(62))
    fig = splot.eigenvalues_vs_lipschitz({name: curves for name in "abcd"})
    assert [ax.get_subplotspec().colspan.start for ax in fig.axes[:4]] == [0, 1, 0, 1]  # 2 x 2
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert all("nu" not in label or "leq" in label for label in labels)  # lower estimates
    plt.close(fig)
    growth = st.perturbation_growth(net, x, pairs=16, generator=gen(63))
    fig = splot.growth_vs_bound({"net": {"Euler": growth}})
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("estimated bound" in label for label in labels)
    assert not any("bound" in label and "estimated" not in label for label in labels)
    plt.close(fig)
    lower = -torch.rand(5, generator=gen(64), dtype=F64)
    for values in [(lower, 0 * lower), (lower, 0 * lower, 1 + lower)]:
        fig = splot.theorem_check({"tanh": values, "relu": values})
        assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
        plt.close(fig)
    seeds = torch.tensor([0.9, 0.7, 0.8, 1.0, 0.6])
    fig = splot.accuracy_bars({"donut2d": {"a": (seeds, seeds - 0.1), "b": (0.95, 0.85)}})
    bars = [patch.get_height() for patch in fig.axes[0].patches]
    assert bars == pytest.approx([0.8, 0.95, 0.7, 0.85])  # medians, and plain numbers
    whiskers = [c for c in fig.axes[0].collections if hasattr(c, "get_segments")]
    spans = sorted(float(s[:, 1].max() - s[:, 1].min()) for c in whiskers for s in c.get_segments()
                   if abs(s[0, 0] - s[1, 0]) < 1e-12)
    assert spans == pytest.approx([0.4, 0.4])  # the range over the seeds
    plt.close(fig)
    with pytest.raises(ValueError, match="no validation accuracy"):
        splot.accuracy_bars({"donut2d": {"a": (seeds, torch.tensor([]))}})


# --- bad input -------------------------------------------------------------------------------

def test_bad_inputs_raise_clearly():
    field = make_field(GradientField, 3, 2, "tanh")
    theta = field.thetas()[0]
    z = torch.randn(4, 3, dtype=F64)
    with pytest.raises(TypeError, match="field must be callable"):
        st.jacobians("f", theta, z)
    with pytest.raises(ValueError, match=r"states must have shape \[n, d\]"):
        st.jacobians(field, theta, z[0])
    with pytest.raises(TypeError, match="states must be a floating-point"):
        st.jacobians(field, theta, torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="must return a tensor of the shape of z"):
        st.jacobians(lambda v, th: v.sum(1), theta, z)
    with pytest.raises(ValueError, match="square matrices"):
        st.log_norm(torch.ones(2, 3))
    with pytest.raises(TypeError, match="J must be a torch.Tensor"):
        st.spectral_abscissa([[1.0]])
    with pytest.raises(ValueError, match="at least two states"):
        st.one_sided_lipschitz(field, theta, z[:1])
    with pytest.raises(ValueError, match="pairs must be a positive integer"):
        st.one_sided_lipschitz(field, theta, z, pairs=0)
    with pytest.raises(TypeError, match="starts must be a torch.Tensor"):
        st.lipschitz_supremum(field, theta, [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match=r"starts must be a floating-point tensor \[m, d\]"):
        st.lipschitz_supremum(field, theta, z[0])
    with pytest.raises(ValueError, match="at least two states"):
        st.lipschitz_supremum(field, theta, z[:1])
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        st.lipschitz_supremum(field, theta, z, steps=-1)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        st.lipschitz_supremum(field, theta, z, lr=0.0)
    with pytest.raises(ValueError, match="min_distance must be a positive finite number"):
        st.lipschitz_supremum(field, theta, z, min_distance=float("nan"))
    with pytest.raises(TypeError, match="field must be callable"):
        st.lipschitz_supremum(None, theta, z)
    with pytest.raises(ValueError, match="must return a tensor of the shape of starts"):
        st.lipschitz_supremum(lambda v, th: v[..., :2], theta, z)
    with pytest.raises(ValueError, match=r"\[K, n, d\] with K = 2"):
        st.layer_curves(field, torch.randn(3, 4, 3, dtype=F64))
    with pytest.raises(ValueError, match="A must be a floating-point"):
        st.gradient_flow_bounds(torch.ones(3))
    net = ODENet(width=2, depth=3).double()
    x = torch.randn(5, 2, dtype=F64)
    with pytest.raises(TypeError, match="net must be an ODENet"):
        st.network_curves(field, x)
    with pytest.raises(ValueError, match="must differ in every row"):
        st.growth_factor(net, x, x)
    with pytest.raises(ValueError, match="same shape"):
        st.growth_factor(net, x, x[:3])
    with pytest.raises(ValueError, match="h must be a positive finite number"):
        st.growth_bound(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="nu must be a 1-D tensor"):
        st.growth_bound(torch.zeros(3, 2), 0.1)
    with pytest.raises(ValueError, match="radius must be a positive finite number"):
        st.perturbation_growth(net, x, radius=0.0)
    with pytest.raises(TypeError, match="t must be a floating-point"):
        st.markus_yamabe(torch.arange(3))
    with pytest.raises(ValueError, match="kappa must be a finite number >= 0"):
        AntisymmetricField(3, 2, kappa=-1.0)
    with pytest.raises(ValueError, match="kappa must be a finite number > 0"):
        NegativeDefiniteField(3, 2, kappa=0.0)
    with pytest.raises(ValueError, match="unknown activation"):
        GradientField(3, 2, "softplus")


# --- folding: the Jacobian determinant of each layer map (chapter 1) ---------------------------

def test_layer_determinants_match_euler_closed_form():
    net = ODENet(width=3, depth=4, T=2.0, method="euler", activation="tanh", seed=2).to(F64)
    x = 2 * torch.randn(40, 2, generator=gen(3), dtype=F64)
    dets = st.layer_determinants(net, x)
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    for k, (A, b) in enumerate(net.field.thetas()):
        D = 1 - torch.tanh(states[k] @ A.T + b).square()          # sigma'(A z + b)
        M = torch.eye(3, dtype=F64) + net.h * D[:, :, None] * A   # I + h diag(sigma') A
        torch.testing.assert_close(dets[k], torch.linalg.det(M).detach(), rtol=1e-12, atol=1e-14)
    assert dets.shape == (4, 40) and not dets.requires_grad


def test_layer_determinants_of_heun_match_autograd_of_the_hand_written_step():
    net = ODENet(width=2, depth=3, T=3.0, method="heun", activation="tanh", seed=4).to(F64)
    x = torch.randn(6, 2, generator=gen(5), dtype=F64)
    dets = st.layer_determinants(net, x)
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    h = net.h
    for k, (A, b) in enumerate(net.field.thetas()):
        A, b = A.detach(), b.detach()

        def heun(z):  # z + h/2 (f(z) + f(z + h f(z))), f = tanh(A z + b)
            f1 = torch.tanh(A @ z + b)
            return z + h / 2 * (f1 + torch.tanh(A @ (z + h * f1) + b))

        for n, z in enumerate(states[k]):
            J = torch.autograd.functional.jacobian(heun, z)
            assert abs(float(dets[k, n] - torch.linalg.det(J))) <= 1e-13


def test_small_h_lip_gives_positive_determinants():
    net = ODENet(width=2, depth=6, T=3.0, activation="tanh", seed=6).to(F64)
    with torch.no_grad():   # rescale every A^k to h ||A^k||_2 = 0.99
        net.field.A.mul_(0.99 / st.step_lipschitz_bounds(net)[:, None, None])
        net.field.b.mul_(20)
    bounds = st.step_lipschitz_bounds(net)
    torch.testing.assert_close(bounds, torch.full_like(bounds, 0.99), rtol=1e-14, atol=0)
    x = 3 * torch.randn(2000, 2, generator=gen(7), dtype=F64)
    assert bool((st.layer_determinants(net, x) > 0).all())


def test_small_h_lip_euler_step_is_invertible():
    field = make_field(ResNetField, 3, 1, "tanh", seed=8)
    A, b = field.thetas()[0]
    h = 0.9 / float(torch.linalg.matrix_norm(A.detach(), ord=2))   # h ||A||_2 = 0.9
    z1, z2 = torch.randn(2, 500, 3, generator=gen(9), dtype=F64)
    with torch.no_grad():
        f = lambda z: field(z, (A, b))                              # noqa: E731
        step = lambda z: z + h * f(z)                               # noqa: E731
        ratio = (step(z1) - step(z2)).norm(dim=1) / (z1 - z2).norm(dim=1)
        assert bool((ratio >= 1 - 0.9 - 1e-12).all() and (ratio <= 1 + 0.9 + 1e-12).all())
        w = step(z1)
        z = w.clone()
        for _ in range(400):            # z = w - h f(z): a contraction with constant 0.9
            z = w - h * f(z)
        torch.testing.assert_close(z, z1, rtol=0, atol=1e-12)


def test_a_layer_that_folds_has_determinants_of_both_signs():
    net = ODENet(width=2, depth=1, activation="tanh", seed=0).to(F64)   # h = 1
    with torch.no_grad():
        net.field.A.copy_(torch.tensor([[[-3.0, 0.0], [0.0, 1.0]]], dtype=F64))
        net.field.b.zero_()
    x = torch.tensor([[0.0, 0.0], [5.0, 0.0]], dtype=F64)
    # at 0: det(I + diag(1, 1) A) = (1 - 3)(1 + 1) = -4;  at (5, 0): 1 + 3 tanh'(-15) > 0
    dets = st.layer_determinants(net, x)[0]
    assert abs(float(dets[0]) + 4) <= 1e-14 and float(dets[1]) > 0


def test_folding_diagnostics_refuse_bad_input():
    with pytest.raises(ValueError, match="net.member"):
        st.layer_determinants(ODENet(width=2, depth=2, seed=[0, 1]), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        st.layer_determinants(ODENet(width=2, depth=2), [[0.0, 0.0]])
    with pytest.raises(TypeError, match="ResNet field"):
        st.step_lipschitz_bounds(ODENet(width=2, depth=2, field="gradient"))
    with pytest.raises(TypeError, match="ODENet"):
        st.step_lipschitz_bounds("net")
    assert st.step_lipschitz_bounds(ODENet(width=2, depth=3, seed=[0, 1, 2])).shape == (3, 3)
