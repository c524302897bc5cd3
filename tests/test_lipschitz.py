"""The Lipschitz bounds of lib/lipschitz.py against torch.linalg's singular values and random
pairs, and the step constraint after every training step (chapter 8, theorem on the
non-expansive Euler step of the gradient field)."""

import pytest
import torch

import lib
from lib import examples
from lib import lipschitz as lp
from lib.fields import GradientField
from lib.spectra import jacobians

F64 = torch.float64


def gradient_layer(width, h_norm2, activation="identity", rank=None, seed=0):
    return examples.gradient_layer(h_norm2, width, activation, rank,
                                   generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("h_norm2", [0.5, 1.5, 2.0, 2.5, 3.0])
def test_layer_bound_is_the_largest_singular_value_where_attained(h_norm2):
    """Identity activation, rank-deficient A: the Euler step is linear, I - h A^T A has the
    singular values 1 (the kernel) and |1 - h s_i^2|, so its norm is max(1, h||A||^2 - 1)."""
    net = gradient_layer(5, h_norm2, rank=3)
    A = net.field.linear_parts()[0].detach()
    J = torch.eye(5, dtype=F64) - net.h * A.T @ A
    exact = torch.linalg.svdvals(J)[0]
    torch.testing.assert_close(lp.layer_bounds(net)[0], exact, rtol=1e-13, atol=0)
    # and it is the layer's own Jacobian (the identity activation makes the step linear)
    z = torch.zeros(1, 5, dtype=F64)
    step = torch.func.jacrev(lambda v: net.layer(0)(v[None])[0])(z[0])
    torch.testing.assert_close(step, J, rtol=0, atol=1e-14)


def test_spectral_norms_are_torch_linalg_svdvals():
    M = torch.randn(3, 4, 6, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    torch.testing.assert_close(lp.spectral_norms(M), torch.linalg.svdvals(M)[..., 0])


def test_resnet_layer_bound_attained_for_a_positive_multiple_of_the_identity():
    net = lib.ODENet(width=3, depth=1, activation="identity").double()
    net.field.set_affine(0.7 * torch.eye(3, dtype=F64))
    torch.testing.assert_close(lp.layer_bounds(net)[0], torch.tensor(1.7, dtype=F64))
    ratios = pair_quotients(net, pairs=100)   # the step is z -> 1.7 z + h b: every pair at 1.7
    torch.testing.assert_close(ratios, torch.full((100,), 1.7, dtype=F64), rtol=1e-9, atol=0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_step_jacobian_norms_stay_below_the_bound(activation):
    """Random tanh/ReLU layers at random states: ||I + h J(z)||_2 <= max(1, h||A||^2 - 1)."""
    g = torch.Generator().manual_seed(2)
    field = GradientField(6, 8, activation, generator=g).double()
    h = 0.7
    states = 2 * torch.randn(50, 6, generator=g, dtype=F64)
    for theta in field.thetas():
        theta = tuple(p.detach() for p in theta)
        step = torch.eye(6, dtype=F64) + h * jacobians(field, theta, states)
        norms = torch.linalg.matrix_norm(step, ord=2)
        bound = (h * torch.linalg.matrix_norm(theta[0], ord=2) ** 2 - 1).clamp(min=1)
        assert norms.max() <= bound * (1 + 1e-12)


def pair_quotients(net, pairs=4000, seed=3):
    return lp.step_quotients(net, pairs, generator=torch.Generator().manual_seed(seed))


def test_the_euler_step_at_the_limit_is_non_expansive_on_random_pairs():
    net = gradient_layer(3, 2.0, activation="tanh")
    assert pair_quotients(net).max() <= 1 + 1e-12


def test_a_step_just_past_the_limit_expands():
    """Negative control: h ||A||^2 = 2.2 (10 % past the limit) expands some pair near 0."""
    net = gradient_layer(3, 2.2, activation="tanh")
    assert pair_quotients(net).max() >= 1.1


def test_the_constraint_holds_after_every_step():
    """The regulariser sees the parameters as every step starts, i.e. after the constraint of
    the step before; it records h ||A^k||^2, ||P|| and ||W|| there."""
    g = torch.Generator().manual_seed(4)
    X = torch.rand(40, 16, generator=g, dtype=F64)
    y = torch.randint(0, 3, (40,), generator=g)
    net = lib.ODENet(width=8, depth=4, T=2.0, field="gradient", classes=3, in_features=16,
                     lift="linear", seed=[0, 1]).double()
    seen = []

    def watch(net):
        with torch.no_grad():
            seen.append(torch.cat([net.h * lp.spectral_norms(net.field.linear_parts()).square()
                                   .flatten() / 2, lp.spectral_norms(net.linear_lift.matrix()),
                                   lp.spectral_norms(net.classifier.matrix())]).max())
        return torch.zeros(2, dtype=F64)

    lib.train(net, X, y, iterations=30, lr=0.1, regulariser=watch,
              constraint=lp.nonexpansive_constraint(2.0))
    assert len(seen) == 30 and max(seen) <= 1 + 1e-12
    assert float(lp.network_bound(net).max()) <= 1 + 1e-12
    unconstrained = lib.ODENet(width=8, depth=4, T=2.0, field="gradient", classes=3,
                               in_features=16, lift="linear", seed=[0, 1]).double()
    seen.clear()
    lib.train(unconstrained, X, y, iterations=30, lr=0.1, regulariser=watch)
    assert max(seen) > 1.5


def test_estimate_stays_below_the_network_bound():
    g = torch.Generator().manual_seed(5)
    for field in ("gradient", "resnet"):
        net = lib.ODENet(width=6, depth=3, field=field, classes=4, in_features=5, lift="linear",
                         seed=[0, 1, 2]).double()
        x = torch.rand(20, 5, generator=g, dtype=F64)
        estimate = lp.lipschitz_estimate(net, x.expand(3, 20, 5), steps=50, generator=g)
        assert (estimate <= lp.network_bound(net) * (1 + 1e-9)).all()
        assert (estimate > 0).all()


def test_gradient_layer_has_the_asked_step_norm_and_rank():
    net = examples.gradient_layer(1.7, width=4, rank=2,
                                  generator=torch.Generator().manual_seed(5))
    assert net.depth == 1 and net.h == 1.0 and net.tableau.name == "euler"
    A = net.field.linear_parts()[0].detach()
    s = torch.linalg.svdvals(A)
    assert float(net.h * s[0] ** 2) == pytest.approx(1.7, rel=1e-14)
    assert float(s[2:].max()) <= 1e-14 * float(s[0])
    assert torch.equal(net.field.biases(), torch.zeros(1, 4, dtype=F64))
    with pytest.raises(ValueError, match="rank must be an int in 1..4"):
        examples.gradient_layer(1.0, width=4, rank=5)
    with pytest.raises(ValueError, match="h_norm2 must be"):
        examples.gradient_layer(-1.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="limit"):
        lp.nonexpansive_constraint(-1.0)
    with pytest.raises(TypeError, match="net.field"):
        lp.layer_bounds(lib.ODENet(field="antisymmetric"))
    with pytest.raises(ValueError, match="Euler"):
        lp.layer_bounds(lib.ODENet(method="rk4"))
    with pytest.raises(ValueError, match="M must"):
        lp.spectral_norms(torch.ones(3))
