"""The ODE network: with h = 1 and Euler it is the ResNet, its gradients are right
(torch.autograd.gradcheck in float64), members are the networks of their seeds, field objects
compose with it, and bad arguments are refused."""
import pytest
import torch
from torch.func import functional_call

from lib import ODENet
from lib.fields import FIELDS, GradientField, make_field
from lib.hamiltonian import HamiltonianField, SecondOrderField
from lib.losses import cross_entropy
from lib.tableaux import ButcherTableau

DT = torch.float64
EPS = torch.finfo(DT).eps


def test_h_one_euler_is_exactly_the_hand_written_residual_network(points):
    """depth 5, T = None: h = 1 and z^{k+1} = z^k + tanh(A^k z^k + b^k), the ResNet."""
    net = ODENet(width=3, depth=5, method="euler", activation="tanh", seed=1).double()
    assert net.h == 1.0
    x, _ = points(6)
    z = torch.cat([x, torch.zeros(len(x), 1, dtype=DT)], 1)
    A, b = net.field.linear_parts().detach(), net.field.biases().detach()
    for k in range(5):
        z = z + torch.tanh(A[k] @ z.T + b[k][:, None]).T
    with torch.no_grad():   # the same arithmetic in another operation order: a few ulps apart
        assert torch.allclose(net.features(x), z, rtol=4 * EPS, atol=4 * EPS)
        W, w0 = net.classifier.matrix(), net.classifier.bias()
        assert torch.allclose(net(x), (z @ W.T)[:, 0] + w0, rtol=8 * EPS, atol=8 * EPS)


def test_step_size_is_T_over_K_and_enters_the_step(points):
    """h = T / K and each Euler layer adds h sigma(A^k z + b^k)."""
    net = ODENet(width=2, depth=4, T=2.0, method="euler", activation="relu", seed=2).double()
    assert net.h == 0.5 and net.T == 2.0
    x, _ = points(6)
    z = x.clone()
    A, b = net.field.linear_parts().detach(), net.field.biases().detach()
    for k in range(4):
        z = z + 0.5 * torch.relu(z @ A[k].T + b[k])
    with torch.no_grad():
        assert torch.allclose(net.features(x), z, rtol=0, atol=1e-14)


def test_trajectory_shape_first_and_last_state(points):
    """trajectory is [K+1, n, width], from lift(x) to the features."""
    net = ODENet(width=4, depth=6, T=3.0, method="rk4", seed=3).double()
    x, _ = points(7)
    with torch.no_grad():
        traj = net.trajectory(x)
        assert traj.shape == (7, 7, 4)
        assert torch.equal(traj[0], net.lift(x))
        assert torch.equal(traj[-1], net.features(x))


def test_lift_pads_with_zeros(points):
    """The lift pads the inputs with zeros up to the width."""
    net = ODENet(width=5, depth=2)
    x, _ = points(3, dtype=torch.float32)
    z = net.lift(x)
    assert z.shape == (3, 5)
    assert torch.equal(z[:, :2], x) and torch.equal(z[:, 2:], torch.zeros(3, 3))
    assert torch.equal(ODENet(width=2, depth=2).lift(x), x)


def test_identity_activation_gives_the_affine_flow(points):
    """With sigma = identity and Euler, ``z^{k+1} = (I + h A^k) z^k + h b^k``."""
    net = ODENet(width=2, depth=3, T=1.5, activation="identity", seed=4).double()
    x, _ = points(6)
    z = x
    for A, b in zip(net.field.linear_parts().detach(), net.field.biases().detach()):
        z = z @ (torch.eye(2, dtype=DT) + 0.5 * A).T + 0.5 * b
    with torch.no_grad():
        assert torch.allclose(net.features(x), z, rtol=0, atol=1e-14)


def test_same_seed_same_parameters_other_seed_other_parameters():
    """Equal seeds give equal parameters, other seeds other ones."""
    a, b, c = ODENet(width=3, depth=4, seed=7), ODENet(width=3, depth=4, seed=7), ODENet(width=3, depth=4, seed=8)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), name
        if name != "classifier.w0":            # the bias starts at zero for every seed
            assert not torch.equal(p, r), name


def test_seed_does_not_depend_on_the_global_generator():
    """The seed alone fixes the parameters, whatever the global generator's state."""
    torch.manual_seed(123)
    a = ODENet(width=3, depth=4, seed=5)
    torch.manual_seed(456)
    b = ODENet(width=3, depth=4, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_parameter_shapes_per_layer():
    """One A^k [d, d] and b^k [d] per layer; one logit's w [d] and w0 []."""
    net = ODENet(width=3, depth=4)
    assert net.field.linear_parts().shape == (4, 3, 3) and net.field.biases().shape == (4, 3)
    assert [p.shape for p in net.field.stacks().values()] == [(4, 3, 3), (4, 3)]
    assert len(net.field.thetas()) == 4
    assert net.classifier.matrix().shape == (1, 3) and net.classifier.bias().shape == ()


def test_two_and_several_classes(points):
    """Two classes: one logit and its sign; more: one logit per class and argmax."""
    x, _ = points(5, dtype=torch.float32)
    two = ODENet(width=3, depth=2)
    assert two(x).shape == (5,)
    assert set(two.predict(x).tolist()) <= {0, 1}
    assert torch.equal(two.predict(x), (two(x) > 0).long())
    three = ODENet(width=3, depth=2, classes=3, seed=1)
    logits = three(x)
    assert logits.shape == (5, 3)
    assert three.classifier.matrix().shape == (3, 3) and three.classifier.bias().shape == (3,)
    features = three.features(x)
    torch.testing.assert_close(logits, features @ three.classifier.matrix().T
                               + three.classifier.bias(), rtol=0, atol=1e-6)
    assert torch.equal(three.predict(x), logits.argmax(1))


def test_network_follows_the_dtype_of_its_parameters(points):
    """A float64 network computes in float64."""
    net = ODENet(width=3, depth=2).double()
    assert net(points(6)[0]).dtype == DT


def _gradcheck(net, x):
    names = [n for n, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())

    def logits(*values):
        return functional_call(net, dict(zip(names, values)), (x,))

    return torch.autograd.gradcheck(logits, params, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("method", ["euler", "midpoint", "kutta3", "rk4"])
@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_gradcheck_all_parameters(points, method, activation):
    """Autograd's gradient in every parameter agrees with finite differences."""
    net = ODENet(width=3, depth=3, T=1.0, method=method, activation=activation, seed=6).double()
    assert _gradcheck(net, points(4, seed=1)[0])


def test_gradcheck_with_respect_to_the_input_several_classes(points):
    """Autograd's gradient in the input agrees with finite differences (three classes)."""
    net = ODENet(width=3, depth=2, T=1.0, method="heun", classes=3, seed=9).double()
    x = points(3, seed=2)[0].requires_grad_(True)
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
    """Each bad constructor argument is refused with an error naming it."""
    with pytest.raises(error, match=message):
        ODENet(**kwargs)


@pytest.mark.parametrize("x, error", [
    (torch.zeros(4, 3), ValueError),
    (torch.zeros(4), ValueError),
    (torch.zeros(2, 4, 2), ValueError),
    ([[0.0, 0.0]], TypeError),
])
def test_bad_input_shape_is_refused(x, error):
    """Inputs of the wrong shape or type are refused."""
    net = ODENet(width=3, depth=2)
    with pytest.raises(error, match="x must"):
        net(x)


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("classes", [2, 3])
def test_each_member_is_the_network_of_its_seed(points, field, classes):
    """Before training, member s holds exactly the parameters of the network seeded seeds[s];
    its features agree to a few ulps (a batched and a single matrix product may round
    differently on another CPU), and its gradient to round-off."""
    seeds = [4, 0, 7]
    kwargs = dict(width=3, depth=4, T=2.0, method="rk4", field=field, classes=classes)
    members = ODENet(seed=seeds, **kwargs).double()
    assert members.members == 3 and members.seeds == tuple(seeds)
    X = torch.stack([points(6, seed=s)[0] for s in seeds])
    y = torch.randint(0, classes, (3, 6), generator=torch.Generator().manual_seed(0))
    cross_entropy(members(X), y).sum().backward()
    for i, s in enumerate(seeds):
        alone = ODENet(seed=s, **kwargs).double()
        one = members.member(i)
        assert one.members is None
        for (name, p), q in zip(one.named_parameters(), alone.parameters()):
            assert torch.equal(p, q), name
        with torch.no_grad():
            together, single = members.features(X)[i], alone.features(X[i])
            assert torch.allclose(together, single, rtol=0, atol=8 * EPS * single.abs().max())
        cross_entropy(alone(X[i]), y[i]).backward()
        grads = dict(members.named_parameters())
        for name, q in alone.named_parameters():
            g = grads[name].grad[:, i] if name.startswith("field") else grads[name].grad[i]
            assert torch.allclose(g, q.grad, rtol=0, atol=64 * EPS * q.grad.abs().max()), name


def test_members_share_inputs_of_shape_n_by_2_and_refuse_others(points):
    """Members take one data set per member or one shared [n, 2] set; others are refused."""
    net = ODENet(width=3, depth=2, seed=[0, 1])
    x, _ = points(5, dtype=torch.float32)
    assert net(x).shape == (2, 5) and net.trajectory(x).shape == (3, 2, 5, 3)
    assert torch.equal(net(x), net(torch.stack([x, x])))
    with pytest.raises(ValueError, match=r"x must have shape \[n, 2\] or \[2, n, 2\]"):
        net(torch.zeros(3, 5, 2))
    with pytest.raises(ValueError, match="no members"):
        ODENet(width=3, depth=2).member(0)
    with pytest.raises(ValueError, match="member index"):
        net.field.member(2)
    with pytest.raises(TypeError, match="seed must be an int or a non-empty sequence"):
        ODENet(seed=[])
    with pytest.raises(TypeError, match="seed must be"):
        ODENet(seed=[0, 1.5])


def test_a_field_object_is_accepted_and_must_agree_with_the_arguments():
    """A VectorField object sets width, depth and members; disagreeing arguments are refused."""
    field = GradientField(3, 5, "relu", generator=torch.Generator().manual_seed(1))
    net = ODENet(field=field, T=2.0)
    assert net.field is field and net.width == 3 and net.depth == 5 and net.h == 0.4
    assert ODENet(width=3, depth=5, activation="relu", field=make_field("gradient", 3, 5, "relu"))
    with pytest.raises(ValueError, match="depth = 4 disagrees"):
        ODENet(field=field, depth=4)
    with pytest.raises(ValueError, match="members=None but seed gives 2"):
        ODENet(field=field, seed=[0, 1])
    with pytest.raises(TypeError, match="field must be a name or a VectorField"):
        ODENet(field=3)



def test_a_hamiltonian_network_is_told_by_its_field(points):
    """A network is Hamiltonian when its field is a HamiltonianField: it lifts to (z^0, 0) and
    its classifier reads z^K of the pair."""
    net = ODENet(width=3, depth=2, field=SecondOrderField, method="stormer_verlet").double()
    assert isinstance(net.field, HamiltonianField)
    assert not isinstance(ODENet(width=3, depth=2).field, HamiltonianField)
    x, _ = points(4)
    z0, p0 = net.lift(x)
    assert torch.equal(z0[:, :2], x) and torch.equal(p0, torch.zeros_like(z0))
    zK, _ = net.final_state(x)
    assert torch.equal(net.features(x), zK) and torch.equal(net(x), net.classifier(zK))


def test_linear_lift_is_P_x_and_lets_the_width_be_smaller(points):
    """lift="linear" gives z^0 = P x (per member with members); the padding lift needs
    width >= in_features; other lifts are refused."""
    net = ODENet(width=2, depth=2, in_features=5, lift="linear", seed=1).double()
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(2), dtype=DT)
    P = net.linear_lift.matrix().detach()
    assert P.shape == (2, 5)
    torch.testing.assert_close(net.lift(x), x @ P.T, rtol=0, atol=4 * EPS)
    many = ODENet(width=2, depth=2, in_features=5, lift="linear", seed=[1, 2]).double()
    assert many.linear_lift.matrix().shape == (2, 2, 5)
    assert torch.equal(many.member(0).linear_lift.matrix(), net.linear_lift.matrix())
    assert torch.equal(many.member(0)(x), net(x))
    with pytest.raises(ValueError, match="width must be >= in_features = 5"):
        ODENet(width=2, depth=2, in_features=5)
    with pytest.raises(ValueError, match="lift must be 'pad' or 'linear'"):
        ODENet(width=3, depth=2, lift="learned")
