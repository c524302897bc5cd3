"""The bilinear invariant <p^k, dy^k> of chapter 3 (lib.bilinear): tangents against central
differences and torch.func.jvp of the whole forward map, costates against autograd's dE/dy^k,
and the conservation of their pairing by the exact adjoint (and not by other sweeps), on tensor
states and on the pair (z, p) of a Hamiltonian network."""
import pytest
import torch

from lib import state as tree
from lib.bilinear import bilinear_invariant, costates, tangents
from lib.examples import smooth_network
from lib.gradients import DTO, OTD, Backsolve
from lib.hamiltonian import GeneralHamiltonianField, SecondOrderField
from lib.integrators import rk_solve
from lib.losses import LOSSES
from lib.tableaux import METHODS

WITH_PARTNER = [name for name, t in METHODS.items() if all(b != 0 for b in t.b)]
HAMILTONIAN = [(SecondOrderField, "stormer_verlet"), (GeneralHamiltonianField, "stormer_verlet"),
               (SecondOrderField, "symplectic_euler"),
               (GeneralHamiltonianField, "symplectic_euler"), (SecondOrderField, "rk4")]
HAMILTONIAN_IDS = [f"{f.__name__}-{m}" for f, m in HAMILTONIAN]


def random_state(like, seed):
    """A random state of the kind and shape of ``like`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    return tree.tree_map(lambda c: torch.randn(c.shape, generator=g, dtype=torch.float64), like)


def forward_map(net):
    """``y^0 -> [y^0, ..., y^K]`` stacked, by lib.integrators.rk_solve with one field per layer
    (not through lib.layers), the parameters held fixed."""
    fields = [net.field.vector_field(tuple(p.detach() for p in theta))
              for theta in net.field.thetas()]
    return lambda y0: rk_solve(fields, y0, net.h, net.depth, net.tableau, trajectory=True)


def recorded_states(net, x):
    """``[y^0, ..., y^K]`` with ``y^0`` a leaf and every state kept in the graph, so that
    autograd gives ``dE/dy^k`` for each.  Each state is a copy whose only use is the next layer:
    a partitioned step returns its stage tensors (the ``p`` of symplectic Euler is the stage
    that also moves ``z``), and the gradient with respect to such a tensor would also count its
    use inside the step."""
    states = [tree.detached(net.lift(x), requires_grad=True)]
    for layer in net.layers():
        states.append(tree.tree_map(torch.clone, layer(states[-1])))
    return states


def autograd_costates(net, x, y):
    """dE/dy^k for k = 0..K by backpropagating E through the recorded states, stacked."""
    states = recorded_states(net, x)
    E = LOSSES["cross_entropy"](net.classifier(net.field.readout(states[-1])), y)
    parts = [c for s in states for c in tree.components(s)]
    grads = torch.autograd.grad(E, parts, materialize_grads=True)
    n = len(tree.components(states[0]))
    per_state = [grads[i:i + n] for i in range(0, len(grads), n)]
    return tree.stack([g[0] if n == 1 else tuple(g) for g in per_state])


def relative(a, b):
    """|a - b| / |b| over all components of two stacked states."""
    diff = sum(float((u - v).square().sum()) for u, v in zip(tree.components(a),
                                                             tree.components(b)))
    return (diff / sum(float(v.square().sum()) for v in tree.components(b))) ** 0.5


# --- tangents ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["euler", "midpoint", "rk38"])
def test_tangents_are_the_derivative_of_the_states(points, small_net, method):
    """dy^k is the central difference of the states in the direction dy^0."""
    net = small_net(method, seed=5)
    x, _ = points(8, 5)
    dz0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dz = tangents(net, x, dz0)
    assert dz.shape == (5, 8, 3) and torch.equal(dz[0], dz0)
    run, eps = forward_map(net), 1e-6
    with torch.no_grad():
        z0 = net.lift(x)
        central = (run(z0 + eps * dz0) - run(z0 - eps * dz0)) / (2 * eps)
    assert torch.allclose(dz, central, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("field, method", [("resnet", "rk4"), *HAMILTONIAN],
                         ids=["resnet-rk4", *HAMILTONIAN_IDS])
def test_tangents_are_the_jvp_of_the_whole_forward_map(points, small_net, field, method):
    """lib.bilinear.tangents (one jvp per layer) equals torch.func.jvp of the whole map
    y^0 -> (y^0, ..., y^K), on tensor states and on the pair (z, p)."""
    net = small_net(method, depth=6, field=field, seed=2)
    x, _ = points(9, 2)
    with torch.no_grad():
        y0 = net.lift(x)
    dy0 = random_state(y0, 1)
    dy = tangents(net, x, dy0)
    _, reference = torch.func.jvp(forward_map(net), (y0,), (dy0,))
    assert type(dy) is type(reference)
    assert all(u.shape == (7, 9, 3) for u in tree.components(dy))
    assert relative(dy, reference) <= 64 * torch.finfo(torch.float64).eps
    # negative control: another direction gives other tangents
    assert relative(tangents(net, x, random_state(y0, 2)), reference) > 0.1


# --- costates ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", WITH_PARTNER)
def test_partner_costates_are_the_gradients_of_the_states(points, small_net, method):
    """The costates of OTD()'s sweep are dE/dy^k, computed here by autograd."""
    net = small_net(method, seed=7)
    x, y = points(10, 7)
    reference = autograd_costates(net, x, y)
    p = costates(net, x, y)
    assert p.shape == reference.shape == (5, 10, 3)
    assert relative(p, reference) < 1e-13


@pytest.mark.parametrize("field, method", HAMILTONIAN, ids=HAMILTONIAN_IDS)
def test_hamiltonian_costates_are_the_gradients_of_the_states(points, small_net, field, method):
    """On a Hamiltonian network the costates of OTD() are the pairs (dE/dz^k, dE/dp^k) of
    autograd, p^K = (dE/dz^K, 0) included."""
    net = small_net(method, depth=5, field=field, seed=6)
    x, y = points(10, 6)
    reference = autograd_costates(net, x, y)
    p = costates(net, x, y, OTD())
    assert isinstance(p, tuple) and all(c.shape == (6, 10, 3) for c in p)
    assert not p[1][-1].any() and p[0][-1].any() and p[1][0].any()
    assert relative(p, reference) < 1e-13


# --- the invariant -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", WITH_PARTNER)
def test_the_partner_conserves_the_bilinear_invariant_and_other_sweeps_do_not(points, method):
    """<p^k, dy^k> is the same at every layer for OTD() (the partner), and drifts for the
    network's own tableau and for the black-box backsolve."""
    net = smooth_network(width=3, depth=8, T=2.0, method=method, seed=3)
    x, y = points(12, 3)
    dz0 = torch.randn(12, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def drift(strategy):
        values = bilinear_invariant(net, x, y, dz0, strategy=strategy)
        assert values.shape == (9,)
        return float((values - values[-1]).abs().max() / values[-1].abs())

    assert drift(None) < 1e-13
    assert drift(OTD(method)) > 1e-9
    assert drift(Backsolve()) > 1e-9


@pytest.mark.parametrize("method", ["stormer_verlet", "symplectic_euler"])
@pytest.mark.parametrize("field", [SecondOrderField, GeneralHamiltonianField],
                         ids=lambda f: f.__name__)
def test_the_partitioned_adjoint_conserves_the_invariant_on_a_hamiltonian_network(
        points, small_net, field, method):
    """On a Hamiltonian network stepped by a symplectic pair, <p^k, dy^k> summed over both
    halves (z, p) is conserved to round-off by OTD()."""
    net = small_net(method, depth=8, field=field, seed=9)
    x, y = points(12, 9)
    with torch.no_grad():
        dy0 = random_state(net.lift(x), 4)
    values = bilinear_invariant(net, x, y, dy0)
    assert values.shape == (9,)
    assert float((values - values[-1]).abs().max() / values[-1].abs()) < 1e-13
    # the pairing needs both halves: the z-half alone is not conserved
    dz = tangents(net, x, dy0)[0]
    z_half = (costates(net, x, y)[0] * dz).flatten(1).sum(1)
    assert float((z_half - z_half[-1]).abs().max() / z_half[-1].abs()) > 1e-6


def test_a_hamiltonian_network_stepped_by_rk4_conserves_it_with_otd_only(points, small_net):
    """With a Runge--Kutta tableau on the pair, OTD() conserves the invariant and OTD("rk4")
    (the same tableau for p, not the partner) does not."""
    net = small_net("rk4", depth=8, field=SecondOrderField, seed=9)
    x, y = points(12, 9)
    with torch.no_grad():
        dy0 = random_state(net.lift(x), 4)

    def drift(strategy):
        values = bilinear_invariant(net, x, y, dy0, strategy=strategy)
        return float((values - values[-1]).abs().max() / values[-1].abs())

    assert drift(OTD()) < 1e-13
    assert drift(OTD("rk4")) > 1e-9


def test_tangents_and_costates_refuse_bad_input(points, small_net):
    """dy0 of the wrong shape or kind, a network with members, and a strategy without costates
    are refused."""
    net = small_net(depth=2)
    x, y = points(4, 0)
    with pytest.raises(ValueError, match="dy0 must be a state of the lifted states' kind"):
        tangents(net, x, torch.zeros(4, 2, dtype=torch.float64))
    pair = small_net("stormer_verlet", depth=2, field=SecondOrderField)
    with pytest.raises(ValueError, match="dy0 must be a state of the lifted states' kind"):
        tangents(pair, x, torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="members"):
        tangents(small_net(depth=2, members=2), x, torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="computes no costates"):
        costates(net, x, y, DTO())
