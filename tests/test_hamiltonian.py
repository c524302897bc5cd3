"""Hamiltonian fields and networks (lib.hamiltonian, lib.models, lib.gradients.Reversible).

References used: autograd of the energy H for the fields (the field is the symplectic gradient
of H), torch.autograd.gradcheck, the leapfrog recursion of Chang et al. (2018) written out by
hand, the DTO gradient (autograd through the network) for the reversible gradient, and the
canonical matrix J for symplecticity.
"""
import math

import pytest
import torch

from lib import gradients, one_sided, spectra
from lib import state as tree
from lib.deep_limit import feature_convergence, observed_order
from lib.examples import smooth_network
from lib.fields import ResNetField
from lib.hamiltonian import reconstruction_error as ham_reconstruction_error
from lib.hamiltonian import (CoupledField, GeneralHamiltonianField, SecondOrderField,
                             energy_run, extended_run, extended_verlet_step, symplectic_defect,
                             symplectic_euler_general, tangent_growth, time_dependent)
from lib.integrators import Separable, rk_solve, rk_step
from lib.models import ODENet
from lib.parameter_path import theta_at, theta_rate
from lib.profiling import peak_memory
from lib.regularisers import time_smoothness
from lib.tableaux import (PAIRS, RK4, SLOPE_TIMES, STORMER_VERLET, STORMER_VERLET_ZPZ,
                          SYMPLECTIC_EULER)
from lib.training import train

DT = torch.float64
EPS = torch.finfo(DT).eps
FIELDS = [GeneralHamiltonianField, SecondOrderField, CoupledField]


def field(cls, width=3, layers=4, activation="tanh", seed=0):
    return cls(width, layers, activation, generator=torch.Generator().manual_seed(seed)).double()


def phase_points(n=6, d=3, seed=1):
    """``n`` random phase-space points ``(z, p)`` of width ``d``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=DT), torch.randn(n, d, generator=g, dtype=DT)


# --- the fields ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", FIELDS)
@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_field_is_the_symplectic_gradient_of_its_energy(cls, activation):
    """z' = dH/dp and p' = -dH/dz, with H from the antiderivatives gamma of lib.activations."""
    f = field(cls, activation=activation)
    z, p = phase_points()
    theta = f.layer(1)
    z.requires_grad_(True)
    p.requires_grad_(True)
    dHdz, dHdp = torch.autograd.grad(f.energy(z, p, theta).sum(), (z, p))
    assert torch.allclose(f.dz(p, theta), dHdp, rtol=0, atol=1e-13)
    assert torch.allclose(f.dp(z, theta), -dHdz, rtol=0, atol=1e-13)
    whole = f((z, p), theta)
    assert isinstance(whole, tuple)
    assert torch.equal(whole[0], f.dz(p, theta)) and torch.equal(whole[1], f.dp(z, theta))


@pytest.mark.parametrize("cls", FIELDS)
def test_gradcheck_of_the_fields(cls):
    """The energy and the two halves of every field pass gradcheck in (z, p, theta)."""
    f = field(cls, width=2, layers=1)
    z, p = phase_points(3, 2)
    theta = tuple(t.detach().clone().requires_grad_(True) for t in f.layer(0))
    n = len(theta)
    assert torch.autograd.gradcheck(lambda z, p, *th: f.energy(z, p, th),
                                    (z.requires_grad_(), p.requires_grad_(), *theta))
    assert torch.autograd.gradcheck(lambda z, p, *th: (f.dz(p, th), f.dp(z, th)),
                                    (z, p, *theta))
    assert n == len(f.theta_names)


@pytest.mark.parametrize("cls", FIELDS)
def test_energy_rate_is_the_time_derivative_of_H(cls):
    """energy_rate is d/dt H(z, p; theta(t)) for the interpolated theta(t)."""
    f = field(cls, layers=3)
    z, p = phase_points()
    T, t = 2.0, 1.3
    s = torch.tensor(t, dtype=DT, requires_grad=True)
    k = 1  # t = 1.3 lies in the second of two segments of [0, 2] (nodes 0, 1, 2)
    theta = tuple(a + (s / T * 2 - k) * (b - a) for a, b in zip(f.layer(k), f.layer(k + 1)))
    rows = [torch.autograd.grad(f.energy(z[i:i + 1], p[i:i + 1], theta).sum(), s,
                                retain_graph=True)[0] for i in range(len(z))]
    rate = f.energy_rate(z, p, theta_at(f, t, T), theta_rate(f, t, T))
    assert torch.allclose(rate, torch.stack(rows), rtol=0, atol=1e-13)


def test_special_cases_are_the_general_field_with_tied_parameters():
    """The coupled and second-order fields are the general field with tied or fixed parameters."""
    z, p = phase_points()
    general = field(GeneralHamiltonianField, activation="tanh")
    coupled = field(CoupledField, activation="tanh")
    second = field(SecondOrderField, activation="tanh")
    A, b = coupled.layer(2)
    tied = (A, b, A, b)
    assert torch.allclose(general.energy(z, p, tied), coupled.energy(z, p, (A, b)), atol=1e-14)
    second_as_general = GeneralHamiltonianField(3, 1, "tanh", kinetic_activation="identity")
    A, b = second.layer(0)
    eye = (torch.eye(3, dtype=DT), torch.zeros(3, dtype=DT), A, b)
    assert torch.allclose(second_as_general.energy(z, p, eye), second.energy(z, p, (A, b)),
                          atol=1e-14)
    assert torch.allclose(second_as_general.dp(z, eye), second.dp(z, (A, b)), atol=1e-14)


def test_fields_have_members_and_per_layer_methods():
    """Member s is the field of generator s; layer, energy and repeat_layers handle members."""
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    f = GeneralHamiltonianField(3, 5, generator=gens)
    alone = GeneralHamiltonianField(3, 5, generator=torch.Generator().manual_seed(4))
    single = f.member(1)
    for name, stack in alone.stacks().items():
        assert torch.equal(single.stacks()[name], stack)
    assert [t.shape for t in f.layer(0)] == [(2, 3, 3), (2, 3), (2, 3, 3), (2, 3)]
    z, p = phase_points(4, 3)
    zs, ps = z.expand(2, 4, 3).float(), p.expand(2, 4, 3).float()
    assert f.energy(zs, ps, f.layer(0)).shape == (2, 4)
    f.repeat_layers(2)
    assert f.layers == 10 and torch.equal(f.stacks()["A1"][0], f.stacks()["A1"][1])


def test_fields_refuse_bad_states():
    """Mismatched, non-tensor and joined (tensor) states, one-layer paths and non-Hamiltonian
    fields are refused."""
    f = field(SecondOrderField)
    z, p = phase_points()
    with pytest.raises(ValueError, match="one shape"):
        f.energy(z, p[:, :2], f.layer(0))
    with pytest.raises(TypeError, match="z and p must be torch.Tensors"):
        f.energy(z, p.tolist(), f.layer(0))
    with pytest.raises(TypeError, match=r"pair state \(z, p\), got Tensor"):
        f(torch.cat([z, p], -1)[:2], f.layer(0))   # a joined state of two rows, too
    with pytest.raises(ValueError, match="at least two layers"):
        theta_at(field(SecondOrderField, layers=1), 0.3, 1.0)
    with pytest.raises(TypeError, match="HamiltonianField"):
        energy_run(ResNetField(3, 1).double(), None, z, p, 0.1, 3, STORMER_VERLET)
    with pytest.raises(ValueError, match="one shape"):
        symplectic_defect(lambda z, p: (z, p), z, p[:, :1])


# --- the autonomous case: energy, symplecticity ---------------------------------------------

def pendulum_like():
    """``H = p^2/2 + log cosh z`` (the second-order field, width 1, A = 1, b = 0)."""
    f = SecondOrderField(1, 1, "tanh").double()
    theta = (torch.ones(1, 1, dtype=DT), torch.zeros(1, dtype=DT))
    z0 = torch.tensor([[1.5], [0.5]], dtype=DT)
    return f, theta, z0, torch.zeros_like(z0)


def test_stormer_verlet_energy_error_is_bounded_by_C_h2_over_1e5_steps_and_rk4_drifts():
    """Störmer--Verlet (the drift-kick-drift form: one force per step) over 1e5 steps."""
    f, theta, z0, p0 = pendulum_like()
    C = 0.16  # max |H - H_0| / h^2 measured 0.140 at h = 0.1 and 0.141 at h = 0.2
    long = energy_run(f, theta, z0, p0, 0.1, 100_000, STORMER_VERLET_ZPZ, every=10).error.abs()
    short = energy_run(f, theta, z0, p0, 0.2, 10_000, STORMER_VERLET_ZPZ, every=10).error.abs()
    assert long.max() <= C * 0.1 ** 2 and short.max() <= C * 0.2 ** 2
    assert long.max() >= 0.5 * C * 0.1 ** 2  # the bound is of the size of the error
    tenth = len(long) // 10
    assert long[-tenth:].max() <= 1.01 * long[:tenth].max()  # no drift over 1e5 steps
    rk4 = energy_run(f, theta, z0, p0, 0.1, 10_000, RK4, every=10).error.abs()
    tenth = len(rk4) // 10
    assert rk4[-tenth:].max() >= 5 * rk4[:tenth].max()  # a linear drift, visible at the same h


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_symplectic_pairs_have_M_T_J_M_equal_J_and_rk4_has_not(name):
    """Every pair's flow map satisfies M^T J M = J to round-off; RK4's does not."""
    f = field(GeneralHamiltonianField)
    z, p = phase_points()
    theta = f.layer(0)
    layer = f.vector_field(theta)
    flow = lambda pair: lambda z, p: rk_solve(layer, (z, p), 0.2, 20, pair)  # noqa: E731
    assert symplectic_defect(flow(PAIRS[name]), z, p) <= 1e-12
    assert symplectic_defect(flow(RK4), z, p) >= 1e-7


def test_the_exact_flow_is_symplectic():
    """The defect of RK4 with n steps on [0, 1] falls like h^4: the exact flow has none."""
    f = field(CoupledField)
    z, p = phase_points()
    theta = f.layer(0)
    layer = f.vector_field(theta)
    defects = [float(symplectic_defect(lambda z, p: rk_solve(layer, (z, p), 1 / n, n, RK4), z, p))
               for n in (4, 8, 16)]
    assert abs(observed_order([1 / 4, 1 / 8, 1 / 16], defects) - 4) < 0.3


@pytest.mark.parametrize("times", SLOPE_TIMES)
def test_separable_steps_stay_symplectic_when_theta_varies_within_the_step(times):
    """A separable H: every way of placing the stage times gives a symplectic map."""
    f = field(GeneralHamiltonianField, layers=2)
    z, p = phase_points()
    F = time_dependent(f, 1.0)
    for pair in PAIRS.values():
        assert symplectic_defect(lambda z, p: rk_step(F, 0.3, (z, p), 0.4, pair, times=times),
                                 z, p) <= 1e-13
    assert symplectic_defect(lambda z, p: rk_step(F, 0.3, (z, p), 0.4, RK4), z, p) >= 1e-6


def nonseparable(t, z, p):
    """A z-p coupling whose strength varies in time."""
    return 0.5 * (z.square() + p.square()).sum(-1) + math.sin(3 * t) * (z * p.roll(1, -1)).sum(-1)


def test_non_separable_symplectic_euler_needs_one_time_for_both_derivatives():
    """For a time-dependent coupling one time for both derivatives keeps the step symplectic;
    for a separable H the implicit step is the explicit symplectic Euler step."""
    z, p = phase_points()
    defect = {times: float(symplectic_defect(
        lambda z, p: symplectic_euler_general(nonseparable, 0.3, z, p, 0.1, times=times), z, p))
        for times in SLOPE_TIMES}
    assert defect["z"] <= 1e-14 and defect["p"] <= 1e-14
    assert defect["argument"] >= 1e-3 and defect["equation"] >= 1e-3
    # for a separable H it is the explicit symplectic Euler step
    f = field(SecondOrderField)
    theta = f.layer(0)
    H = lambda t, z, p: f.energy(z, p, theta)  # noqa: E731
    ours = symplectic_euler_general(H, 0.0, z, p, 0.1)
    explicit = rk_step(f.vector_field(theta), 0.0, (z, p), 0.1, SYMPLECTIC_EULER)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-14) for a, b in zip(ours, explicit))
    with pytest.raises(ValueError, match="iterations"):
        symplectic_euler_general(H, 0.0, z, p, 0.1, iterations=0)


def test_hamiltonian_jacobians_have_imaginary_eigenvalues():
    """J = [[0, S_1], [-S_2, 0]] with S_i = A_i^T D_i A_i >= 0 (sigma' >= 0): lambda^2 is an
    eigenvalue of -S_1 S_2 <= 0, so alpha(J) = 0, while mu_2(J) = |S_1 - S_2|_2 / 2 >= 0."""
    f = field(GeneralHamiltonianField, width=4, layers=6)
    z, p = phase_points(50, 4)
    y = torch.cat([z, p], -1)
    for theta in f.thetas():
        joined = tree.on_joined(lambda s, th=theta: f(s, th), (z, p))
        J = spectra.jacobians(lambda v, th: joined(v), theta, y)
        assert spectra.spectral_abscissa(J).abs().max() <= 1e-12
        S1, S2 = J[:, :4, 4:], -J[:, 4:, :4]
        half = torch.linalg.matrix_norm(S1 - S2, ord=2) / 2
        assert torch.allclose(spectra.log_norm(J), half, atol=1e-12)


# --- networks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", FIELDS)
@pytest.mark.parametrize("method", sorted(PAIRS) + ["rk4"])
def test_hamiltonian_networks_lift_step_and_classify(donut, cls, method):
    """The lift is (x padded, 0); the layers step (z, p); trajectory joins the pair; the
    classifier reads z^K."""
    x, _ = donut()
    net = ODENet(width=3, depth=6, T=2.0, field=cls, method=method, seed=0).double()
    z0, p0 = net.lift(x)
    assert torch.equal(p0, torch.zeros_like(z0)) and torch.equal(z0[:, :2], x)
    traj = net.trajectory(x)
    zK, pK = net.final_state(x)
    assert traj.shape == (7, 40, 6)
    assert torch.equal(traj[-1], torch.cat([zK, pK], -1)) and torch.equal(net.features(x), zK)
    assert torch.equal(net(x), net.classifier(zK))
    state = net.lift(x)
    for k in range(net.depth):
        state = net.layer(k)(state)
    assert torch.equal(state[0], zK) and torch.equal(state[1], pK)


def test_leapfrog_network_is_symplectic_euler_on_the_second_order_model(donut):
    """z^(k+1) = 2 z^k - z^(k-1) - h^2 A_k^T sigma(A_k z^k + b_k), z^(-1) = z^0 (Chang et al.)."""
    x, _ = donut()
    net = ODENet(width=3, depth=10, T=3.0, field=SecondOrderField, method=SYMPLECTIC_EULER,
                 seed=2).double()
    Z = net.trajectory(x)[..., :3]
    previous, z = Z[0], Z[0]
    for k, (A, b) in enumerate(net.field.thetas()):
        previous, z = z, 2 * z - previous - net.h ** 2 * torch.tanh(z @ A.T + b) @ A
        assert torch.allclose(z, Z[k + 1], rtol=0, atol=1e-13)


def test_hamiltonian_network_members_are_the_single_networks(donut):
    """Member s of a Hamiltonian network is the network of seed s."""
    x, _ = donut()
    many = ODENet(width=3, depth=4, T=1.0, field=CoupledField, method="stormer_verlet",
                  seed=[5, 6])
    alone = ODENet(width=3, depth=4, T=1.0, field=CoupledField, method="stormer_verlet", seed=6)
    assert torch.equal(many.member(1)(x.float()), alone(x.float()))
    assert torch.allclose(many(x.float())[1], alone(x.float()), atol=1e-6)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_inverse_recovers_the_input_to_1e_10_at_K_100(donut, name):
    """net.inverse runs the layers' inverses back to y^0 (and all states) to 1e-10 at K = 100."""
    x, _ = donut()
    net = ODENet(width=4, depth=100, T=10.0, field=GeneralHamiltonianField, method=name,
                 seed=0).double()
    back = net.inverse(net.final_state(x))
    z0, p0 = net.lift(x)
    assert max((back[0] - z0).abs().max(), (back[1] - p0).abs().max()) <= 1e-10
    states = net.inverse(net.final_state(x), trajectory=True)
    assert torch.allclose(states, net.trajectory(x), rtol=0, atol=1e-10)


def test_inverse_of_a_runge_kutta_network_is_refused(donut):
    """A Runge--Kutta network (tensor or pair state) has no explicit inverse: ValueError."""
    x, _ = donut()
    net = ODENet(width=3, depth=3, method="rk4", seed=0).double()
    with pytest.raises(ValueError, match="no explicit inverse.*symplectic pair"):
        net.inverse(net.final_state(x))
    hnet = ODENet(width=3, depth=3, field=SecondOrderField, method="rk4", seed=0).double()
    with pytest.raises(ValueError, match="no explicit inverse"):
        hnet.layer(0).inverse()
    with pytest.raises(ValueError, match="layer index"):
        hnet.layer(3, hnet.field.layer(0))


def test_networks_refuse_a_pair_with_a_non_separable_field_or_an_implicit_pair():
    """A pair needs a separable (Hamiltonian) field and explicit stages."""
    from lib.tableaux import LOBATTO_IIIA2, PartitionedTableau
    with pytest.raises(TypeError, match="partitioned pair.*not one.*lib.hamiltonian"):
        ODENet(width=3, depth=3, field="resnet", method="stormer_verlet")
    implicit = PartitionedTableau(LOBATTO_IIIA2, LOBATTO_IIIA2, 2, "iiia")
    with pytest.raises(ValueError, match="implicit on a separable field"):
        ODENet(width=3, depth=3, field=SecondOrderField, method=implicit)
    with pytest.raises(TypeError, match="field must be"):
        ODENet(width=3, depth=3, field=3)


@pytest.mark.parametrize("cls", FIELDS)
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_reversible_gradient_equals_dto_to_1e_10_at_K_100(donut, cls, name):
    """Reversible() (states reconstructed by the inverse layers) is DTO to 1e-10 at K = 100."""
    x, y = donut()
    net = ODENet(width=4, depth=100, T=5.0, field=cls, method=name, seed=1).double()
    assert gradients.relative_difference(gradients.Reversible()(net, x, y),
                                         gradients.DTO()(net, x, y)) <= 1e-10


def test_reversible_gradient_stores_no_states(donut):
    """DTO's peak memory grows like K; Reversible's by little more than the gradient itself."""
    x, y = donut(128)
    peaks = {}
    for K in (25, 100):
        net = smooth_network(width=4, depth=K, method="stormer_verlet", field=SecondOrderField)
        peaks[K] = {name: peak_memory(strategy, net, x, y)[1]
                    for name, strategy in (("dto", gradients.DTO()),
                                           ("reversible", gradients.Reversible()))}
    assert 3.5 < peaks[100]["dto"] / peaks[25]["dto"] < 4.5
    per_layer_parameters = (4 * 4 + 4) * 8  # A^k and b^k: counted as parameters and gradient
    growth = peaks[100]["reversible"] - peaks[25]["reversible"]
    assert growth <= 2.5 * 75 * per_layer_parameters
    assert peaks[100]["reversible"] <= peaks[100]["dto"] / 10


def test_gradient_strategies_accept_or_refuse_hamiltonian_networks(donut, small_net):
    """On a Störmer--Verlet network OTD() (the partitioned adjoint) and Checkpointed are DTO;
    an OTD tableau, Backsolve and torchdiffeq's adjoint refuse the pair, saying what to use;
    Reversible refuses networks without an explicit inverse."""
    x, y = donut()
    net = small_net(method="stormer_verlet", field=SecondOrderField)
    dto = gradients.DTO()(net, x, y)
    assert gradients.relative_difference(gradients.OTD()(net, x, y), dto) <= 64 * EPS
    checkpointed = gradients.Checkpointed(3)(net, x, y)
    assert all(torch.equal(checkpointed[k], dto[k]) for k in dto)
    for strategy, message in ((gradients.OTD("rk4"), "needs a network stepped by a Runge--Kutta"),
                              (gradients.Backsolve(), "use Reversible\\(\\) or OTD\\(\\)"),
                              (gradients.TorchdiffeqAdjoint(),
                               "tensor state.*the pair 'stormer_verlet_pzp'")):
        with pytest.raises(ValueError, match=message):
            strategy(net, x, y)
    with pytest.raises(ValueError, match="stepped by the pair"):
        gradients.Backsolve().states(net, x)
    for other in (small_net(), small_net(method="rk4", field=SecondOrderField)):
        with pytest.raises(ValueError, match="exact explicit inverse.*use DTO"):
            gradients.Reversible()(other, x, y)
    rk = small_net(method="rk4", field=SecondOrderField)   # a pair state stepped by RK4
    assert gradients.relative_difference(gradients.OTD()(rk, x, y),
                                         gradients.DTO()(rk, x, y)) <= 64 * EPS
    with pytest.raises(ValueError, match="steps a tensor state, not the pair"):
        gradients.TorchdiffeqAdjoint()(small_net(method="heun", field=SecondOrderField), x, y)


def test_training_refinement_and_regulariser_work_on_hamiltonian_networks(donut):
    """Training with a regulariser gives the same losses with DTO and Reversible; refined(m)
    keeps the pair; the features converge at Störmer--Verlet's order 2."""
    x, y = donut(60)
    make = lambda: ODENet(width=3, depth=8, T=4.0, field=GeneralHamiltonianField,  # noqa: E731
                          method="stormer_verlet", seed=3).double()
    a, b = make(), make()
    ha = train(a, x, y, iterations=15, lr=0.02, regulariser=time_smoothness(0.1))
    hb = train(b, x, y, iterations=15, lr=0.02, regulariser=time_smoothness(0.1),
               gradient=gradients.Reversible())
    assert torch.allclose(ha.loss, hb.loss, rtol=1e-9, atol=0)
    assert ha.loss[-1] < ha.loss[0]
    fine = a.refined(4)
    assert fine.depth == 32 and fine.tableau == a.tableau
    errors = feature_convergence(a, x, [1, 2, 4, 8], reference=128)
    assert abs(observed_order([a.h / m for m in (1, 2, 4, 8)], errors) - 2) < 0.2


def test_stability_diagnostics_read_the_phase_space_state(donut):
    """network_curves and perturbation_growth examine the pair state: alpha = 0, mu_2 >= 0."""
    x, _ = donut(30)
    net = ODENet(width=2, depth=5, T=2.0, field=CoupledField, method="stormer_verlet",
                 seed=0).double()
    curves = one_sided.network_curves(net, x, generator=torch.Generator().manual_seed(0))
    assert curves.spectral_abscissa.abs().max() <= 1e-12 and (curves.log_norm >= 0).all()
    growth = one_sided.perturbation_growth(net, x, generator=torch.Generator().manual_seed(0))
    assert growth.factor.shape == (6, 30)


def test_extended_phase_space_follows_K_while_H_changes():
    """On the extended phase space K = H + p_t is conserved while H changes."""
    f = field(GeneralHamiltonianField, layers=2)
    z, p = phase_points(4)
    run = extended_run(f, 2.0, z, p, 100)
    assert (run.H - run.H[0]).abs().max() >= 0.1
    assert (run.K - run.K[0]).abs().max() <= 1e-7
    assert torch.equal(run.K, run.H + run.p_t) and run.t[-1] == 2.0


def test_hamiltonian_figures_are_labelled():
    """Every Hamiltonian figure has labelled axes and names its initial points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.plotting import hamiltonian as hplot
    f, theta, z0, p0 = pendulum_like()
    runs = {name: energy_run(f, theta, z0, p0, 0.2, 50, name) for name in ("euler", "rk4")}
    figures = [hplot.energy_errors(runs, linear=["rk4"]),
               hplot.phase_portraits(runs, lambda z, p: f.energy(z, p, theta)),
               hplot.extended_phase_space(extended_run(field(CoupledField, layers=2), 1.0,
                                                       *phase_points(2), 10)),
               hplot.reconstruction_errors([10, 100], {"float64": [1e-15, 1e-14]},
                                           {"float64": 2 ** -53}),
               hplot.inversion_growth({"K = 10": (torch.tensor([2.0, 30.0]),
                                                  torch.tensor([1e-15, 1e-14]))}, 2 ** -52)]
    for fig in figures:
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel()
        plt.close(fig)
    labels = figures[2].axes[0].get_legend_handles_labels()[1]
    assert "$H(t) - H(0)$, point 2" in labels          # every initial point is named
    with pytest.raises(ValueError, match="starts"):
        hplot.extended_phase_space(extended_run(field(CoupledField, layers=2), 1.0,
                                                *phase_points(2), 10), starts=["one"])


def test_reconstruction_error_is_relative_round_off_per_member(donut):
    """reconstruction_error is round-off relative to the states' scale, one value per member."""
    x, _ = donut()
    net = ODENet(width=3, depth=50, T=5.0, field=CoupledField, method="stormer_verlet",
                 seed=[0, 1, 2])
    error = ham_reconstruction_error(net, x.float())
    assert error.shape == (3,) and (error <= 64 * torch.finfo(torch.float32).eps).all()
    single = net.member(1).double()
    assert ham_reconstruction_error(single, x) <= 64 * torch.finfo(DT).eps
    with pytest.raises(TypeError, match="Hamiltonian"):
        ham_reconstruction_error(ODENet(width=3, depth=2), x.float())


# --- the extended phase space under Störmer--Verlet, and inversion at a fixed step ----------

@pytest.mark.parametrize("cls", FIELDS)
def test_kinetic_and_potential_rates_are_the_time_derivatives_of_T_and_V(cls):
    """kinetic_rate and potential_rate are the jvps of T and V along theta'(t)."""
    f = field(cls, layers=3)
    z, p = phase_points()
    theta, rate = theta_at(f, 1.3, 2.0), theta_rate(f, 1.3, 2.0)
    for energy, method, x in ((f.kinetic, f.kinetic_rate, p), (f.potential, f.potential_rate, z)):
        _, derivative = torch.func.jvp(lambda *th: energy(x, th), theta, rate)
        assert torch.allclose(method(x, theta, rate), derivative, rtol=0, atol=1e-13)


def drift_of_K(f, T, z, p, steps, method):
    run = extended_run(f, T, z, p, steps, method)
    scale = run.H.abs().amax(0)
    return (((run.K - run.K[0]).abs() / scale).max(), ((run.H - run.H[0]).abs() / scale).max(),
            run)


@pytest.mark.parametrize("cls", FIELDS)
def test_extended_stormer_verlet_conserves_K_at_order_2_and_tracks_p_t(cls):
    """Störmer--Verlet on the extended space keeps K and tracks p_t at order 2 while H changes."""
    f = field(cls, layers=3)
    z, p = phase_points(4)
    T = 4.0
    reference = extended_run(f, T, z, p, 4096, RK4)
    drifts, p_t_errors = [], []
    for steps in (32, 64, 128):
        drift, change, run = drift_of_K(f, T, z, p, steps, "stormer_verlet")
        drifts.append(drift)
        p_t_errors.append((run.p_t[-1] - reference.p_t[-1]).abs().max())
        assert change >= 100 * drift      # H itself changes: order 0, not conserved
    for errors in (drifts, p_t_errors):
        orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
        assert all(1.8 <= q <= 2.2 for q in orders), orders


def test_extended_stormer_verlet_moves_z_and_p_as_the_pair_does_for_the_second_order_model():
    """For the second-order model the extended step moves (z, p) as the pair does on
    time_dependent(f, T)."""
    f = field(SecondOrderField, layers=5)
    z, p = phase_points(4)
    run_steps, T = 40, 3.0
    F = time_dependent(f, T)
    assert isinstance(F, Separable)
    Z, P = rk_solve(F, (z, p),
                    T / run_steps, run_steps, STORMER_VERLET, trajectory=True)
    state = (z, p, torch.zeros(4, dtype=DT))
    for k in range(run_steps):
        state = extended_verlet_step(f, T, k * T / run_steps, T / run_steps, state,
                                     k * 4 // run_steps)
    assert torch.allclose(state[0], Z[-1], rtol=0, atol=1e-13)
    assert torch.allclose(state[1], P[-1], rtol=0, atol=1e-13)


def test_extended_run_refuses_pairs_other_than_stormer_verlet():
    """extended_run takes a tableau or Störmer--Verlet, not another pair."""
    f = field(GeneralHamiltonianField, layers=2)
    with pytest.raises(ValueError, match="stormer_verlet"):
        extended_run(f, 1.0, *phase_points(2), 10, SYMPLECTIC_EULER)


def test_tangent_growth_is_the_norm_of_the_autograd_jacobian(donut):
    """tangent_growth is ||d y^k / d y^0||_2 of jacrev through the layers, [K+1, n]."""
    x, _ = donut(8)
    net = smooth_network(width=2, depth=12, T=6.0, method="stormer_verlet",
                         field=GeneralHamiltonianField)
    growth = tangent_growth(net, x)
    assert growth.shape == (13, 8) and torch.equal(growth[0], torch.ones(8, dtype=DT))

    def flow(y):   # y^0 -> y^K, the layers written out with net.layer
        state = (y[:2].unsqueeze(0), y[2:].unsqueeze(0))
        for k in range(net.depth):
            state = net.layer(k)(state)
        return torch.cat(state, -1).squeeze(0)

    y0 = torch.cat(net.lift(x), -1)
    M = torch.func.vmap(torch.func.jacrev(flow))(y0)
    assert torch.allclose(growth[-1], torch.linalg.matrix_norm(M, 2), rtol=1e-12, atol=0)
    with pytest.raises(TypeError, match=r"single \(no members\) Hamiltonian"):
        tangent_growth(ODENet(width=2, depth=2).double(), x)


def test_inversion_error_at_a_fixed_step_is_round_off_times_the_tangent_growth(donut):
    """At a fixed step the inversion error is round-off times the tangent growth, not K eps."""
    x, _ = donut(32)
    eps = torch.finfo(DT).eps
    for K in (100, 1000):
        net = smooth_network(width=4, depth=K, T=0.5 * K, method="stormer_verlet",
                             field=GeneralHamiltonianField, seed=0)
        error = ham_reconstruction_error(net, x, per_point=True)
        assert torch.equal(error.max(), ham_reconstruction_error(net, x))
        growth = tangent_growth(net, x).amax(0)
        assert (error <= 8 * eps * growth).all()
        if K == 1000:   # the count of layers alone does not explain it
            assert error.max() > 100 * K * eps
