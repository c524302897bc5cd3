"""The deep limit: refining a network keeps its continuous model, and the features converge at
the order of the method."""
import pytest
import torch

import lib
import lib.fields
from lib.deep_limit import feature_convergence, objective, observed_order, path_steps
from lib.losses import cross_entropy
from lib.regularisers import time_smoothness, weight_penalty


def test_refined_by_one_is_the_same_network(small_net, donut):
    net = small_net()
    x, _ = donut(20)
    assert torch.equal(net.refined(1)(x), net(x))


def test_refined_repeats_each_layer_keeps_T_and_leaves_the_network_alone(small_net):
    net = small_net(depth=3)
    before = [p.clone() for p in net.parameters()]
    fine = net.refined(4)
    assert fine.depth == 12 and fine.T == net.T and fine.h == pytest.approx(net.h / 4)
    for name, theta in net.field.stacks().items():
        fine_theta = fine.field.stacks()[name]
        for k in range(3):
            assert torch.equal(fine_theta[4 * k:4 * k + 4], theta[k].expand(4, *theta.shape[1:]))
    assert torch.equal(fine.classifier.matrix(), net.classifier.matrix())
    assert torch.equal(fine.classifier.bias(), net.classifier.bias())
    assert net.depth == 3 and all(torch.equal(p, q) for p, q in zip(net.parameters(), before))
    with torch.no_grad():   # a copy: training the fine network does not move the coarse one
        fine.field.linear_parts().add_(1.0)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))


def test_refining_half_a_step_twice_equals_two_half_steps_by_hand(small_net):
    net = small_net(depth=1)
    x, _ = lib.make_dataset("spiral", 10, dtype=torch.float64)
    z = net.lift(x)
    theta = net.field.thetas()[0]
    for _ in range(2):
        z = z + net.h / 2 * net.field(z, theta)
    assert torch.allclose(net.refined(2).features(x), z, rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", ["euler", "heun", "kutta3"])
def test_features_converge_at_the_order_of_the_method(small_net, method):
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


@pytest.mark.parametrize("m", [0, -1, True, 2.0])
def test_refined_rejects_bad_m(small_net, m):
    with pytest.raises(ValueError, match="m must be a positive integer"):
        small_net().refined(m)


@pytest.mark.parametrize("field", sorted(lib.fields.FIELDS))
def test_refined_keeps_every_field_and_its_fixed_constants(small_net, donut, field):
    net = small_net(field=field)
    if field in ("antisymmetric", "negdef"):  # the fixed shift kappa of the restricted fields
        net.field.kappa = 0.5
    x, _ = donut(20)
    assert torch.equal(net.refined(1)(x), net(x))
    fine = net.refined(3)
    assert type(fine.field) is type(net.field) and fine.field.layers == 12
    assert getattr(fine.field, "kappa", None) == getattr(net.field, "kappa", None)
    if field in ("antisymmetric", "negdef"):
        assert fine.field.kappa == 0.5


# --- the deep limit's objective and its training -------------------------------------------

def test_size_penalty_is_the_weight_penalty_of_twice_its_weight_with_and_without_members():
    """The size penalty ``mu (h sum_k |theta^k|^2 + |w|^2 + w0^2)`` of the deep limit is
    :func:`lib.regularisers.weight_penalty` of weight ``2 mu``."""
    net = lib.ODENet(width=2, depth=5, T=2.0, seed=[0, 1, 2]).double()
    penalty = weight_penalty(2 * 0.3)(net)
    assert penalty.shape == (3,)
    for s in range(3):
        one = net.member(s)
        field = sum(p.square().sum() for p in one.field.stacks().values())
        expected = 0.3 * (one.h * field + one.classifier.matrix().square().sum()
                          + one.classifier.bias().square().sum())
        torch.testing.assert_close(penalty[s], expected.detach(), rtol=1e-14, atol=0)
        torch.testing.assert_close(weight_penalty(0.6)(one).detach(), expected.detach(),
                                   rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="rho must be"):
        weight_penalty(-1.0)


def test_objective_is_loss_plus_both_regularisers_and_run_trains_it():
    from lib import experiments as ex
    config = dict(dataset="spiral", seeds=[0, 1], n=30, iterations=5, width=2, depth=4,
                  T=2.0, lam=0.1, size=0.01, dtype="float64", lr=0.01)
    e = ex.run(config)
    value = objective(e.net, e.X, e.y, 0.1, 0.01)
    with torch.no_grad():
        by_hand = (cross_entropy(e.net(e.X), e.y) + time_smoothness(0.1)(e.net)
                   + weight_penalty(2 * 0.01)(e.net))
    torch.testing.assert_close(value, by_hand, rtol=0, atol=0)
    assert not value.requires_grad and value.shape == (2,)
    # the recorded objective is this one before the last update
    again = ex.run(dict(config, iterations=4))
    torch.testing.assert_close(e.history.loss[-1],
                               objective(again.net, again.X, again.y, 0.1, 0.01),
                               rtol=1e-12, atol=0)
    # and each term counts: without the size penalty the objective is smaller
    assert bool((objective(e.net, e.X, e.y, 0.1, 0.0) < value).all())


def test_adam_moves_theta_t_alike_at_every_depth_and_gd_does_not():
    """The gradient of layer k is h times the L^2 gradient at t_k; Adam is invariant to that
    scale, gradient descent with a fixed rate is not (it moves m times less on a grid m times
    finer)."""
    X, y = lib.make_dataset("spiral", 60, seed=0, dtype=torch.float64)
    net = lib.ODENet(width=2, depth=4, T=4.0, seed=[0, 1]).double()
    before = [p.clone() for p in net.parameters()]
    coarse, fine = path_steps(net, X, y, 8, "adam", 0.01, 5)
    assert bool(((fine / coarse - 1).abs() < 0.2).all()), fine / coarse
    coarse, fine = path_steps(net, X, y, 8, "gd", 0.01, 5)
    assert bool(((fine / coarse - 1 / 8).abs() < 0.05).all()), fine / coarse
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))  # trains copies
