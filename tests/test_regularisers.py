"""The regularisers of training (lib.regularisers), one value per member: time_smoothness is
the talk's R_h = lam h sum_k |(theta^{k+1} - theta^k) / h|^2 (written out by a loop and by hand
on chosen parameters), its gradient the discrete Laplacian; weight_penalty is
(rho / 2) (h sum_k |theta^k|^2 + |w|^2 + w0^2)."""
import pytest
import torch

from lib.hamiltonian import GeneralHamiltonianField
from lib.regularisers import time_smoothness, weight_penalty








def test_time_smoothness_of_constant_parameters_is_zero(small_net):
    """The same parameters in every layer: R_h = 0."""
    net = small_net(width=2)
    net.field.set_affine(net.field.linear_parts()[0], net.field.biases()[0])
    assert time_smoothness(1.0)(net).item() == 0.0
    assert time_smoothness(1.0)(small_net(width=2)).item() > 0.0


def test_time_smoothness_by_hand(hand_net, small_net):
    """Each jump theta^{k+1} - theta^k has A-part I and b-part (1, -1): |jump|^2 = 2 + 2 = 4.
    Two jumps, h = 1/2: R_h = lam h sum |jump / h|^2 = lam (1/2) 2 (4 / (1/4)) = 16 lam."""
    assert time_smoothness(0.25)(hand_net()).item() == 4.0
    assert torch.equal(time_smoothness(0.25)(hand_net(members=3)),
                       torch.tensor([4.0, 4.0, 4.0], dtype=torch.float64))


def test_time_smoothness_gradient_is_the_discrete_laplacian(small_net):
    """dR_h/dtheta^k = (2 lam / h) (2 theta^k - theta^{k-1} - theta^{k+1}), with one neighbour at
    the ends (the discrete -2 lam theta''); autograd agrees, and so do finite differences."""
    net = small_net(depth=6, seed=1)
    lam = 0.7
    time_smoothness(lam)(net).backward()
    stacks = net.field.stacks()
    for theta in stacks.values():
        p = theta.detach()
        neighbours = torch.zeros_like(p)
        neighbours[1:] += p[1:] - p[:-1]
        neighbours[:-1] += p[:-1] - p[1:]
        assert torch.allclose(theta.grad, 2 * lam / net.h * neighbours, rtol=1e-13, atol=1e-13)
    # R_h is quadratic, so a central difference is exact up to round-off
    for name, index in (("A", (2, 1, 0)), ("b", (5, 2)), ("b", (0, 0))):
        theta, values = stacks[name], []
        for step in (1e-3, -1e-3):
            with torch.no_grad():
                theta[index] += step
            values.append(time_smoothness(lam)(net).item())
            with torch.no_grad():
                theta[index] -= step
        assert (values[0] - values[1]) / 2e-3 == pytest.approx(theta.grad[index].item(), rel=1e-8)


def test_weight_penalty_is_its_formula_for_one_network_and_for_members(small_net):
    """(rho / 2) (h sum_k |A^k|^2 + |b^k|^2 + |w|^2 + w0^2), by hand, per member."""
    lam = 0.4
    R = weight_penalty(lam)
    net = small_net(seed=3, members=2)
    values = R(net).detach()
    assert values.shape == (2,)
    for s in range(2):
        one = net.member(s)
        A, b = one.field.linear_parts().detach(), one.field.biases().detach()
        w, w0 = (p.detach() for p in one.classifier.parameters())
        by_hand = 0.5 * lam * (one.h * float(A.square().sum() + b.square().sum())
                               + float(w.square().sum() + w0.square().sum()))
        assert float(R(one).detach()) == pytest.approx(by_hand, rel=1e-14)
        assert float(values[s]) == pytest.approx(by_hand, rel=1e-14)


def test_weight_penalty_counts_every_stacked_parameter(small_net):
    """On a field with four stacks (A1, b1, A2, b2) every one is penalised."""
    net = small_net(field=GeneralHamiltonianField, seed=5)
    field = sum(float(p.detach().square().sum()) for p in net.field.stacks().values())
    classifier = sum(float(p.detach().square().sum()) for p in net.classifier.parameters())
    assert len(net.field.stacks()) == 4
    expected = net.h * field + classifier
    assert float(weight_penalty(2.0)(net).detach()) == pytest.approx(expected, rel=1e-14)


def test_negative_weights_are_refused():
    """lam and rho must be finite and >= 0."""
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        time_smoothness(-1.0)
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        weight_penalty(-1.0)
    with pytest.raises(ValueError, match="rho"):
        weight_penalty(float("nan"))
