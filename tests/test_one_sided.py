"""lib.one_sided: the one-sided Lipschitz constant nu of a field and the growth it bounds. The
gradient-flow theorem on random instances, pair quotients against the logarithmic norm, the
search for the supremum against closed forms, the growth of perturbations against matrix
exponentials and the bound e^(nu t), the stability curves of tensor and Hamiltonian networks
against a direct computation, and the figures that show them."""
import math

import pytest
import torch

from lib import one_sided as os_
from lib import spectra
from lib.examples import markus_yamabe_network
from lib.fields import FIELDS, GradientField, ResNetField
from lib.hamiltonian import CoupledField, GeneralHamiltonianField, SecondOrderField
from lib.models import ODENet

F64 = torch.float64
ACTIVATIONS = ("tanh", "relu", "identity")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make_field(cls, width, layers, activation, seed=0, **kwargs):
    return cls(width, layers, activation, generator=gen(seed), **kwargs).to(F64)


# --- one-sided Lipschitz estimates -------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_flow_theorem_on_200_random_instances(activation):
    """-mu_*^2 <= nu <= 0 for f = -A^T sigma(A z + b), 0 <= sigma' <= 1; identity attains -mu_*^2."""
    g = gen(8)
    field = make_field(GradientField, 4, 200, activation, seed=9)
    field.set_affine(bias=torch.randn(200, 4, generator=g, dtype=F64))  # spread the biases
    states = 1.5 * torch.randn(64, 4, generator=g, dtype=F64)
    nu = os_.layer_curves(field, states, pairs=64, generator=g).log_norm
    lower, upper = os_.gradient_flow_bounds(field.linear_parts().detach())
    # independent reference for mu_*^2: the smallest eigenvalue of A^T A
    A = field.linear_parts().detach()
    torch.testing.assert_close(-lower, torch.linalg.eigvalsh(A.mT @ A)[:, 0], rtol=1e-10, atol=1e-12)
    assert nu.shape == lower.shape == upper.shape == (200,)
    assert bool((nu >= lower - 1e-12).all())
    assert bool((nu <= upper + 1e-12).all())
    if activation == "identity":
        assert float((nu - lower).abs().max()) <= 1e-10
    else:
        assert float((nu - lower).max()) > 1e-3  # saturation lifts nu above -mu_*^2


def test_gradient_flow_bounds_shapes_and_wide_matrices():
    """gradient_flow_bounds is (-s_min(A)^2, 0) per matrix; 0 for a wide A (A^T A singular)."""
    A = torch.randn(3, 5, 4, generator=gen(10), dtype=F64)
    lower, upper = os_.gradient_flow_bounds(A)
    assert lower.shape == upper.shape == (3,)
    torch.testing.assert_close(lower, -torch.linalg.svdvals(A)[:, -1].square())
    wide_lower, _ = os_.gradient_flow_bounds(torch.randn(2, 3, dtype=F64))  # A^T A is singular
    assert float(wide_lower) == 0.0


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_pairs_never_exceed_log_norm_for_linear_fields(name):
    """With sigma the identity J is constant, and every pair quotient <J u, u> <= mu_2(J)."""
    field = make_field(FIELDS[name], 3, 4, "identity", seed=11)
    for theta in field.thetas():
        estimate = os_.one_sided_lipschitz(field, theta, torch.randn(40, 3, generator=gen(12), dtype=F64),
                                          pairs=500, generator=gen(13))
        assert float(estimate.pairs) <= float(estimate.log_norm) + 1e-12
        assert float(estimate.pairs) >= float(estimate.log_norm) - 0.5  # and it is a real estimate


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_pairs_never_exceed_log_norm_on_dense_states(name):
    """On a dense grid the largest pair quotient stays below the largest mu_2(J)."""
    field = make_field(FIELDS[name], 2, 3, "tanh", seed=14)
    u = torch.linspace(-2, 2, 41, dtype=F64)
    grid = torch.cartesian_prod(u, u)
    for theta in field.thetas():
        estimate = os_.one_sided_lipschitz(field, theta, grid, pairs=4000, generator=gen(15))
        assert float(estimate.pairs) <= float(estimate.log_norm)


def test_pair_quotient_is_the_defining_inner_product():
    """Two states: the only pairs are (z1, z2) and (z2, z1), with the same quotient."""
    field = make_field(ResNetField, 3, 1, "tanh", seed=16)
    theta = field.thetas()[0]
    z = torch.randn(2, 3, generator=gen(17), dtype=F64)
    f = field(z, theta).detach()
    dz = z[1] - z[0]
    expected = torch.dot(f[1] - f[0], dz) / torch.dot(dz, dz)
    estimate = os_.one_sided_lipschitz(field, theta, z, pairs=3, generator=gen(18))
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
    field.set_affine(torch.diag(a), b)
    theta = field.layer(0)
    starts = 2 * torch.randn(16, 3, generator=gen(40), dtype=F64)
    found = os_.lipschitz_supremum(field, theta, starts, generator=gen(41))
    assert abs(float(found.log_norm) - 1.3) <= 1e-6
    assert abs(float(found.z[2]) - 0.4 / 1.3) <= 1e-3
    assert 1.3 - 0.01 <= float(found.pairs) <= 1.3 + 1e-12  # a quotient never exceeds nu
    sampled = os_.one_sided_lipschitz(field, theta, starts, pairs=240, generator=gen(42))
    assert float(sampled.log_norm) <= float(found.log_norm)
    # the returned state and pair reproduce the returned values
    torch.testing.assert_close(spectra.log_norm(spectra.jacobians(field, theta, found.z[None]))[0],
                               found.log_norm, rtol=1e-13, atol=0)
    torch.testing.assert_close(os_.pair_quotients(field, theta, found.pair[:1], found.pair[1:])[0],
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
    found = os_.lipschitz_supremum(flipped, theta, starts, generator=gen(44))
    norm2 = torch.linalg.matrix_norm(gradient.linear_parts().detach()[0], ord=2).square()
    assert found.log_norm.shape == found.pairs.shape == (6,) and found.pair.shape == (6, 2, 4)
    close = {"log_norm": 1e-3, "pairs": 1e-2} if activation == "tanh" else {}
    for name in ("log_norm", "pairs"):
        value = getattr(found, name)
        assert bool((value <= norm2 * (1 + 1e-12)).all())
        assert bool((value >= (1 - close.get(name, 0.5)) * norm2).all())
    # and the gradient field itself: nothing above 0 (up to round-off)
    unflipped = os_.lipschitz_supremum(gradient, theta, starts, generator=gen(44))
    assert float(unflipped.log_norm.max()) <= 1e-14 * float(norm2.max())
    assert float(unflipped.pairs.max()) <= 1e-14 * float(norm2.max())


@pytest.mark.parametrize("cls", [ResNetField, GradientField])
def test_search_finds_the_closed_form_nu_of_linear_fields(cls):
    """sigma = identity: J is constant, nu = mu_2(A) for the ResNet field and -s_min(A)^2 for
    the gradient field (the equality case of the theorem)."""
    field = members(cls, 8, "identity")
    A = field.linear_parts().detach()[0]
    exact = spectra.log_norm(A) if cls is ResNetField else -torch.linalg.svdvals(A)[:, -1].square()
    found = os_.lipschitz_supremum(field, field.layer(0),
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
    assert torch.equal(gradient.linear_parts(), resnet.linear_parts())
    assert torch.equal(gradient.biases(), resnet.biases())
    lower, _ = os_.gradient_flow_bounds(gradient.linear_parts().detach()[0])
    starts = 1.5 * torch.randn(20, 32, 4, generator=gen(47), dtype=F64)
    found = os_.lipschitz_supremum(gradient, gradient.layer(0), starts, generator=gen(48))
    for value in (found.log_norm, found.pairs):  # lower estimates of nu: none may exceed 0
        assert bool((value <= 1e-14).all())
    best = torch.maximum(found.log_norm, found.pairs)  # proves nu >= best
    assert bool((best >= lower - 1e-13).all())
    if activation == "identity":
        torch.testing.assert_close(found.log_norm, lower, rtol=0, atol=1e-13)
    contrast = os_.lipschitz_supremum(resnet, resnet.layer(0), starts, generator=gen(48))
    assert float(contrast.log_norm.min()) > 0.1 and float(contrast.pairs.min()) > 0.1


def test_search_improves_on_its_starts_and_is_deterministic():
    """The search starts from the sampled estimate, improves on it, is reproducible from its
    generator and works inside no_grad."""
    field = make_field(ResNetField, 4, 1, "tanh", seed=49)
    theta = field.layer(0)
    starts = torch.randn(12, 4, generator=gen(50), dtype=F64)
    none = os_.lipschitz_supremum(field, theta, starts, steps=0, generator=gen(51))
    assert float(none.log_norm) == float(spectra.log_norm(spectra.jacobians(field, theta, starts)).max())
    found = os_.lipschitz_supremum(field, theta, starts, generator=gen(51))
    again = os_.lipschitz_supremum(field, theta, starts, generator=gen(51))
    assert all(torch.equal(x, y) for x, y in zip(found, again))
    assert float(found.log_norm) >= float(none.log_norm)
    assert float(found.pairs) > float(none.pairs)
    with torch.no_grad():  # works inside no_grad, as the rest of the module
        inside = os_.lipschitz_supremum(field, theta, starts, generator=gen(51))
    assert all(torch.equal(x, y) for x, y in zip(found, inside))


# --- growth of perturbations -------------------------------------------------------------------

def test_growth_bound_is_exponential_of_integrated_nu():
    """growth_bound = exp(h sum_{j<k} nu_j), e^(nu t) for constant nu."""
    nu = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    expected = torch.exp(0.1 * torch.tensor([0.0, 0.5, -0.5, 1.5], dtype=F64))
    torch.testing.assert_close(os_.growth_bound(nu, 0.1), expected)
    torch.testing.assert_close(os_.growth_bound(torch.full((10,), 0.3, dtype=F64), 0.2)[-1],
                               torch.tensor(math.exp(0.3 * 2.0), dtype=F64))


def test_growth_factor_of_linear_gradient_network_matches_rk4_polynomial_and_expm():
    """sigma = identity, b = 0: each layer is z' = M z with M = -A^T A; one RK4 step multiplies by
    the stability polynomial R(hM) = I + hM + (hM)^2/2 + (hM)^3/6 + (hM)^4/24 exactly, and
    approximates the exact flow expm(hM)."""
    net = ODENet(width=3, depth=20, T=1.0, method="rk4", activation="identity", field="gradient",
                 in_features=3, seed=19).double()
    net.field.set_affine(bias=0.0)
    x1 = torch.randn(6, 3, generator=gen(20), dtype=F64)
    x2 = x1 + 1e-3 * torch.randn(6, 3, generator=gen(21), dtype=F64)
    factor = os_.growth_factor(net, x1, x2)
    rk4, exact = x2 - x1, x2 - x1
    for A in net.field.linear_parts().detach():
        hM = -net.h * A.T @ A
        R = torch.eye(3, dtype=F64) + hM + hM @ hM / 2 + hM @ hM @ hM / 6 + hM @ hM @ hM @ hM / 24
        rk4, exact = rk4 @ R.T, exact @ torch.linalg.matrix_exp(hM).T
    distance = (x2 - x1).norm(dim=1)
    torch.testing.assert_close(factor[-1], rk4.norm(dim=1) / distance, rtol=1e-11, atol=0)
    torch.testing.assert_close(factor[-1], exact.norm(dim=1) / distance, rtol=1e-4, atol=0)
    assert torch.equal(factor[0], torch.ones(6, dtype=F64))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_growth_of_finely_integrated_gradient_network_never_exceeds_bound(activation):
    """RK4 with h = 0.01 on a gradient field: the growth stays below the estimated bound
    (tolerance: relative 1e-6), which is <= 1 by the theorem."""
    net = ODENet(width=4, depth=100, T=1.0, method="rk4", activation=activation, field="gradient",
                 seed=22).double()
    net.field.set_affine(3.0 * net.field.linear_parts())  # contract visibly
    x = torch.randn(40, 2, generator=gen(23), dtype=F64)
    growth = os_.perturbation_growth(net, x, radius=1e-6, pairs=8, generator=gen(24))
    assert growth.factor.shape == (101, 40) and growth.bound.shape == growth.t.shape == (101,)
    assert bool((growth.factor <= growth.bound[:, None] * (1 + 1e-6)).all())
    assert bool((growth.bound <= 1 + 1e-12).all())  # the theorem: nu <= 0
    assert float(growth.factor[-1].min()) < 0.9  # and the flow does contract


def test_markus_yamabe_network_grows_like_exp_half_t_with_alpha_minus_quarter():
    """Every layer has alpha = -1/4 and mu_2 = 1/2, and perturbations grow like e^(t/2)."""
    net = markus_yamabe_network(T=4.0, depth=400)
    x1 = torch.tensor([[-1.0, 0.0]], dtype=F64)
    factor = os_.growth_factor(net, x1, 1.001 * x1)
    torch.testing.assert_close(factor[:, 0], torch.exp(net.h * torch.arange(401, dtype=F64) / 2),
                               rtol=1e-4, atol=0)
    curves = os_.network_curves(net, torch.randn(5, 2, generator=gen(25), dtype=F64), pairs=8)
    torch.testing.assert_close(curves.spectral_abscissa, torch.full((400,), -0.25, dtype=F64))
    torch.testing.assert_close(curves.log_norm, torch.full((400,), 0.5, dtype=F64))


# --- figures -------------------------------------------------------------------------------------

def test_stability_figures_say_estimated_and_show_the_spread():
    """The figures label the bound as estimated and nu as a lower estimate, and show the
    spread over seeds."""
    import matplotlib.pyplot as plt
    from lib.plotting import stability as splot

    net = ODENet(width=2, depth=4, T=1.0, seed=60).double()
    x = torch.randn(20, 2, generator=gen(61), dtype=F64)
    curves = os_.network_curves(net, x, pairs=16, generator=gen(62))
    fig = splot.eigenvalues_vs_lipschitz({name: curves for name in "abcd"})
    assert [ax.get_subplotspec().colspan.start for ax in fig.axes[:4]] == [0, 1, 0, 1]  # 2 x 2
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert all("nu" not in label or "leq" in label for label in labels)  # lower estimates
    plt.close(fig)
    growth = os_.perturbation_growth(net, x, pairs=16, generator=gen(63))
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
    """Every function of lib.one_sided refuses bad arguments with an error naming them."""
    field = make_field(GradientField, 3, 2, "tanh")
    theta = field.thetas()[0]
    z = torch.randn(4, 3, dtype=F64)
    with pytest.raises(ValueError, match="at least two states"):
        os_.one_sided_lipschitz(field, theta, z[:1])
    with pytest.raises(ValueError, match="pairs must be a positive integer"):
        os_.one_sided_lipschitz(field, theta, z, pairs=0)
    with pytest.raises(TypeError, match="starts must be a torch.Tensor"):
        os_.lipschitz_supremum(field, theta, [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match=r"starts must be a floating-point tensor \[m, d\]"):
        os_.lipschitz_supremum(field, theta, z[0])
    with pytest.raises(ValueError, match="at least two states"):
        os_.lipschitz_supremum(field, theta, z[:1])
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        os_.lipschitz_supremum(field, theta, z, steps=-1)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        os_.lipschitz_supremum(field, theta, z, lr=0.0)
    with pytest.raises(ValueError, match="min_distance must be a positive finite number"):
        os_.lipschitz_supremum(field, theta, z, min_distance=float("nan"))
    with pytest.raises(TypeError, match="field must be callable"):
        os_.lipschitz_supremum(None, theta, z)
    with pytest.raises(ValueError, match="must return a tensor of the shape of starts"):
        os_.lipschitz_supremum(lambda v, th: v[..., :2], theta, z)
    with pytest.raises(ValueError, match=r"\[K, n, d\] with K = 2"):
        os_.layer_curves(field, torch.randn(3, 4, 3, dtype=F64))
    with pytest.raises(ValueError, match="A must be a floating-point"):
        os_.gradient_flow_bounds(torch.ones(3))
    net = ODENet(width=2, depth=3).double()
    x = torch.randn(5, 2, dtype=F64)
    with pytest.raises(TypeError, match="net must be a lib.models.ODENet"):
        os_.network_curves(field, x)
    with pytest.raises(ValueError, match="must differ in every row"):
        os_.growth_factor(net, x, x)
    with pytest.raises(ValueError, match="same shape"):
        os_.growth_factor(net, x, x[:3])
    with pytest.raises(ValueError, match="h must be a positive finite number"):
        os_.growth_bound(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="nu must be a 1-D tensor"):
        os_.growth_bound(torch.zeros(3, 2), 0.1)
    with pytest.raises(ValueError, match="radius must be a positive finite number"):
        os_.perturbation_growth(net, x, radius=0.0)


# --- the curves of tensor and Hamiltonian networks --------------------------------------------

def test_network_curves_are_the_layer_curves_along_the_trajectory(small_net, points):
    """network_curves examines layer k at the states z^k it acts on, t_k = k h."""
    net = small_net(method="rk4", field="gradient", depth=5, T=2.5)
    x, _ = points(12)
    curves = os_.network_curves(net, x, pairs=32, generator=gen(1))
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    reference = os_.layer_curves(net.field, states, h=net.h, pairs=32, generator=gen(1))
    for got, want in zip(curves, reference):
        assert torch.equal(got, want)
    torch.testing.assert_close(curves.t, 0.5 * torch.arange(5, dtype=F64))
    assert bool((curves.log_norm <= 1e-12).all())   # a gradient field: nu <= 0


@pytest.mark.parametrize("cls, method", [(SecondOrderField, "stormer_verlet"),
                                         (GeneralHamiltonianField, "symplectic_euler"),
                                         (CoupledField, "rk4")])
def test_network_curves_of_hamiltonian_networks_match_a_direct_computation(small_net, points,
                                                                           cls, method):
    """On the pair state: alpha and mu_2 of jacrev of the joined field (written by hand) at
    the states (z^k, p^k); the pair quotients of that field; alpha = 0 (J = [[0, S1], [-S2, 0]])."""
    net = small_net(method=method, field=cls, depth=4)
    x, _ = points(10)
    d = net.width
    curves = os_.network_curves(net, x, pairs=64, generator=gen(2))

    def joined(y, theta):  # (z, p) -> (dH/dp, -dH/dz), joined by hand
        return torch.cat([net.field.dz(y[..., d:], theta), net.field.dp(y[..., :d], theta)], -1)

    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    assert states.shape == (4, 10, 2 * d)
    g = gen(2)
    for k, (theta, y) in enumerate(zip(net.field.thetas(), states)):
        theta = tuple(p.detach() for p in theta)
        J = torch.func.vmap(torch.func.jacrev(lambda v: joined(v[None], theta)[0]))(y)
        torch.testing.assert_close(curves.spectral_abscissa[k],
                                   torch.linalg.eigvals(J).real.amax(), rtol=0, atol=1e-12)
        torch.testing.assert_close(curves.log_norm[k],
                                   torch.linalg.eigvalsh((J + J.mT) / 2)[..., -1].amax(),
                                   rtol=1e-12, atol=1e-13)
        estimate = os_.one_sided_lipschitz(joined, theta, y, pairs=64, generator=g)
        torch.testing.assert_close(curves.pairs[k], estimate.pairs, rtol=1e-12, atol=1e-14)
    assert float(curves.spectral_abscissa.abs().max()) <= 1e-12
    assert bool((curves.log_norm >= 0).all())
