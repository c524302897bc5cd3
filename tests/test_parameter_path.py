"""The parameters as one function of time (lib.parameter_path): the piecewise-constant theta(t)
as a matrix, its roughness (total variation) and the L^2 distance between two networks'
theta(t), by hand on chosen parameters and under refinement (ODENet.refined)."""
import pytest
import torch

import lib
from lib.parameter_path import parameter_path, path_distance, roughness
from lib.regularisers import time_smoothness





def test_parameter_path_is_the_layers_flattened(hand_net, small_net):
    """Row k holds layer k's A^k then b^k flattened; with members [K, S, P], detached."""
    path = parameter_path(hand_net())
    assert path.shape == (3, 6) and not path.requires_grad
    assert torch.equal(path[2], torch.tensor([2.0, 0, 0, 2, 2, -2], dtype=torch.float64))
    many = parameter_path(hand_net(members=2))
    assert many.shape == (3, 2, 6)
    assert torch.equal(many[1, 1], torch.tensor([2.0, 1, 1, 2, 2, 0], dtype=torch.float64))


def test_roughness_by_hand_and_its_bound(hand_net, small_net):
    """Two jumps of norm 2: roughness 4; Cauchy-Schwarz: roughness^2 <= (K-1) h R_h / lam."""
    assert roughness(hand_net()).item() == 4.0
    assert torch.equal(roughness(hand_net(members=2)),
                       torch.tensor([4.0, 4.0], dtype=torch.float64))
    net = small_net(depth=7, seed=3)
    lam = 0.3
    assert roughness(net) ** 2 <= (net.depth - 1) * net.h * time_smoothness(lam)(net) / lam


def test_roughness_of_a_refined_network_is_unchanged(small_net):
    """Refining repeats each theta^k: the total variation of theta(t) stays, R_h does not."""
    net = small_net(width=2, depth=5, T=3.0, seed=4)
    fine = net.refined(4)
    assert roughness(fine).item() == pytest.approx(roughness(net).item(), rel=1e-14)
    assert time_smoothness(1.0)(fine).item() > 2 * time_smoothness(1.0)(net).item()


def test_path_distance_by_hand_and_of_refinements(hand_net, small_net):
    """The coarse network's theta(t) against a fine one that differs by c on one fine step of
    length h_f: distance |c| sqrt(h_f); a refinement of the same theta(t) is at distance 0."""
    coarse = hand_net()
    fine = coarse.refined(2)
    assert path_distance(coarse, fine).item() == 0.0
    bias = fine.field.biases().detach().clone()
    bias[3, 0] += 2.0                    # h_f = 1/4: distance 2 * 1/2 = 1
    fine.field.set_affine(bias=bias)
    assert path_distance(coarse, fine).item() == 1.0
    members = hand_net(members=2)
    assert torch.equal(path_distance(members, members.refined(3)),
                       torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="multiple"):
        path_distance(coarse.refined(2), coarse.refined(3))
    with pytest.raises(ValueError, match="share T"):
        path_distance(coarse, lib.ODENet(width=2, depth=6, T=1.0).double())
    with pytest.raises(ValueError, match="members"):
        path_distance(coarse, members.refined(2))
    with pytest.raises(TypeError, match="coarse must be an ODENet"):
        path_distance(coarse.field, fine)
