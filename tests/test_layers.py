"""The layer map (lib.layers.Layer, ODENet.layer/layers/states/batched_layers/refined): the
layers compose to the network, their variants (inverse, backwards, partial, linearised) are
the steps they claim to be, and a network's depth and step are derived, not stored."""
import pytest
import torch

from lib import state as tree
from lib.fields import ResNetField
from lib.hamiltonian import CoupledField, GeneralHamiltonianField, SecondOrderField
from lib.layers import Layer
from lib.tableaux import METHODS, PAIRS

F64 = torch.float64
EPS = torch.finfo(F64).eps

NETWORKS = [("resnet", "euler"), ("gradient", "heun"), ("antisymmetric", "rk4"),
            (SecondOrderField, "stormer_verlet"), (GeneralHamiltonianField, "symplectic_euler"),
            (CoupledField, "rk4")]
IDS = [f"{f if isinstance(f, str) else f.__name__}-{m}" for f, m in NETWORKS]


def same_state(a, b) -> bool:
    """Bitwise equality of two states of one kind."""
    return (type(a) is type(b)
            and all(torch.equal(u, v) for u, v in zip(tree.components(a), tree.components(b))))


@pytest.mark.parametrize("members", [None, 2])
@pytest.mark.parametrize("field, method", NETWORKS, ids=IDS)
def test_layers_compose_bitwise_to_the_final_state(small_net, points, field, method, members):
    """y^K = layer(K-1)(...layer(0)(lift(x))) exactly, for tensor and pair states, members too."""
    net = small_net(method=method, field=field, members=members)
    x, _ = points(7)
    state = net.lift(x)
    for k in range(net.depth):
        state = net.layer(k)(state)
    assert same_state(state, net.final_state(x))
    for k, layer in enumerate(net.layers()):
        assert isinstance(layer, Layer) and layer.method is net.tableau
        assert layer.t == net.layer(k).t == k * net.h and layer.h == net.h
        assert all(torch.equal(a, b) for a, b in zip(layer.theta, net.field.layer(k)))


@pytest.mark.parametrize("field, method", NETWORKS, ids=IDS)
def test_states_and_trajectory_agree(small_net, points, field, method):
    """states(x) = [lift(x), ..., final_state(x)] and trajectory(x) is their joined stack."""
    net = small_net(method=method, field=field)
    x, _ = points(5)
    states = net.states(x)
    assert len(states) == net.depth + 1
    assert same_state(states[0], net.lift(x)) and same_state(states[-1], net.final_state(x))
    for k in range(net.depth):
        assert same_state(states[k + 1], net.layer(k)(states[k]))
    traj = net.trajectory(x)
    width = 2 * net.width if isinstance(states[0], tuple) else net.width
    assert traj.shape == (net.depth + 1, 5, width)
    for k, state in enumerate(states):
        assert torch.equal(traj[k], tree.join(state))


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("cls", [SecondOrderField, GeneralHamiltonianField, CoupledField])
def test_inverse_inverts_a_symplectic_layer_to_round_off(small_net, points, name, cls):
    """layer.inverse() is Phi_h^(-1): both compositions give back the state to a few ulps."""
    net = small_net(method=name, field=cls, depth=5, T=3.0)
    x, _ = points(20)
    with torch.no_grad():
        states = net.states(x)
    for layer, y in zip(net.layers(), states):
        layer = layer.with_theta(p.detach() for p in layer.theta)
        inverse = layer.inverse()
        assert inverse.t == layer.t + layer.h and inverse.h == -layer.h
        assert inverse.method is layer.method.adjoint
        scale = max(float(c.abs().max()) for c in layer(y))
        for back in (inverse(layer(y)), layer(inverse(y))):
            assert max(float((b - c).abs().max()) for b, c in zip(back, y)) <= 8 * EPS * scale
        # and it is not the identity: the layer moves the state
        assert max(float((a - c).abs().max()) for a, c in zip(layer(y), y)) > 1e-3


@pytest.mark.parametrize("field, method", [("resnet", "euler"), ("gradient", "rk4"),
                                           (SecondOrderField, "rk4")])
def test_inverse_is_refused_for_a_runge_kutta_layer(small_net, field, method):
    """A Runge--Kutta layer's inverse is implicit: ValueError naming the symplectic pairs."""
    layer = small_net(method=method, field=field).layer(1)
    with pytest.raises(ValueError, match="no explicit inverse.*'stormer_verlet'"):
        layer.inverse()


def test_backwards_is_the_step_of_size_minus_h_from_t_plus_h(small_net, points):
    """backwards(): for Euler y - h f(y) from t + h; not the inverse (an O(h^2) defect)."""
    net = small_net(method="euler", T=2.0)
    x, _ = points(6)
    y = net.states(x)[2]
    layer = net.layer(2)
    back = layer.backwards()
    assert back.t == layer.t + layer.h and back.h == -layer.h and back.method is layer.method
    torch.testing.assert_close(back(y), y - net.h * layer.rate(y), rtol=0, atol=4 * EPS)
    defect = float((back(layer(y)) - y).detach().abs().max())
    assert 1e-4 < defect < net.h ** 2 * 10
    twice = back.backwards()
    assert twice.t == layer.t and twice.h == layer.h


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_partial_is_the_step_of_a_fraction_of_h(small_net, points, method):
    """partial(f): same start time, step f h; partial(1) is the layer; Euler's is y + f h f(y)."""
    net = small_net(method=method)
    x, _ = points(6)
    y = net.states(x)[1]
    layer = net.layer(1)
    part = layer.partial(0.25)
    assert part.t == layer.t and part.h == 0.25 * layer.h
    assert torch.equal(layer.partial(1.0)(y), layer(y))
    if method == "euler":
        torch.testing.assert_close(part(y), y + 0.25 * net.h * layer.rate(y), rtol=0, atol=4 * EPS)
    else:  # four quarter steps approach the full step only to O(h^5) of the method
        y4 = y
        for j in range(4):
            y4 = Layer(layer.field, layer.theta, layer.method, layer.t + j * part.h, part.h)(y4)
        assert 0 < float((y4 - layer(y)).detach().abs().max()) < 1e-3


@pytest.mark.parametrize("name", ["euler", "heun", "kutta3", "rk4", "rk38"])
@pytest.mark.parametrize("field", ["resnet", CoupledField])
def test_linearised_stages_are_the_stages_of_the_step(small_net, points, name, field):
    """linearised(y): the step's result and its stages (Y_i, f(Y_i)), Y_i = y + h sum a_ij k_j,
    each Y_i a fresh leaf whose evaluation keeps its graph (one vjp gives J_i^T P)."""
    tableau = METHODS[name]
    net = small_net(method=name, field=field)
    x, _ = points(5)
    y = net.states(x)[2]
    layer = net.layer(2)
    result, stages = layer.linearised(y)
    assert same_state(result, layer(y))
    assert len(stages) == tableau.stages
    ks = []
    for i, (Y, fY) in enumerate(stages):
        expected = y
        for j in range(i):
            expected = tree.tree_map(lambda e, k, a=tableau.a[i][j]: e + net.h * a * k,
                                     expected, ks[j])
        for a, b in zip(tree.components(Y), tree.components(expected)):
            torch.testing.assert_close(a, b, rtol=0, atol=8 * EPS)
        for c in tree.components(Y):
            assert c.is_leaf and c.requires_grad
        for c in tree.components(fY):
            assert c.grad_fn is not None
        rate = layer.rate(tree.detached(Y))
        assert same_state(tree.detached(fY), rate)
        ks.append(rate)
    Y, fY = stages[-1]
    grads = torch.autograd.grad(tree.components(fY), tree.components(Y),
                                tuple(torch.ones_like(c) for c in tree.components(fY)))
    assert all(g.shape == c.shape for g, c in zip(grads, tree.components(Y)))


def test_linearised_refuses_a_partitioned_pair(small_net, points):
    """A pair's stages are not one tableau's: ValueError."""
    net = small_net(method="stormer_verlet", field=SecondOrderField)
    with pytest.raises(ValueError, match="differentiate the whole step"):
        net.layer(0).linearised(net.lift(points(3)[0]))


class TimedField(ResNetField):
    """A non-autonomous ResNet field f(t, z) = tanh(A z + b) + t, to see the layer's time."""

    def vector_field(self, theta):
        return lambda t, z: self(z, theta) + t


@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_layer_k_starts_at_time_k_h(small_net, points, method):
    """Layer k steps from t_k = k h: its field sees that time (and midpoint's t_k + h/2)."""
    net = small_net(method=method, field=TimedField, depth=4, T=2.0)
    x, _ = points(5)
    h = net.h
    for k, y in enumerate(net.states(x)[:-1]):
        layer = net.layer(k)
        assert layer.t == k * h
        f = layer.rate
        if method == "euler":
            expected = y + h * (f(y) + k * h)
        else:
            expected = y + h * (f(y + h / 2 * (f(y) + k * h)) + k * h + h / 2)
        torch.testing.assert_close(layer(y), expected, rtol=0, atol=8 * EPS)


def test_rate_with_theta_and_leaves(small_net, points):
    """rate is field(state, theta); with_theta swaps the parameters; leaves makes fresh leaves."""
    net = small_net()
    x, _ = points(4)
    y = net.lift(x)
    layer = net.layer(1)
    assert torch.equal(layer.rate(y), net.field(y, net.field.layer(1)))
    other = layer.with_theta(net.field.layer(3))
    assert other.t == layer.t and other.h == layer.h
    assert torch.equal(other(y), net.layer(3)(y))      # an autonomous field: theta decides
    assert not torch.equal(other(y), layer(y))
    leaves = layer.leaves()
    for p, q in zip(leaves.theta, layer.theta):
        assert p.is_leaf and p.requires_grad and torch.equal(p, q)
    grads = torch.autograd.grad(leaves(y).sum(), leaves.theta)
    reference = torch.autograd.grad(net.layer(1)(y).sum(), tuple(net.field.stacks().values()))
    for g, r in zip(grads, reference):
        torch.testing.assert_close(g, r[1], rtol=0, atol=0)


def test_layer_index_is_checked(small_net):
    """A layer index outside 0..K-1 (or a bool) is refused, with or without parameters."""
    net = small_net(depth=4)
    for k in (4, -1, True):   # True is an int to Python, and indexes a tensor as a new axis
        with pytest.raises(ValueError, match=r"layer index in 0..3"):
            net.layer(k)
        with pytest.raises(ValueError, match=r"layer index in 0..3"):
            net.layer(k, net.field.layer(0))


@pytest.mark.parametrize("field, method", [("resnet", "rk4"), (SecondOrderField, "stormer_verlet")])
def test_refined_is_a_new_network_with_m_times_the_layers(small_net, points, field, method):
    """refined(m): depth m K, step h / m, the same T, theta(t) and classifier; self unchanged."""
    net = small_net(method=method, field=field, depth=3, T=1.5)
    before = {name: p.clone() for name, p in net.named_parameters()}
    fine = net.refined(4)
    assert fine is not net and fine.field is not net.field
    assert fine.depth == 12 and fine.h == net.h / 4 and fine.T == net.T
    assert fine.tableau == net.tableau
    assert net.depth == 3 and net.h == 0.5
    assert all(torch.equal(p, before[name]) for name, p in net.named_parameters())
    for k in range(12):
        assert all(torch.equal(a, b) for a, b in zip(fine.field.layer(k), net.field.layer(k // 4)))
    assert all(torch.equal(p, q) for p, q in zip(fine.classifier.parameters(),
                                                 net.classifier.parameters()))
    x, _ = points(6)
    assert same_state(net.refined(1).final_state(x), net.final_state(x))
    with pytest.raises(ValueError, match="m must be a positive integer"):
        net.refined(0)


def test_depth_and_h_are_derived_and_cannot_be_set(small_net):
    """depth is the field's layer count and h = T / depth; neither can be assigned."""
    net = small_net(depth=4, T=2.0)
    assert net.depth == net.field.layers == 4 and net.h == 0.5
    with pytest.raises(AttributeError):
        net.depth = 8
    with pytest.raises(AttributeError):
        net.h = 0.1
    net.field.repeat_layers(2)   # the field is the one place the depth is kept
    assert net.depth == 8 and net.h == 0.25


@pytest.mark.parametrize("field, method", NETWORKS, ids=IDS)
def test_batched_layers_equal_the_layers_one_by_one(small_net, points, field, method):
    """batched_layers(stacked thetas) maps [K, n, d] states row k by layer k, to round-off."""
    net = small_net(method=method, field=field, depth=5)
    x, _ = points(6)
    states = net.states(x)
    batched = net.batched_layers(tuple(net.field.stacks().values()))
    out = batched(tree.stack(states[:-1]))
    expected = tree.stack(states[1:])
    for a, b in zip(tree.components(out), tree.components(expected)):
        assert a.shape == (5, 6, net.width)
        torch.testing.assert_close(a, b, rtol=0, atol=8 * EPS * float(b.detach().abs().max()))
    with pytest.raises(ValueError, match="net.member"):
        small_net(members=2).batched_layers(tuple(net.field.stacks().values()))
