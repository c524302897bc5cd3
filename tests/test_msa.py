"""The method of successive approximations (lib.msa): the layer maps are the network's, the
Hamiltonian's gradient is backpropagation's, the penalties vanish on the current weights, and
the sign rule maximises the Hamiltonian of binary weights (against brute force)."""
import functools
import itertools

import pytest
import torch

import lib
from lib import msa
from lib.bilinear import costates
from lib.gradients import DTO, layer_keys

EPS = torch.finfo(torch.float64).eps


@pytest.fixture
def problem(donut):
    return donut(20)


def sweeps(net, X, y):
    states = net.trajectory(X).detach()
    lam = costates(net, X, y) * X.shape[0]
    return states, lam


def binary_weights(net):
    """The one stacked parameter ``A`` of a :class:`lib.msa.BinaryField`."""
    (A,) = net.field.stacks().values()
    return A


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_layer_maps_are_the_network_steps(problem, method):
    X, _ = problem
    net = lib.ODENet(width=3, depth=4, method=method, seed=1).double()
    states = net.trajectory(X).detach()
    batched = msa.layer_maps(net, states[:-1], net.field.stacks().values())
    for k in range(net.depth):
        assert torch.allclose(batched[k], net.layer(k)(states[k]), rtol=0, atol=8 * EPS)
    assert torch.allclose(batched, states[1:], rtol=0, atol=8 * EPS)


def test_hamiltonian_gradient_is_minus_backpropagation(problem):
    X, y = problem
    net = lib.ODENet(width=3, depth=4, T=2.0, seed=2).double()
    states, lam = sweeps(net, X, y)
    leaves = [p.detach().clone().requires_grad_(True) for p in net.field.stacks().values()]
    grads = torch.autograd.grad(msa.augmented_hamiltonian(net, states, lam, leaves, 0.0), leaves)
    exact = DTO()(net, X, y)
    for key, g in zip(layer_keys(net), grads):
        assert torch.allclose(g, -exact[key], rtol=1e-12, atol=1e-15)


def test_penalties_vanish_and_have_zero_gradient_at_the_current_weights(problem):
    X, y = problem
    net = lib.ODENet(width=3, depth=4, T=2.0, seed=3).double()
    states, lam = sweeps(net, X, y)
    leaves = [p.detach().clone().requires_grad_(True) for p in net.field.stacks().values()]
    plain = msa.augmented_hamiltonian(net, states, lam, leaves, 0.0)
    penalised = msa.augmented_hamiltonian(net, states, lam, leaves, 10.0)
    assert abs(float((plain - penalised).detach())) <= 64 * EPS * abs(float(plain.detach()))
    g0 = torch.autograd.grad(plain, leaves)
    g1 = torch.autograd.grad(penalised, leaves)
    for a, b in zip(g0, g1):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)
    # away from the current weights the penalty is negative (a negative control)
    moved = [t.detach() + 0.1 for t in leaves]
    gap = msa.augmented_hamiltonian(net, states, lam, moved, 10.0) - \
        msa.augmented_hamiltonian(net, states, lam, moved, 0.0)
    assert gap < -1e-3


def test_one_inner_step_is_a_gradient_descent_step(problem):
    X, y = problem
    net = lib.ODENet(width=3, depth=4, T=2.0, seed=4).double()
    states, lam = sweeps(net, X, y)
    new = msa.maximise_hamiltonian(net, states, lam, rho=1.0, steps=1, lr=0.5)
    exact = DTO()(net, X, y)
    for key, theta, p in zip(layer_keys(net), new, net.field.stacks().values()):
        assert torch.allclose(theta, p - 0.5 * exact[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rho", [0.0, 0.02, 1.0])
def test_sign_rule_is_the_brute_force_maximiser(problem, rho):
    X, y = problem
    net = lib.ODENet(width=2, depth=3, T=1.5, field=msa.BinaryField, seed=5).double()
    states, lam = sweeps(net, X, y)
    A_old = binary_weights(net).detach().clone()
    leaves = [A_old.clone().requires_grad_(True)]
    (M,) = torch.autograd.grad(msa.augmented_hamiltonian(net, states, lam, leaves, 0.0), leaves)
    rule = msa.sign_rule(M, A_old, rho)
    for k in range(net.depth):
        def objective(A):
            stack = A_old.clone()
            stack[k] = A
            H = msa.augmented_hamiltonian(net, states, lam, [stack], 0.0)
            return float(H) - rho / 2 * float((A - A_old[k]).square().sum())
        grid = [torch.tensor(s, dtype=torch.float64).view(2, 2)
                for s in itertools.product((-1.0, 1.0), repeat=4)]
        values = [objective(A) for A in grid]
        best = max(values)
        assert objective(rule[k]) >= best - 1e-12 * abs(best)
        assert set(rule[k].unique().tolist()) <= {-1.0, 1.0}


def test_emsa_trains_and_binary_weights_stay_binary(problem):
    X, y = problem
    net = lib.ODENet(width=3, depth=4, T=2.0, seed=6).double()
    history = lib.train(net, X, y, iterations=10,
                        optimizer=msa.msa(net, X, y, loss="cross_entropy", lr=0.05, rho=1.0,
                                          inner_steps=3, inner_lr=0.3))
    assert history.loss[-1] < history.loss[0]
    for make in (lambda n: msa.msa(n, X, y, loss="cross_entropy", lr=0.05, rho=0.01,
                                   binary=True),
                 lambda n: functools.partial(msa.StraightThrough, binary=[binary_weights(n)],
                                             lr=0.2)):
        net = lib.ODENet(width=3, depth=4, T=2.0, field=msa.BinaryField, seed=7).double()
        before = binary_weights(net).detach().clone()
        history = lib.train(net, X, y, iterations=10, optimizer=make(net))
        assert set(binary_weights(net).unique().tolist()) <= {-1.0, 1.0}
        assert not torch.equal(binary_weights(net), before)      # some signs flipped
        assert history.loss.min() < history.loss[0]


def test_bad_arguments(problem):
    X, y = problem
    net = lib.ODENet(width=3, depth=2, seed=0).double()
    with pytest.raises(ValueError, match="rho"):
        msa.MSA(net, X, y, loss="cross_entropy", lr=0.1, rho=-1.0)
    with pytest.raises(ValueError, match="loss"):
        msa.MSA(net, X, y, loss="hinge", lr=0.1)
    with pytest.raises(ValueError, match="binary"):
        msa.StraightThrough(list(net.parameters()), binary=[], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        msa.StraightThrough(list(net.parameters()), binary=[net.field.linear_parts()], lr=0.0)
    with pytest.raises(TypeError, match="net"):
        msa.MSA(lib.ODENet(width=3, depth=2, seed=[0, 1]), X, y, loss="cross_entropy", lr=0.1)
