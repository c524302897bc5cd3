"""The gradient strategies of lib.gradients against independent references: torch.autograd
through the network (DTO), central finite differences, torchdiffeq.odeint_adjoint (for the
black-box adjoint), exact power laws, and each member of a network with members alone.  The
strategies and what each supports are described in the docstrings of lib/gradients/."""
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lib
from lib.deep_limit import observed_order
from lib.examples import smooth_network
from lib.fields import FIELDS
from lib.gradients import (DTO, OTD, STRATEGIES, Backsolve, Checkpointed, Reversible, Strategy,
                           TorchdiffeqAdjoint, gradient, layer_keys, relative_difference)
from lib.hamiltonian import (HAMILTONIAN_FIELDS, CoupledField, GeneralHamiltonianField,
                             SecondOrderField)
from lib.losses import LOSSES
from lib.models import ODENet
from lib.profiling import peak_memory
from lib.tableaux import DOPRI5, METHODS, ButcherTableau, symplectic_partner

WITH_PARTNER = [name for name, t in METHODS.items() if all(b != 0 for b in t.b)]
ORDERS = {name: t.order for name, t in METHODS.items()}
EPS = torch.finfo(torch.float64).eps
PAIRS = ["stormer_verlet", "symplectic_euler"]
HAMILTONIAN = [SecondOrderField, GeneralHamiltonianField]


def parameters(net):
    return {name: p.detach() for name, p in net.named_parameters()}


def name_of(value):
    return getattr(value, "__name__", None) or getattr(value, "name", None) or str(value)


# --- OTD is DTO ----------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, derandomize=True)
@given(width=st.integers(2, 6), depth=st.integers(1, 8), method=st.sampled_from(WITH_PARTNER),
       activation=st.sampled_from(["tanh", "relu", "identity"]), seed=st.integers(0, 1000),
       T=st.sampled_from([None, 0.5, 3.0]), classes=st.sampled_from([2, 3]),
       loss=st.sampled_from(["cross_entropy", "least_squares"]),
       field=st.sampled_from(sorted(FIELDS) + sorted(HAMILTONIAN_FIELDS)))
def test_otd_with_the_partner_is_dto(points, width, depth, method, activation, seed, T, classes,
                                     loss, field):
    """OTD() (the partner's sweep) is DTO to round-off on random networks: every method with all
    b_i != 0, every field (the Hamiltonian ones on the pair (z, p)), both losses."""
    net = ODENet(width=width, depth=depth, T=T, method=method, activation=activation,
                 field=HAMILTONIAN_FIELDS.get(field, field), classes=classes, seed=seed).double()
    x, y = points(12, seed, classes)
    dto = DTO()(net, x, y, loss=loss)
    otd = OTD()(net, x, y, loss=loss)
    assert list(otd) == [name for name, _ in net.named_parameters()]
    assert relative_difference(otd, dto) < 1e-12


@pytest.mark.parametrize("method", WITH_PARTNER)
def test_a_partner_written_out_here_gives_dto(points, small_net, method):
    """The adjoint tableau abar_ij = b_j - b_j a_ji / b_i built here from the formula, not by
    lib.tableaux.symplectic_partner, passed as OTD(partner): OTD equals DTO."""
    t = METHODS[method]
    s = range(t.stages)
    abar = [[t.b[j] - t.b[j] * t.a[j][i] / t.b[i] for j in s] for i in s]
    partner = ButcherTableau(a=abar, b=t.b, c=[sum(row) for row in abar], order=1)
    net = small_net(method, depth=5, seed=8)
    x, y = points(10, 8)
    assert relative_difference(OTD(partner)(net, x, y), DTO()(net, x, y)) < 1e-13


@pytest.mark.parametrize("field", ["resnet", "antisymmetric", SecondOrderField,
                                   GeneralHamiltonianField], ids=name_of)
@pytest.mark.parametrize("method", [*sorted(METHODS), DOPRI5], ids=name_of)
def test_otd_is_dto_for_every_explicit_tableau(points, small_net, method, field):
    """OTD() equals DTO to round-off (<= 64 eps, float64) for every tableau in lib, those with a
    zero weight included (midpoint b_1 = 0, dopri5 b_2 = b_7 = 0), where no partner tableau
    exists and the sweep runs in the weighted stage adjoints b_i P_i; on tensor states and on
    the pair (z, p) of a Hamiltonian field stepped by the Runge--Kutta tableau."""
    x, y = points(40, 3)
    net = small_net(method, depth=6, field=field, seed=4)
    dto = DTO()(net, x, y)
    assert relative_difference(OTD()(net, x, y), dto) <= 64 * EPS
    # negative control: the midpoint rule's own tableau for p is O(h^2) away, not round-off
    if method == "midpoint":
        assert relative_difference(OTD("midpoint")(net, x, y), dto) > 1e-6


@pytest.mark.parametrize("method", PAIRS)
@pytest.mark.parametrize("field", HAMILTONIAN, ids=name_of)
def test_hamiltonian_networks_partitioned_adjoint_checkpoints_and_reversal_are_dto(
        points, small_net, field, method):
    """On a Hamiltonian network stepped by a symplectic pair, OTD() (the (z, p)-partitioned
    adjoint) and Reversible() (states rebuilt by the exact inverse) equal DTO to round-off, and
    Checkpointed equals DTO bitwise."""
    x, y = points(30, 2)
    net = small_net(method, depth=7, field=field, seed=5)
    dto = DTO()(net, x, y)
    assert relative_difference(OTD()(net, x, y), dto) <= 64 * EPS
    assert relative_difference(Reversible()(net, x, y), dto) <= 64 * EPS
    for segment in (None, 1, 3):
        ckpt = Checkpointed(segment)(net, x, y)
        assert list(ckpt) == list(dto) and all(torch.equal(ckpt[k], dto[k]) for k in dto)
    # negative control: the network's gradient is not that of its other pair
    other = small_net(PAIRS[1 - PAIRS.index(method)], depth=7, field=field, seed=5)
    assert relative_difference(DTO()(other, x, y), dto) > 1e-6


@pytest.mark.parametrize("strategy", ["dto", "checkpointed_2", "otd", "backsolve"])
def test_a_parameter_the_loss_does_not_read_has_a_zero_gradient(points, small_net, strategy):
    """One Euler step of a Hamiltonian network from p^0 = 0 gives z^1 = z^0 + h F(p^0): the
    loss does not read the potential's parameters (A2, b2), whose gradient is then zero, not an
    error (and the others are DTO's for the exact strategies)."""
    net = small_net("euler", depth=1, field=GeneralHamiltonianField)
    x, y = points(10, 0)
    g = EVERY_STRATEGY[strategy](net, x, y)
    assert list(g) == [name for name, _ in net.named_parameters()]
    assert all(not g[k].any() for k in ("field.A2", "field.b2"))
    assert g["field.A1"].abs().sum() > 0 and g["classifier.w"].abs().sum() > 0
    if strategy in ("dto", "checkpointed_2", "otd"):
        assert relative_difference(g, DTO()(net, x, y)) <= 64 * EPS


def test_dto_matches_central_differences(points, small_net):
    """DTO's entries are the central differences of the loss in those entries."""
    net = small_net("rk4", seed=1)
    x, y = points(10, 1)
    g = DTO()(net, x, y)
    params = dict(net.named_parameters())
    E = lambda: LOSSES["cross_entropy"](net(x), y)  # noqa: E731
    eps = 1e-6
    for name, index in [("field.A", (2, 1, 0)), ("field.b", (0, 2)), ("classifier.w", (1,))]:
        param = params[name]
        with torch.no_grad():
            param[index] += eps
            up = E()
            param[index] -= 2 * eps
            down = E()
            param[index] += eps
        assert float((up - down) / (2 * eps)) == pytest.approx(float(g[name][index]), rel=1e-6,
                                                               abs=1e-10)


# --- OTD with another tableau: an O(h^q) error ------------------------------------------------

def same_tableau_errors(points, method, activation, width, seed, depths=(16, 32, 64, 128)):
    x, y = points(16, seed)
    steps, errors = [], []
    for K in depths:
        net = smooth_network(width=width, depth=K, T=1.0, method=method, activation=activation,
                             seed=seed)
        dto = DTO()(net, x, y)
        otd = OTD(method)(net, x, y)
        steps.append(net.h)
        errors.append(relative_difference(otd, dto, layer_keys(net)))
    return steps, errors


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("activation, width, seed", [("tanh", 3, 0), ("identity", 5, 11)])
def test_otd_with_the_same_tableau_converges_at_the_methods_order(points, method, activation,
                                                                  width, seed):
    """OTD(method), the network's own tableau applied to p, differs from DTO by O(h^p)."""
    steps, errors = same_tableau_errors(points, method, activation, width, seed)
    assert min(errors) > 1e-12
    assert abs(observed_order(steps, errors) - ORDERS[method]) < 0.3


def test_unsweepable_tableaux_raise(points, small_net):
    """An implicit adjoint tableau is refused unless it is swept stage by stage explicitly."""
    x, y = points(4, 0)
    net = small_net("heun", depth=2, width=2)
    gauss = ButcherTableau(a=[[0.25, 0.25 - 3 ** 0.5 / 6], [0.25 + 3 ** 0.5 / 6, 0.25]],
                           b=[0.5, 0.5], c=[0.5 - 3 ** 0.5 / 6, 0.5 + 3 ** 0.5 / 6], order=4)
    with pytest.raises(ValueError, match="cannot be swept explicitly backwards"):
        OTD(gauss)(net, x, y)
    with pytest.raises(ValueError, match="stage-by-stage partner"):
        OTD(symplectic_partner(METHODS["rk4"]))(net, x, y)


# --- the black-box adjoint, checkpointing, dtypes ---------------------------------------------

def contractive(method="rk38", depth=50):
    return smooth_network(width=4, depth=depth, T=5.0, method=method, contraction=2.0, seed=0)


@pytest.mark.parametrize("method", ["euler", "heun", "midpoint", "rk38"])
def test_backsolve_is_the_black_box_adjoint_and_is_inexact(points, method):
    """Backsolve() is torchdiffeq's odeint_adjoint to 1e-10, not DTO, and its reconstruction of
    y^0 drifts on a contractive network."""
    net = contractive(method)
    x, y = points(32, 0)
    back = Backsolve()(net, x, y)
    assert relative_difference(back, TorchdiffeqAdjoint()(net, x, y)) < 1e-10
    assert relative_difference(back, DTO()(net, x, y)) > 1e-8
    states, reconstructed = Backsolve().states(net, x)
    assert torch.equal(reconstructed[-1], states[-1])
    assert float((reconstructed[0] - states[0]).norm()) > 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backsolve_reconstruction_and_gradient_go_wrong_together_only_in_a_saddle(points, seed):
    """Chapter 2: contraction spoils the reconstruction but not the gradient, expansion
    neither, a saddle (rates 2, -2, 2, -2) both (3/8 rule, h = 0.1, T = 10)."""
    x, y = points(40, seed)

    def drift_and_error(rates):
        net = smooth_network(width=4, depth=100, T=10.0, method="rk38", contraction=rates,
                             seed=seed)
        z, z_back = Backsolve().states(net, x)
        drift = float((z_back[0] - z[0]).norm() / z[0].norm())
        error = relative_difference(Backsolve()(net, x, y), DTO()(net, x, y), layer_keys(net))
        return drift, error

    contracting, expanding, saddle = (drift_and_error(r) for r in (2.0, -2.0, [2, -2, 2, -2]))
    assert contracting[0] > 1 and contracting[1] < 1e-3
    assert expanding[0] < 1e-5 and expanding[1] < 1e-3
    assert saddle[0] > 1 and saddle[1] > 1


@pytest.mark.parametrize("segment", [None, 1, 3, 20])
@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_checkpointed_dto_is_dto_exactly(points, small_net, method, segment):
    """Checkpointed(m) runs DTO's operations in DTO's order: the gradient is bitwise DTO's."""
    net = small_net(method, depth=7, width=4, seed=2)
    x, y = points(16, 2)
    dto = DTO()(net, x, y)
    ckpt = Checkpointed(segment)(net, x, y)
    assert list(ckpt) == list(dto)
    assert all(torch.equal(ckpt[k], dto[k]) for k in dto)


def test_float32_gradients_follow_the_input_dtype(points):
    """A float32 network and data give float32 gradients, OTD() DTO's to float32 round-off."""
    net = ODENet(width=4, depth=6, method="rk4", seed=0)
    x, y = points(16, 0, dtype=torch.float32)
    dto = DTO()(net, x, y)
    for strategy in (OTD(), Backsolve(), Checkpointed()):
        assert all(v.dtype == torch.float32 for v in strategy(net, x, y).values())
    assert relative_difference(OTD()(net, x, y), dto) < 1e-5


# --- a network with members is its members --------------------------------------------------

NETWORKS = {  # name: (field, method) of a network of width 3, depth 4, T = 1
    "resnet_midpoint": ("resnet", "midpoint"),       # torchdiffeq has the midpoint rule
    "resnet_dopri5": ("resnet", DOPRI5),
    "second_order_rk4": (SecondOrderField, "rk4"),   # the pair (z, p) stepped by a tableau
    "coupled_stormer_verlet": (CoupledField, "stormer_verlet"),
    "general_symplectic_euler": (GeneralHamiltonianField, "symplectic_euler"),
}
EVERY_STRATEGY = {"dto": DTO(), "checkpointed_2": Checkpointed(2), "otd": OTD(),
                  "otd_heun": OTD("heun"), "backsolve": Backsolve(), "reversible": Reversible(),
                  "torchdiffeq_adjoint": TorchdiffeqAdjoint()}


def network(name, members=None):
    field, method = NETWORKS[name]
    seed = 0 if members is None else list(range(members))
    return ODENet(width=3, depth=4, T=1.0, method=method, field=field, seed=seed).double()


COMBINATIONS = [(s, n) for s in EVERY_STRATEGY for n in NETWORKS
                if EVERY_STRATEGY[s].refusal(network(n)) is None]
REFUSED = [(s, n) for s in EVERY_STRATEGY for n in NETWORKS if (s, n) not in COMBINATIONS]


def test_every_strategy_supports_some_network_and_each_network_some_strategies():
    """The members test below covers every strategy (none is refused everywhere), and the
    refusals are the documented ones: Reversible needs a pair, a pair refuses Backsolve,
    TorchdiffeqAdjoint and OTD(tableau)."""
    assert {s for s, _ in COMBINATIONS} == set(EVERY_STRATEGY)
    assert set(REFUSED) == {
        *(("reversible", n) for n in ("resnet_midpoint", "resnet_dopri5", "second_order_rk4")),
        *((s, n) for s in ("backsolve", "torchdiffeq_adjoint", "otd_heun")
          for n in ("coupled_stormer_verlet", "general_symplectic_euler")),
        ("torchdiffeq_adjoint", "resnet_dopri5"), ("torchdiffeq_adjoint", "second_order_rk4")}


@pytest.mark.parametrize("strategy, net_name", COMBINATIONS, ids="-".join)
def test_every_strategy_gives_each_member_its_own_gradient(points, strategy, net_name):
    """A network with 5 members is 5 networks in one computation: each member's block of every
    strategy's gradient equals the gradient of that member alone (float64, <= 64 eps
    relative)."""
    compute = EVERY_STRATEGY[strategy]
    x, y = points(30, 5)
    many = network(net_name, members=5)
    together = compute(many, x, y)
    assert list(together) == [name for name, _ in many.named_parameters()]
    for s in range(5):
        alone = compute(many.member(s), x, y)
        mine = {k: v.select(1 if k.startswith("field.") else 0, s) for k, v in together.items()}
        assert relative_difference(mine, alone) <= 64 * EPS, s
    # negative control: the blocks differ from member to member
    first = {k: v.select(1 if k.startswith("field.") else 0, 0) for k, v in together.items()}
    assert relative_difference(first, compute(many.member(1), x, y)) > 1e-3


# --- refusals and bad arguments ---------------------------------------------------------------

REASONS = {"backsolve": r"integrates backwards with one Runge--Kutta tableau.*stepped by the "
                        r"pair 'stormer_verlet_pzp'",
           "reversible": r"exact explicit inverse.*method 'rk4'",
           "otd_heun": r"an adjoint tableau \('heun'\) needs a network stepped by a "
                       r"Runge--Kutta tableau, not the pair",
           "torchdiffeq_adjoint": r"torchdiffeq steps one tableau on a tensor state; the "
                                  r"network is stepped by the pair 'stormer_verlet_pzp'"}


@pytest.mark.parametrize("strategy", sorted(REASONS))
def test_a_strategy_refuses_a_network_it_does_not_support_saying_why(points, small_net,
                                                                    strategy):
    """Backsolve, TorchdiffeqAdjoint and OTD(tableau) on a pair, Reversible on a Runge--Kutta
    network: a ValueError naming the strategy and the reason, from the strategy, from
    lib.gradients.gradient and from lib.train alike."""
    compute = EVERY_STRATEGY[strategy]
    net = small_net("rk4") if strategy == "reversible" else small_net(
        "stormer_verlet", field=SecondOrderField)
    x, y = points(8, 0)
    message = re.escape(f"{compute!r} does not apply to this network: ") + ".*" + REASONS[strategy]
    assert compute.refusal(net) is not None
    for call in (lambda: compute(net, x, y), lambda: gradient(net, x, y, compute),
                 lambda: lib.train(net, x, y, iterations=1, gradient=compute)):
        with pytest.raises(ValueError, match=message):
            call()


def test_torchdiffeq_needs_a_matching_method_and_a_tensor_state(points, small_net):
    """torchdiffeq has no fixed-grid rk4 = lib's rk4 (its "rk4" is the 3/8 rule), and its
    adjoint here steps a tensor, not the pair of a Hamiltonian field stepped by a tableau."""
    x, y = points(4, 0)
    with pytest.raises(ValueError, match="torchdiffeq has no fixed-grid method equal to 'rk4'"):
        TorchdiffeqAdjoint()(small_net("rk4", depth=2, width=2), x, y)
    with pytest.raises(ValueError, match=r"steps a tensor state, not the pair \(z, p\)"):
        TorchdiffeqAdjoint()(small_net("midpoint", depth=2, field=SecondOrderField), x, y)


def test_gradient_entry_point_takes_a_name_or_a_strategy(points, small_net):
    """lib.gradients.gradient(net, x, y, name) is STRATEGIES[name]'s gradient; an unknown name
    is a ValueError listing the names, a non-strategy a TypeError."""
    net = small_net("heun")
    x, y = points(12, 1)
    assert sorted(STRATEGIES) == ["backsolve", "checkpointed_dto", "dto", "otd_partner",
                                  "reversible", "torchdiffeq_adjoint"]
    assert all(s.name == name for name, s in STRATEGIES.items())
    for name in ("dto", "otd_partner", "backsolve"):
        by_name = gradient(net, x, y, name)
        by_object = STRATEGIES[name](net, x, y)
        assert all(torch.equal(by_name[k], by_object[k]) for k in by_object)
    assert relative_difference(gradient(net, x, y), DTO()(net, x, y)) == 0.0
    with pytest.raises(ValueError, match=r"unknown gradient strategy 'unknown'; expected one of "
                                         r"\['backsolve', 'checkpointed_dto', 'dto', "
                                         r"'otd_partner', 'reversible', 'torchdiffeq_adjoint'\]"):
        gradient(net, x, y, "unknown")
    with pytest.raises(TypeError, match="strategy must be a lib.gradients.Strategy"):
        gradient(net, x, y, DTO)


@pytest.mark.parametrize("net_name", sorted(NETWORKS))
def test_value_and_gradient_returns_the_loss_per_member(points, net_name):
    """value_and_gradient gives, with the gradient, the data loss of each member, the loss of
    net(x), for every strategy that supports the network."""
    x, y = points(20, 4)
    many = network(net_name, members=3)
    expected = LOSSES["least_squares"](many(x), y.expand(3, -1)).detach()
    assert expected.shape == (3,)
    for strategy in EVERY_STRATEGY.values():
        if strategy.refusal(many) is None:
            E, g = strategy.value_and_gradient(many, x, y, "least_squares")
            assert not E.requires_grad and list(g) == [k for k, _ in many.named_parameters()]
            assert torch.allclose(E, expected, rtol=1e-14, atol=0), strategy


def test_bad_arguments_raise(points, small_net):
    """A network that is not an ODENet, an unknown loss, data of the wrong shape and a
    segment of 0 are refused with errors naming them."""
    net = small_net(depth=2, width=2)
    x, y = points(4, 0)
    with pytest.raises(TypeError, match="net must be a lib.models.ODENet"):
        DTO()(torch.nn.Linear(2, 2), x, y)
    with pytest.raises(ValueError, match="unknown loss"):
        OTD()(net, x, y, loss="hinge")
    with pytest.raises(ValueError, match="X must have shape"):
        Backsolve()(net, x[:, :1], y)
    with pytest.raises(ValueError, match="segment must be a positive integer"):
        Checkpointed(0)


# --- a new strategy is one class ------------------------------------------------------------

class CentralDifferences(Strategy):
    """A strategy written here and nowhere else: ``dE/dtheta`` entry by entry as
    ``(E(theta + eps e_i) - E(theta - eps e_i)) / (2 eps)``, an ``O(eps^2)`` error."""

    name = "central_differences"

    def __init__(self, eps: float = 1e-5):
        self.eps = eps

    def _compute(self, net, x, y, data_loss):
        with torch.no_grad():
            E = data_loss(net(x), y)
            grads = {}
            for name, p in net.named_parameters():
                flat, g = p.data.view(-1), torch.zeros(p.numel(), dtype=p.dtype)
                for i in range(flat.numel()):
                    old = float(flat[i])
                    flat[i] = old + self.eps
                    up = data_loss(net(x), y).sum()
                    flat[i] = old - self.eps
                    down = data_loss(net(x), y).sum()
                    flat[i] = old
                    g[i] = (up - down) / (2 * self.eps)
                grads[name] = g.view_as(p)
        return E, grads


def test_a_new_strategy_is_one_subclass(points, small_net):
    """A subclass of Strategy defined here (central differences) is accepted by
    lib.gradients.gradient and by lib.train with no edit elsewhere; it agrees with DTO to its
    truncation error, which falls like eps^2, and training with it follows DTO's path."""
    net = small_net("heun", depth=2, width=2, members=2)
    x, y = points(16, 6)
    dto = DTO()(net, x, y)
    fine = gradient(net, x, y, CentralDifferences(1e-5))
    assert list(fine) == list(dto)
    assert relative_difference(fine, dto) < 1e-8
    errors = [relative_difference(gradient(net, x, y, CentralDifferences(eps)), dto)
              for eps in (4e-2, 2e-2, 1e-2)]
    assert min(errors) > 1e-7
    assert abs(observed_order([4e-2, 2e-2, 1e-2], errors) - 2) < 0.1

    a, b = small_net("heun", depth=2, width=2, members=2), small_net("heun", depth=2, width=2,
                                                                     members=2)
    options = dict(iterations=3, optimizer="gd", lr=0.5, record_every=3)
    differences = lib.train(a, x, y, gradient=CentralDifferences(), **options)
    autograd = lib.train(b, x, y, gradient=DTO(), **options)
    assert torch.allclose(differences.loss, autograd.loss, rtol=1e-9, atol=0)
    assert relative_difference(parameters(a), parameters(b)) < 1e-9
    assert relative_difference(parameters(a), parameters(small_net("heun", depth=2, width=2,
                                                                   members=2))) > 1e-3


# --- memory -----------------------------------------------------------------------------------

def test_peak_memory_counts_live_tensors(points):
    """lib.profiling.peak_memory counts the live bytes; DTO's memory grows like K, OTD() and
    Checkpointed() keep less than half of DTO's."""
    def two_temporaries():
        torch.ones(1000, dtype=torch.float64).sum()
        return torch.ones(500, dtype=torch.float64)

    out, peak = peak_memory(two_temporaries)
    assert out.shape == (500,) and 8000 <= peak < 8000 + 500 * 8 + 64

    x, y = points(64, 0)

    def net(depth):
        return ODENet(width=4, depth=depth, method="rk4", seed=0).double()

    small = {name: peak_memory(STRATEGIES[name], net(16), x, y)[1]
             for name in ("dto", "otd_partner", "checkpointed_dto")}
    big_dto = peak_memory(DTO(), net(32), x, y)[1]
    assert 1.8 < big_dto / small["dto"] < 2.2
    assert small["otd_partner"] < small["dto"] / 2
    assert small["checkpointed_dto"] < small["dto"] / 2
