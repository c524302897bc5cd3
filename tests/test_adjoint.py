"""The gradients of lib.adjoint against independent references: torch.autograd through the
network (DTO), central finite differences, torchdiffeq.odeint_adjoint (for the black-box
adjoint), torch.optim.SGD inside lib.train (for the training loop), and exact power laws."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lib
from lib import adjoint
from lib.deep_limit import observed_order
from lib.fields import FIELDS
from lib.models import ODENet
from lib.hamiltonian import CoupledField
from lib.tableaux import DOPRI5, METHODS, ButcherTableau, symplectic_partner
from lib.integrators import rk_solve, rk_step
from lib.train import time_smoothness, train

WITH_PARTNER = [name for name, t in METHODS.items() if all(b != 0 for b in t.b)]
ORDERS = {name: t.order for name, t in METHODS.items()}
EPS = torch.finfo(torch.float64).eps


def data(n, seed, classes=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g)


def relative(g, ref):
    return adjoint.relative_difference(g, ref)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(width=st.integers(2, 6), depth=st.integers(1, 8), method=st.sampled_from(WITH_PARTNER),
       activation=st.sampled_from(["tanh", "relu", "identity"]), seed=st.integers(0, 1000),
       T=st.sampled_from([None, 0.5, 3.0]), classes=st.sampled_from([2, 3]),
       loss=st.sampled_from(["cross_entropy", "least_squares"]), field=st.sampled_from(sorted(FIELDS)))
def test_otd_with_the_partner_is_dto(width, depth, method, activation, seed, T, classes, loss, field):
    net = ODENet(width=width, depth=depth, T=T, method=method, activation=activation,
                 field=field, classes=classes, seed=seed).double()
    x, y = data(12, seed, classes)
    dto = adjoint.dto_gradient(net, x, y, loss=loss)
    otd = adjoint.otd_gradient(net, x, y, loss=loss)
    assert list(otd) == [name for name, _ in net.named_parameters()]
    assert relative(otd, dto) < 1e-12


@pytest.mark.parametrize("method", WITH_PARTNER)
def test_a_partner_written_out_here_gives_dto(method):
    """The adjoint tableau abar_ij = b_j - b_j a_ji / b_i built here from the formula, not by
    lib.tableaux.symplectic_partner, passed explicitly: OTD equals DTO."""
    t = METHODS[method]
    s = range(t.stages)
    abar = [[t.b[j] - t.b[j] * t.a[j][i] / t.b[i] for j in s] for i in s]
    partner = ButcherTableau(a=abar, b=t.b, c=[sum(row) for row in abar], order=1)
    net = ODENet(width=3, depth=5, T=2.0, method=method, seed=8).double()
    x, y = data(10, 8)
    otd = adjoint.otd_gradient(net, x, y, adjoint_tableau=partner)
    assert relative(otd, adjoint.dto_gradient(net, x, y)) < 1e-13


def test_dto_matches_central_differences():
    net = ODENet(width=3, depth=4, T=2.0, method="rk4", seed=1).double()
    x, y = data(10, 1)
    g = adjoint.dto_gradient(net, x, y)
    E = lambda: adjoint.LOSSES["cross_entropy"](net(x), y)  # noqa: E731
    eps = 1e-6
    for name, index in [("field.A", (2, 1, 0)), ("field.b", (0, 2)), ("classifier.w", (1,))]:
        param = dict(net.named_parameters())[name]
        with torch.no_grad():
            param[index] += eps
            up = E()
            param[index] -= 2 * eps
            down = E()
            param[index] += eps
        assert float((up - down) / (2 * eps)) == pytest.approx(float(g[name][index]), rel=1e-6, abs=1e-10)


def same_tableau_errors(method, activation, width, seed, depths=(16, 32, 64, 128)):
    x, y = data(16, seed)
    steps, errors = [], []
    for K in depths:
        net = adjoint.smooth_network(width=width, depth=K, T=1.0, method=method,
                                     activation=activation, seed=seed)
        dto = adjoint.dto_gradient(net, x, y)
        otd = adjoint.otd_gradient(net, x, y, adjoint_tableau=method)
        steps.append(net.h)
        errors.append(adjoint.relative_difference(otd, dto, adjoint.layer_keys(net)))
    return steps, errors


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("activation, width, seed", [("tanh", 3, 0), ("identity", 5, 11)])
def test_otd_with_the_same_tableau_converges_at_the_methods_order(method, activation, width, seed):
    steps, errors = same_tableau_errors(method, activation, width, seed)
    assert min(errors) > 1e-12
    assert abs(observed_order(steps, errors) - ORDERS[method]) < 0.3


def contractive(method="rk38", depth=50):
    return adjoint.smooth_network(width=4, depth=depth, T=5.0, method=method, contraction=2.0, seed=0)


@pytest.mark.parametrize("method", ["euler", "heun", "midpoint", "rk38"])
def test_backsolve_is_the_black_box_adjoint_and_is_inexact(method):
    net = contractive(method)
    x, y = data(32, 0)
    dto = adjoint.dto_gradient(net, x, y)
    back = adjoint.backsolve_gradient(net, x, y)
    reference = adjoint.torchdiffeq_adjoint_gradient(net, x, y)
    assert relative(back, reference) < 1e-10
    assert relative(back, dto) > 1e-8
    states, reconstructed = adjoint.backward_states(net, x)
    assert torch.equal(reconstructed[-1], states[-1])
    assert float((reconstructed[0] - states[0]).norm()) > 1e-6


def test_torchdiffeq_needs_a_matching_method():
    net = ODENet(width=2, depth=2, method="rk4").double()
    with pytest.raises(ValueError, match="torchdiffeq has no fixed-grid method"):
        adjoint.torchdiffeq_adjoint_gradient(net, *data(4, 0))


@pytest.mark.parametrize("segment", [None, 1, 3, 20])
@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_checkpointed_dto_is_dto_exactly(method, segment):
    net = ODENet(width=4, depth=7, T=2.0, method=method, seed=2).double()
    x, y = data(16, 2)
    dto = adjoint.dto_gradient(net, x, y)
    ckpt = adjoint.checkpointed_dto_gradient(net, x, y, segment=segment)
    assert list(ckpt) == list(dto)
    assert all(torch.equal(ckpt[k], dto[k]) for k in dto)


def test_float32_gradients_follow_the_input_dtype():
    net = ODENet(width=4, depth=6, method="rk4", seed=0)
    x, y = data(16, 0, dtype=torch.float32)
    dto = adjoint.dto_gradient(net, x, y)
    for g in (adjoint.otd_gradient(net, x, y), adjoint.backsolve_gradient(net, x, y),
              adjoint.checkpointed_dto_gradient(net, x, y)):
        assert all(v.dtype == torch.float32 for v in g.values())
    assert relative(adjoint.otd_gradient(net, x, y), dto) < 1e-5


@pytest.mark.parametrize("method", [*sorted(METHODS), DOPRI5], ids=str)
def test_otd_is_dto_for_every_explicit_tableau(method):
    """OTD's default sweep equals DTO to round-off for every tableau in lib, those with a zero
    weight included (midpoint b_1 = 0, dopri5 b_2 = b_7 = 0), where no partner tableau exists
    and the sweep runs in the weighted stage adjoints b_i P_i."""
    x, y = data(40, 3)
    net = ODENet(width=3, depth=6, T=2.0, method=method, seed=4).double()
    assert relative(adjoint.otd_gradient(net, x, y), adjoint.dto_gradient(net, x, y)) <= 64 * EPS
    # negative control: the midpoint rule's own tableau for p is O(h^2) away, not round-off
    if method == "midpoint":
        own = adjoint.otd_gradient(net, x, y, adjoint_tableau="midpoint")
        assert relative(own, adjoint.dto_gradient(net, x, y)) > 1e-6


STRATEGIES = {
    "dto": (adjoint.dto_gradient, "rk4"),
    "checkpointed_dto": (adjoint.checkpointed_dto_gradient, "rk4"),
    "otd_partner": (adjoint.otd_gradient, "rk4"),
    "otd_weighted": (adjoint.otd_gradient, DOPRI5),
    "backsolve": (adjoint.backsolve_gradient, "heun"),
    "torchdiffeq_adjoint": (adjoint.torchdiffeq_adjoint_gradient, "midpoint"),
    "reversible": (adjoint.reversible_gradient, "stormer_verlet"),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_gradient_gives_each_member_its_own_gradient(name):
    """A network with 5 members is 5 networks in one computation: each member's block of every
    gradient equals the gradient of that member alone (float64, <= 64 eps relative)."""
    gradient, method = STRATEGIES[name]
    field = CoupledField if name == "reversible" else "resnet"
    x, y = data(30, 5)
    many = ODENet(width=3, depth=4, T=1.0, method=method, field=field, seed=[0, 1, 2, 3, 4]).double()
    together = gradient(many, x, y)
    for s in range(5):
        alone = gradient(many.member(s), x, y)
        mine = {k: v.select(1 if k.startswith("field.") else 0, s) for k, v in together.items()}
        assert relative(mine, alone) <= 64 * EPS, (name, s)


def test_unsweepable_tableaux_raise():
    x, y = data(4, 0)
    net = ODENet(width=2, depth=2, method="heun").double()
    gauss = ButcherTableau(a=[[0.25, 0.25 - 3 ** 0.5 / 6], [0.25 + 3 ** 0.5 / 6, 0.25]],
                           b=[0.5, 0.5], c=[0.5 - 3 ** 0.5 / 6, 0.5 + 3 ** 0.5 / 6], order=4)
    with pytest.raises(ValueError, match="cannot be swept explicitly backwards"):
        adjoint.otd_gradient(net, x, y, adjoint_tableau=gauss)
    with pytest.raises(ValueError, match="stage-by-stage partner"):
        adjoint.otd_gradient(net, x, y, adjoint_tableau=symplectic_partner(METHODS["rk4"]))


def test_bad_arguments_raise():
    net = ODENet(width=2, depth=2).double()
    x, y = data(4, 0)
    with pytest.raises(TypeError, match="net must be a lib.models.ODENet"):
        adjoint.dto_gradient(torch.nn.Linear(2, 2), x, y)
    with pytest.raises(ValueError, match="unknown loss"):
        adjoint.otd_gradient(net, x, y, loss="hinge")
    with pytest.raises(ValueError, match="X must have shape"):
        adjoint.backsolve_gradient(net, x[:, :1], y)
    with pytest.raises(ValueError, match="segment must be a positive integer"):
        adjoint.checkpointed_dto_gradient(net, x, y, segment=0)


def test_training_with_the_otd_gradient_follows_autograd():
    """The talk's standard procedure: lib.train with gradient=otd_gradient (sweep forward, sweep p
    backward with the partner, update) takes the steps of autograd training, to round-off."""
    x, y = data(32, 3)
    a = ODENet(width=3, depth=5, T=2.0, method="rk4", seed=3).double()
    b = ODENet(width=3, depth=5, T=2.0, method="rk4", seed=3).double()
    standard = train(a, x, y, iterations=15, optimizer="gd", lr=0.5, gradient=adjoint.otd_gradient)
    autograd = train(b, x, y, iterations=15, optimizer="gd", lr=0.5)
    assert torch.allclose(standard.loss, autograd.loss, rtol=1e-12, atol=0)
    assert standard.loss[-1] < standard.loss[0]
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(p, q, rtol=1e-11, atol=1e-13)


def test_peak_memory_counts_live_tensors():
    def two_temporaries():
        torch.ones(1000, dtype=torch.float64).sum()
        return torch.ones(500, dtype=torch.float64)

    out, peak = adjoint.peak_memory(two_temporaries)
    assert out.shape == (500,) and 8000 <= peak < 8000 + 500 * 8 + 64

    x, y = data(64, 0)
    small = {m: adjoint.peak_memory(adjoint.GRADIENTS[m], ODENet(width=4, depth=16, method="rk4",
                                                                 seed=0).double(), x, y)[1]
             for m in ("dto", "otd_partner", "checkpointed_dto")}
    big_dto = adjoint.peak_memory(adjoint.dto_gradient,
                                  ODENet(width=4, depth=32, method="rk4", seed=0).double(), x, y)[1]
    assert 1.8 < big_dto / small["dto"] < 2.2
    assert small["otd_partner"] < small["dto"] / 2
    assert small["checkpointed_dto"] < small["dto"] / 2


def test_smooth_network_samples_one_linear_theta():
    net = adjoint.smooth_network(width=3, depth=8, T=2.0, contraction=1.5, seed=4)
    A = net.field.A.detach()
    assert torch.allclose(A[2] - A[1], A[7] - A[6], atol=1e-15)
    other = adjoint.smooth_network(width=3, depth=4, T=2.0, contraction=1.5, seed=4)
    assert torch.equal(other.field.A[0], A[0]) and torch.equal(other.classifier.w, net.classifier.w)
    assert torch.allclose(other.field.A[2], A[4], atol=1e-15)


def test_smooth_network_takes_one_rate_per_coordinate_for_a_saddle():
    plain = adjoint.smooth_network(width=3, depth=4, T=2.0, seed=4).field.A.detach()
    saddle = adjoint.smooth_network(width=3, depth=4, T=2.0, contraction=[1.0, -2.0, 0.5],
                                    seed=4).field.A.detach()
    rates = torch.diag(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)).expand(4, 3, 3)
    assert torch.allclose(plain - saddle, rates, rtol=0, atol=1e-6)  # built in float32
    same = adjoint.smooth_network(width=3, depth=4, T=2.0, contraction=[1.5] * 3, seed=4)
    assert torch.equal(same.field.A, adjoint.smooth_network(width=3, depth=4, T=2.0,
                                                            contraction=1.5, seed=4).field.A)
    with pytest.raises(ValueError, match="contraction"):
        adjoint.smooth_network(width=3, contraction=[1.0, 2.0])
    with pytest.raises(TypeError, match="contraction"):
        adjoint.smooth_network(width=3, contraction="fast")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backsolve_reconstruction_and_gradient_go_wrong_together_only_in_a_saddle(seed):
    """Chapter 2: contraction spoils the reconstruction but not the gradient, expansion
    neither, a saddle (rates 2, -2, 2, -2) both (3/8 rule, h = 0.1, T = 10)."""
    x, y = data(40, seed)

    def drift_and_error(rates):
        net = adjoint.smooth_network(width=4, depth=100, T=10.0, method="rk38",
                                     contraction=rates, seed=seed)
        z, z_back = adjoint.backward_states(net, x)
        drift = float((z_back[0] - z[0]).norm() / z[0].norm())
        error = adjoint.relative_difference(adjoint.backsolve_gradient(net, x, y),
                                            adjoint.dto_gradient(net, x, y), adjoint.layer_keys(net))
        return drift, error

    contracting, expanding, saddle = (drift_and_error(r) for r in (2.0, -2.0, [2, -2, 2, -2]))
    assert contracting[0] > 1 and contracting[1] < 1e-3
    assert expanding[0] < 1e-5 and expanding[1] < 1e-3
    assert saddle[0] > 1 and saddle[1] > 1


def test_standard_procedure_refuses_a_non_finite_objective():
    net = ODENet(width=2, depth=3, T=3.0, seed=0).double()
    x, y = lib.make_dataset("donut2d", 20, dtype=torch.float64)
    calls = []

    def nan_on_fifth_call(*args, **kwargs):   # the objective is first non-finite at iteration 5
        calls.append(1)
        grads = adjoint.otd_gradient(*args, **kwargs)
        return {k: g * math.nan for k, g in grads.items()} if len(calls) == 5 else grads

    with pytest.raises(ValueError, match=r"non-finite .*at iteration 5\b"):
        train(net, x, y, gradient=nan_on_fifth_call, iterations=8, optimizer="gd", lr=0.1)


@pytest.mark.parametrize("gradient, method", [
    (adjoint.otd_gradient, "rk4"), (adjoint.checkpointed_dto_gradient, "heun"),
    (adjoint.reversible_gradient, "stormer_verlet")], ids=["otd", "checkpointed", "reversible"])
def test_training_with_a_gradient_strategy_trains_five_seeds_as_one(gradient, method):
    """train(..., gradient=...) on a network with 5 members follows each member trained alone."""
    x, y = data(24, 7)
    field = CoupledField if method == "stormer_verlet" else "resnet"
    kwargs = dict(iterations=8, optimizer="gd", lr=0.3, gradient=gradient, record_every=4)
    many = ODENet(width=3, depth=4, method=method, field=field, seed=range(5)).double()
    together = train(many, x, y, **kwargs).loss
    for s in (0, 4):
        alone = ODENet(width=3, depth=4, method=method, field=field, seed=s).double()
        assert torch.allclose(train(alone, x, y, **kwargs).loss, together[:, s], rtol=1e-12)


# --- the Hamiltonian's gradient (chapter 2) --------------------------------------------------------

def objective(net, x, y, regulariser):
    E = adjoint.LOSSES["cross_entropy"](net(x), y)
    return E if regulariser is None else E + regulariser(net)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("regulariser", [None, adjoint.weight_penalty(0.3),
                                         time_smoothness(0.2)],
                         ids=["none", "weight_penalty", "time_smoothness"])
def test_hamiltonian_gradient_is_the_l2_gradient(method, regulariser):
    """h sum_k <dH/dtheta(t_k) + dR/dtheta(t_k), dtheta^k> is the derivative of the objective
    along dtheta (central differences): the discrete dH/dtheta is the L^2 gradient."""
    net = ODENet(width=3, depth=5, T=2.0, method=method, seed=6).double()
    x, y = data(20, 6)
    G = adjoint.hamiltonian_gradient(net, x, y, regulariser)
    assert list(G) == adjoint.layer_keys(net)
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


def test_weight_penalty_is_its_formula_for_one_network_and_for_members():
    lam = 0.4
    R = adjoint.weight_penalty(lam)
    net = ODENet(width=3, depth=4, T=2.0, seed=[3, 4]).double()
    values = R(net)
    assert values.shape == (2,)
    for s in range(2):
        one = net.member(s)
        A, b, w, w0 = (p.detach() for p in (one.field.A, one.field.b, one.classifier.w,
                                            one.classifier.w0))
        by_hand = 0.5 * lam * (one.h * float(A.square().sum() + b.square().sum())
                               + float(w.square().sum() + w0.square()))
        assert float(R(one)) == pytest.approx(by_hand, rel=1e-14)
        assert float(values[s]) == pytest.approx(by_hand, rel=1e-14)
    with pytest.raises(ValueError, match="rho must be a finite number"):
        adjoint.weight_penalty(-1.0)


def test_weight_penalty_adds_rho_theta_to_the_hamiltonian_gradient():
    net = ODENet(width=2, depth=3, T=1.5, method="heun", seed=2).double()
    x, y = data(10, 2)
    plain = adjoint.hamiltonian_gradient(net, x, y)
    penalised = adjoint.hamiltonian_gradient(net, x, y, adjoint.weight_penalty(0.7))
    for key, theta in net.field.stacks().items():
        assert torch.allclose(penalised[f"field.{key}"] - plain[f"field.{key}"], 0.7 * theta,
                              rtol=1e-12, atol=1e-15)


def test_layer_norms_and_bad_regularisers():
    g = {"a": torch.tensor([[3.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([[4.0], [0.0]])}
    assert torch.equal(adjoint.layer_norms(g), torch.tensor([5.0, 1.0]))
    with pytest.raises(ValueError, match="stacked per-layer tensors"):
        adjoint.layer_norms({})
    net = ODENet(width=2, depth=2).double()
    with pytest.raises(ValueError, match="0-dim tensor"):
        adjoint.hamiltonian_gradient(net, *data(4, 0), regulariser=lambda n: n.field.A.sum(0))


# --- the bilinear invariant <p^k, dz^k> (chapter 3) -----------------------------------------------

def manual_states(net, x):
    """[z^0, ..., z^K] with z^0 a leaf, each step recorded (for autograd in the tests)."""
    z = net.lift(x).detach().requires_grad_(True)
    states = [z]
    for theta in net.field.thetas():
        states.append(rk_step(lambda t, u: net.field(u, theta), 0.0, states[-1], net.h,
                              net.tableau))
    return states


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk38"])
def test_tangents_are_the_derivative_of_the_states(method):
    net = ODENet(width=3, depth=4, T=2.0, method=method, seed=5).double()
    x, _ = data(8, 5)
    dz0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dz = adjoint.tangents(net, x, dz0)
    assert dz.shape == (5, 8, 3) and torch.equal(dz[0], dz0)
    thetas = [tuple(p.detach() for p in th) for th in net.field.thetas()]
    eps = 1e-6

    def run(z0):
        return rk_solve(lambda k, t, z: net.field(z, thetas[k]), z0, net.h, net.depth,
                        net.tableau, trajectory=True)

    with torch.no_grad():
        z0 = net.lift(x)
        central = (run(z0 + eps * dz0) - run(z0 - eps * dz0)) / (2 * eps)
    assert torch.allclose(dz, central, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("method", WITH_PARTNER)
def test_partner_costates_are_the_gradients_of_the_states(method):
    """The costates of the partner sweep are dE/dz^k, computed here by autograd."""
    net = ODENet(width=3, depth=4, T=2.0, method=method, seed=7).double()
    x, y = data(10, 7)
    states = manual_states(net, x)
    E = adjoint.LOSSES["cross_entropy"](net.classifier(states[-1]), y)
    reference = torch.stack(torch.autograd.grad(E, states))
    p = adjoint.costates(net, x, y)
    assert p.shape == reference.shape
    assert float((p - reference).norm() / reference.norm()) < 1e-13


@pytest.mark.parametrize("method", WITH_PARTNER)
def test_the_partner_conserves_the_bilinear_invariant_and_other_sweeps_do_not(method):
    net = adjoint.smooth_network(width=3, depth=8, T=2.0, method=method, seed=3)
    x, y = data(12, 3)
    dz0 = torch.randn(12, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def drift(sweep):
        values = adjoint.bilinear_invariant(net, x, y, dz0, adjoint=sweep)
        assert values.shape == (9,)
        return float((values - values[-1]).abs().max() / values[-1].abs())

    assert drift(None) < 1e-13
    assert drift(method) > 1e-9
    assert drift("backsolve") > 1e-9


def test_tangents_and_costates_refuse_bad_input():
    net = ODENet(width=3, depth=2).double()
    x, y = data(4, 0)
    with pytest.raises(ValueError, match="dz0 must be a tensor of the lifted states' shape"):
        adjoint.tangents(net, x, torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="members"):
        adjoint.tangents(ODENet(width=3, depth=2, seed=[0, 1]).double(), x,
                         torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown method"):
        adjoint.costates(net, x, y, adjoint="backwards")
