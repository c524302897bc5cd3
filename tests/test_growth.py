"""lib.growth: the largest growth of perturbations, |d z^K / d z^0|_2, against autograd of the
whole network (torch.func.jacrev), against closed forms on the two controls of chapter 6 (a
constant symmetric J, where the eigenvalues are exact up to Euler's discretisation, and a
constant Jordan block, where they fail by the factor asinh(|c| T / 2) in e-folds), and
the growth of a Hamiltonian network's phase-space perturbations."""
import math

import pytest
import torch

import lib
from lib import growth as gr
from lib.examples import constant_network, markus_yamabe_network
from lib.hamiltonian import GeneralHamiltonianField, SecondOrderField, tangent_growth

F64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_flow_jacobians_are_autograds_jacobians_of_the_whole_network(method):
    """Phi^k = d z^k / d z^0 [K+1, n, d, d], Phi^0 = I, equal to jacrev of the network."""
    net = lib.ODENet(width=2, depth=5, T=3.0, method=method, seed=1).double()
    x = torch.randn(7, 2, generator=gen(2), dtype=F64)
    jac = gr.flow_jacobians(net, x)
    assert jac.shape == (6, 7, 2, 2) and not jac.requires_grad
    torch.testing.assert_close(jac[0], torch.eye(2, dtype=F64).expand(7, 2, 2), rtol=0, atol=0)
    for k in range(6):
        def state_k(z0, k=k):
            return net.trajectory(z0[None])[k, 0]
        reference = torch.stack([torch.func.jacrev(state_k)(z) for z in x]).detach()
        torch.testing.assert_close(jac[k], reference, rtol=1e-12, atol=1e-13)


def test_largest_growth_is_the_largest_over_directions_and_random_is_below():
    """|Phi^K|_2 is the largest |Phi^K u| over a fine search of unit directions; the random
    direction's growth lies below it."""
    net = lib.ODENet(width=2, depth=6, T=3.0, seed=4).double()
    x = torch.randn(5, 2, generator=gen(5), dtype=F64)
    jac = gr.flow_jacobians(net, x)[-1]
    angles = torch.linspace(0, math.pi, 20001, dtype=F64)
    u = torch.stack([angles.cos(), angles.sin()])                     # unit directions
    by_search = (jac @ u).norm(dim=1).amax(-1)
    largest = gr.largest_growth(net, x)[-1]
    assert bool((by_search <= largest * (1 + 1e-12)).all())
    torch.testing.assert_close(by_search, largest, rtol=1e-7, atol=0)
    c = gr.growth_comparison(net, x, generator=gen(6))
    assert bool((c.random <= c.largest * (1 + 1e-12)).all())
    torch.testing.assert_close(c.largest, gr.largest_growth(net, x))


def test_symmetric_control_eigenvalues_exact_up_to_eulers_error():
    """J symmetric and constant: |(I + hJ)^K|_2 = (1 + h lambda_max)^K (for h small), and the
    eigenvalues predict e^(T lambda_max): the error is K log(1 + h lambda) - T lambda, O(h)."""
    S = torch.tensor([[0.3, 0.2], [0.2, -0.5]], dtype=F64)
    top = float(torch.linalg.eigvalsh(S)[-1])
    T = 10.0
    x = torch.randn(9, 2, generator=gen(7), dtype=F64)
    errors = []
    for K in (40, 80, 160):
        c = gr.growth_comparison(constant_network(S, T, K), x, generator=gen(8))
        error = c.largest[-1].log() - c.eigenvalues[-1].log()
        h = T / K
        euler = K * math.log(1 + h * top) - T * top
        torch.testing.assert_close(error, torch.full_like(error, euler), rtol=0, atol=1e-13)
        torch.testing.assert_close(c.log_norms, c.eigenvalues, rtol=1e-13, atol=0)
        assert bool((c.largest <= c.bound[:, None] * (1 + 1e-13)).all())
        assert float(c.spectra.departure.max()) < 1e-7
        errors.append(abs(euler))
    assert errors[0] / errors[1] == pytest.approx(2, rel=0.05)      # first order in h
    assert errors[1] / errors[2] == pytest.approx(2, rel=0.05)
    # the random direction is no measure of the largest growth, even here
    random_error = (c.random[-1].log() - c.eigenvalues[-1].log()).abs().median()
    assert float(random_error) > 2 * errors[-1]


@pytest.mark.parametrize("a, c", [(-1.0, 1.0), (-0.1, 1.0), (0.2, -0.5)])
def test_jordan_control_fails_by_the_closed_form_factor(a, c):
    """J = [[a, c], [0, a]]: the largest growth is |(I + hJ)^K|_2 and beats the eigenvalues by
    asinh(|c| T / 2) e-folds up to O(h); the departure from normality is |c|."""
    J = torch.tensor([[a, c], [0.0, a]], dtype=F64)
    T = 4.0
    exact = torch.linalg.matrix_norm(torch.linalg.matrix_exp(T * J), ord=2) / math.exp(a * T)
    assert gr.jordan_growth(c, T) == pytest.approx(float(exact), rel=1e-13)
    x = torch.randn(3, 2, generator=gen(9), dtype=F64)
    gaps = []
    for K in (400, 800):
        net = constant_network(J, T, K)
        g = gr.growth_comparison(net, x, generator=gen(10))
        power = torch.linalg.matrix_power(torch.eye(2, dtype=F64) + net.h * J, K)
        torch.testing.assert_close(g.largest[-1], torch.linalg.matrix_norm(power, ord=2)
                                   .expand(3), rtol=1e-12, atol=0)
        factor = g.largest[-1] / g.eigenvalues[-1]
        gaps.append(abs(float(factor[0].log()) - math.log(gr.jordan_growth(c, T))))
        torch.testing.assert_close(g.spectra.departure, torch.full_like(g.spectra.departure,
                                                                        abs(c)))
    assert gaps[1] < 0.6 * gaps[0] and gaps[1] < 0.02                 # O(h) to the flow


def test_markus_yamabe_largest_growth_attains_the_log_norm_bound():
    """alpha = -1/4, mu_2 = 1/2 for every frozen A(t); the flow grows like e^(t/2)."""
    net = markus_yamabe_network(T=4.0, depth=400)
    c = gr.growth_comparison(net, torch.randn(4, 2, generator=gen(11), dtype=F64))
    T = float(c.t[-1])
    assert bool((c.largest <= c.log_norms * (1 + 1e-6)).all())
    assert float(c.largest[-1].min()) > 0.99 * math.exp(T / 2)
    assert float(c.largest[-1].min()) > 10 * math.exp(-T / 4)         # eigenvalues no bound


def test_bad_input():
    """Bad numbers, networks with members and non-tensor inputs are refused."""
    with pytest.raises(ValueError, match="T must"):
        gr.jordan_growth(1.0, -1.0)
    with pytest.raises(ValueError, match="c must"):
        gr.jordan_growth(float("nan"), 1.0)
    with pytest.raises(ValueError, match="members"):
        gr.largest_growth(lib.ODENet(width=2, depth=2, seed=[0, 1]), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="x must"):
        gr.largest_growth(lib.ODENet(width=2, depth=2), [[0.0, 0.0]])


@pytest.mark.parametrize("cls, method", [(SecondOrderField, "stormer_verlet"),
                                         (GeneralHamiltonianField, "rk4")])
def test_growth_of_a_hamiltonian_network_is_its_tangent_growth(cls, method):
    """On the pair state (z, p): Phi^k is [K+1, n, 2d, 2d], jacrev of y^0 -> y^k, and its norm
    is lib.hamiltonian.tangent_growth (forward mode); a symplectic Phi has det 1."""
    net = lib.ODENet(width=2, depth=5, T=2.5, method=method, field=cls, seed=2).double()
    x = torch.randn(4, 2, generator=gen(3), dtype=F64)
    jac = gr.flow_jacobians(net, x)
    assert jac.shape == (6, 4, 4, 4)

    def flow(y):
        state = (y[None, :2], y[None, 2:])
        for layer in net.layers():
            state = layer(state)
        return torch.cat(state, -1)[0]

    y0 = torch.cat(net.lift(x), -1)
    reference = torch.func.vmap(torch.func.jacrev(flow))(y0).detach()
    torch.testing.assert_close(jac[-1], reference, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(gr.largest_growth(net, x), tangent_growth(net, x),
                               rtol=1e-12, atol=0)
    dets = torch.linalg.det(jac[-1])
    if method == "stormer_verlet":
        torch.testing.assert_close(dets, torch.ones(4, dtype=F64), rtol=0, atol=1e-12)
    else:
        assert float((dets - 1).abs().max()) > 1e-6
    c = gr.growth_comparison(net, x, generator=gen(4))
    assert c.largest.shape == c.random.shape == c.eigenvalues.shape == (6, 4)
    assert bool((c.random <= c.largest * (1 + 1e-12)).all())
