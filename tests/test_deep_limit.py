"""The deep limit: refining a network keeps its continuous model, and the features converge at
the order of the method."""
import math

import pytest
import torch

import lib
import lib.fields
from lib.deep_limit import feature_convergence, observed_order, refine


def small_net(method="euler", depth=4, field="resnet"):
    return lib.ODENet(width=3, depth=depth, T=2.0, method=method, field=field, seed=3).double()


def test_refine_by_one_is_the_same_network():
    net = small_net()
    x, _ = lib.make_dataset("donut2d", 20, dtype=torch.float64)
    assert torch.equal(refine(net, 1)(x), net(x))


def test_refine_repeats_each_layer_and_keeps_T():
    net = small_net(depth=3)
    fine = refine(net, 4)
    assert fine.depth == 12 and fine.T == net.T and fine.h == pytest.approx(net.h / 4)
    assert torch.equal(fine.field.A[4:8], net.field.A[1].expand(4, 3, 3))
    assert torch.equal(fine.classifier.w, net.classifier.w)


def test_refining_half_a_step_twice_equals_two_half_steps_by_hand():
    net = small_net(depth=1)
    x, _ = lib.make_dataset("spiral", 10, dtype=torch.float64)
    z = net.lift(x)
    theta = net.field.thetas()[0]
    for _ in range(2):
        z = z + net.h / 2 * net.field(z, theta)
    assert torch.allclose(refine(net, 2).features(x), z, rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", ["euler", "heun", "kutta3"])
def test_features_converge_at_the_order_of_the_method(method):
    net = small_net(method)
    x, _ = lib.make_dataset("spiral", 30, dtype=torch.float64)
    refinements = [1, 2, 4, 8]
    errors = feature_convergence(net, x, refinements, reference=256)
    order = observed_order([net.h / m for m in refinements], errors)
    assert abs(order - net.tableau.order) < 0.2, (method, errors, order)


def test_observed_order_recovers_a_power_law():
    steps = [0.1, 0.05, 0.025]
    assert observed_order(steps, [3 * h ** 2.5 for h in steps]) == pytest.approx(2.5, abs=1e-12)


@pytest.mark.parametrize("steps, errors", [([0.1], [1.0]), ([0.1, 0.2], [1.0]), ([0.1, -0.2], [1.0, 2.0]),
                                           ([0.1, 0.2], [0.0, 1.0])])
def test_observed_order_rejects_bad_input(steps, errors):
    with pytest.raises(ValueError, match="steps and errors"):
        observed_order(steps, errors)


def test_refine_rejects_bad_m():
    with pytest.raises(ValueError, match="m must be a positive integer"):
        refine(small_net(), 0)


@pytest.mark.parametrize("field", sorted(lib.fields.FIELDS))
def test_refine_keeps_every_field_and_its_fixed_constants(field):
    net = small_net(field=field)
    if field in ("antisymmetric", "negdef"):  # the fixed shift kappa of the restricted fields
        net.field.kappa = 0.5
    x, _ = lib.make_dataset("donut2d", 20, dtype=torch.float64)
    assert torch.equal(refine(net, 1)(x), net(x))
    fine = refine(net, 3)
    assert type(fine.field) is type(net.field) and fine.field.layers == 12
    assert getattr(fine.field, "kappa", None) == getattr(net.field, "kappa", None)
    if field in ("antisymmetric", "negdef"):
        assert fine.field.kappa == 0.5
