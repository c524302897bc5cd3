"""The Hamiltonian's gradient of chapter 2 (lib.pontryagin): the discrete dH/dtheta at the layer
times is the L^2 gradient of the objective (against central differences along a random
direction), the weight penalty adds rho theta to it, and layer_norms is the norm per layer."""
import pytest
import torch

from lib.gradients import layer_keys
from lib.losses import LOSSES
from lib.pontryagin import hamiltonian_gradient, layer_norms
from lib.regularisers import time_smoothness, weight_penalty


def objective(net, x, y, regulariser):
    E = LOSSES["cross_entropy"](net(x), y)
    return E if regulariser is None else E + regulariser(net)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("regulariser", [None, weight_penalty(0.3), time_smoothness(0.2)],
                         ids=["none", "weight_penalty", "time_smoothness"])
def test_hamiltonian_gradient_is_the_l2_gradient(points, small_net, method, regulariser):
    """h sum_k <dH/dtheta(t_k) + dR/dtheta(t_k), dtheta^k> is the derivative of the objective
    along dtheta (central differences): the discrete dH/dtheta is the L^2 gradient."""
    net = small_net(method, depth=5, seed=6)
    x, y = points(20, 6)
    G = hamiltonian_gradient(net, x, y, regulariser)
    assert list(G) == layer_keys(net)
    g = torch.Generator().manual_seed(1)
    stacks = dict(net.named_parameters())
    direction = {k: torch.randn(stacks[k].shape, generator=g, dtype=torch.float64) for k in G}
    predicted = net.h * sum(float((G[k] * direction[k]).sum()) for k in G)
    eps = 1e-6
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            for k in G:
                stacks[k].add_(direction[k], alpha=sign * eps)
            values.append(float(objective(net, x, y, regulariser)))
            for k in G:
                stacks[k].sub_(direction[k], alpha=sign * eps)
    assert (values[0] - values[1]) / (2 * eps) == pytest.approx(predicted, rel=1e-6, abs=1e-11)


def test_weight_penalty_adds_rho_theta_to_the_hamiltonian_gradient(points, small_net):
    """With R = weight_penalty(rho), dH/dtheta + dR/dtheta - dH/dtheta = rho theta(t_k)."""
    net = small_net("heun", depth=3, width=2, T=1.5, seed=2)
    x, y = points(10, 2)
    plain = hamiltonian_gradient(net, x, y)
    penalised = hamiltonian_gradient(net, x, y, weight_penalty(0.7))
    for key, theta in net.field.stacks().items():
        assert torch.allclose(penalised[f"field.{key}"] - plain[f"field.{key}"], 0.7 * theta,
                              rtol=1e-12, atol=1e-15)


def test_layer_norms_and_bad_regularisers(points, small_net):
    """layer_norms is the Euclidean norm of each layer's entries over all stacks; a regulariser
    that is not a 0-dim tensor is refused."""
    g = {"a": torch.tensor([[3.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([[4.0], [0.0]])}
    assert torch.equal(layer_norms(g), torch.tensor([5.0, 1.0]))
    with pytest.raises(ValueError, match="stacked per-layer tensors"):
        layer_norms({})
    net = small_net(depth=2, width=2)
    with pytest.raises(ValueError, match="0-dim tensor"):
        hamiltonian_gradient(net, *points(4, 0),
                             regulariser=lambda n: n.field.biases().sum(0))
