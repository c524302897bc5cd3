"""The ODE network: with h = 1 and Euler it is the ResNet, its gradients are right
(torch.autograd.gradcheck in float64), and bad arguments are refused."""
import pytest
import torch
from torch.func import functional_call

from lib import ODENet
from lib.tableaux import ButcherTableau

DT = torch.float64


def points(n=6, d=2, seed=0, dtype=DT):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_h_one_euler_is_exactly_the_hand_written_residual_network():
    net = ODENet(width=3, depth=5, method="euler", activation="tanh", seed=1).double()
    assert net.h == 1.0
    x = points()
    z = torch.cat([x, torch.zeros(len(x), 1, dtype=DT)], 1)
    A, b = net.field.A.detach(), net.field.b.detach()
    for k in range(5):
        z = z + torch.tanh(A[k] @ z.T + b[k][:, None]).T
    with torch.no_grad():
        assert torch.equal(net.features(x), z)
        assert torch.equal(net(x), z @ net.classifier.w + net.classifier.mu)


def test_step_size_is_T_over_K_and_enters_the_step():
    net = ODENet(width=2, depth=4, T=2.0, method="euler", activation="relu", seed=2).double()
    assert net.h == 0.5 and net.T == 2.0
    x = points()
    z = x.clone()
    A, b = net.field.A.detach(), net.field.b.detach()
    for k in range(4):
        z = z + 0.5 * torch.relu(z @ A[k].T + b[k])
    with torch.no_grad():
        assert torch.allclose(net.features(x), z, rtol=0, atol=1e-14)


def test_trajectory_shape_first_and_last_state():
    net = ODENet(width=4, depth=6, T=3.0, method="rk4", seed=3).double()
    x = points(n=7)
    with torch.no_grad():
        traj = net.trajectory(x)
        assert traj.shape == (7, 7, 4)
        assert torch.equal(traj[0], net.lift(x))
        assert torch.equal(traj[-1], net.features(x))


def test_lift_pads_with_zeros():
    net = ODENet(width=5, depth=2)
    x = points(n=3, dtype=torch.float32)
    z = net.lift(x)
    assert z.shape == (3, 5)
    assert torch.equal(z[:, :2], x) and torch.equal(z[:, 2:], torch.zeros(3, 3))
    assert torch.equal(ODENet(width=2, depth=2).lift(x), x)


def test_identity_activation_gives_the_affine_flow():
    """With sigma = identity and Euler, ``z^{k+1} = (I + h A^k) z^k + h b^k``."""
    net = ODENet(width=2, depth=3, T=1.5, activation="identity", seed=4).double()
    x = points()
    z = x
    for A, b in zip(net.field.A.detach(), net.field.b.detach()):
        z = z @ (torch.eye(2, dtype=DT) + 0.5 * A).T + 0.5 * b
    with torch.no_grad():
        assert torch.allclose(net.features(x), z, rtol=0, atol=1e-14)


def test_same_seed_same_parameters_other_seed_other_parameters():
    a, b, c = ODENet(width=3, depth=4, seed=7), ODENet(width=3, depth=4, seed=7), ODENet(width=3, depth=4, seed=8)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), name
        if name != "classifier.mu":            # the bias starts at zero for every seed
            assert not torch.equal(p, r), name


def test_seed_does_not_depend_on_the_global_generator():
    torch.manual_seed(123)
    a = ODENet(width=3, depth=4, seed=5)
    torch.manual_seed(456)
    b = ODENet(width=3, depth=4, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_parameter_shapes_per_layer():
    net = ODENet(width=3, depth=4)
    assert net.field.A.shape == (4, 3, 3) and net.field.b.shape == (4, 3)
    assert len(net.field.thetas()) == 4
    assert net.classifier.w.shape == (3,) and net.classifier.mu.shape == ()


def test_two_and_several_classes():
    x = points(n=5, dtype=torch.float32)
    two = ODENet(width=3, depth=2)
    assert two(x).shape == (5,)
    assert set(two.predict(x).tolist()) <= {0, 1}
    assert torch.equal(two.predict(x), (two(x) > 0).long())
    three = ODENet(width=3, depth=2, classes=3, seed=1)
    logits = three(x)
    assert logits.shape == (5, 3)
    assert three.classifier.w.shape == (3, 3) and three.classifier.mu.shape == (3,)
    assert torch.equal(three.predict(x), logits.argmax(1))


def test_network_follows_the_dtype_of_its_parameters():
    net = ODENet(width=3, depth=2).double()
    assert net(points()).dtype == DT


def _gradcheck(net, x):
    names = [n for n, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())

    def logits(*values):
        return functional_call(net, dict(zip(names, values)), (x,))

    return torch.autograd.gradcheck(logits, params, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("method", ["euler", "midpoint", "kutta3", "rk4"])
@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_gradcheck_all_parameters(method, activation):
    net = ODENet(width=3, depth=3, T=1.0, method=method, activation=activation, seed=6).double()
    assert _gradcheck(net, points(n=4, seed=1))


def test_gradcheck_with_respect_to_the_input_several_classes():
    net = ODENet(width=3, depth=2, T=1.0, method="heun", classes=3, seed=9).double()
    x = points(n=3, seed=2).requires_grad_(True)
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(width=1), ValueError, "width"),
    (dict(width=0), ValueError, "width"),
    (dict(depth=0), ValueError, "depth"),
    (dict(depth=2.5), ValueError, "depth"),
    (dict(T=0.0), ValueError, "T"),
    (dict(T=-1.0), ValueError, "T"),
    (dict(T=float("nan")), ValueError, "T"),
    (dict(method="rk5"), ValueError, "unknown method"),
    (dict(method=3), TypeError, "method"),
    (dict(activation="sigmoid"), ValueError, "unknown activation"),
    (dict(field="hamiltonian-typo"), ValueError, "unknown field"),
    (dict(classes=1), ValueError, "classes"),
    (dict(in_features=0), ValueError, "in_features"),
    (dict(method=ButcherTableau(a=[[0.5]], b=[1], c=[0.5], order=2)), ValueError, "implicit"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        ODENet(**kwargs)


@pytest.mark.parametrize("x, error", [
    (torch.zeros(4, 3), ValueError),
    (torch.zeros(4), ValueError),
    (torch.zeros(2, 4, 2), ValueError),
    ([[0.0, 0.0]], TypeError),
])
def test_bad_input_shape_is_refused(x, error):
    net = ODENet(width=3, depth=2)
    with pytest.raises(error, match="x must"):
        net(x)
