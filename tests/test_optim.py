"""The optimisers of lib.optim against torch.optim, closed forms on quadratics, and the
conformal symplectic property (chapter 7)."""
import functools
import math

import pytest
import torch

import lib
from lib import optim
from lib.deep_limit import observed_order

EPS = torch.finfo(torch.float64).eps


def quadratic(d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(d, d, generator=g, dtype=torch.float64)
    Q = M @ M.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    x0 = torch.randn(d, generator=g, dtype=torch.float64)
    return Q, x0


def non_quadratic(Q):
    return lambda x: 0.5 * x @ Q @ x + 0.25 * (x ** 4).sum() + torch.cos(x).sum()


@pytest.mark.parametrize("h, gamma", [(0.1, 1.0), (0.3, 0.2)])
def test_heavy_ball_and_nesterov_are_torch_sgd(h, gamma):
    Q, x0 = quadratic()
    f = non_quadratic(Q)
    mu = math.exp(-gamma * h)
    for ours, nesterov in ((optim.HeavyBall, False), (optim.Nesterov, True)):
        a = optim.minimise(f, x0, functools.partial(ours, h=h, gamma=gamma), 40)
        b = optim.minimise(f, x0, lambda p: torch.optim.SGD(p, lr=h * h, momentum=mu,
                                                             nesterov=nesterov), 40)
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14), ours.__name__


def test_gradient_descent_is_torch_sgd_and_closed_form():
    Q, x0 = quadratic()
    tau = 0.2
    values = optim.minimise(lambda x: 0.5 * x @ Q @ x, x0,
                            functools.partial(optim.GradientDescent, lr=tau), 10)
    reference = optim.minimise(lambda x: 0.5 * x @ Q @ x, x0,
                               lambda p: torch.optim.SGD(p, lr=tau), 10)
    assert torch.equal(values, reference)
    xk = torch.linalg.matrix_power(torch.eye(4, dtype=torch.float64) - tau * Q, 10) @ x0
    assert values[-1] == pytest.approx(float(0.5 * xk @ Q @ xk), rel=1e-12)


def test_gradient_descent_stability_limit_two_over_L():
    Q, x0 = quadratic()
    L = float(torch.linalg.eigvalsh(Q).max())
    f = lambda x: 0.5 * x @ Q @ x
    below = optim.minimise(f, x0, functools.partial(optim.GradientDescent, lr=1.9 / L), 300)
    above = optim.minimise(f, x0, functools.partial(optim.GradientDescent, lr=2.1 / L), 300)
    assert below[-1] < 1e-6 * below[0] and above[-1] > 1e6 * above[0]


def test_heavy_ball_closed_form_on_a_quadratic():
    """On f = lambda q^2 / 2 one step is the matrix [[1 - h^2 lam, h mu], [-h lam, mu]]."""
    lam, h, gamma = 2.0, 0.2, 0.5
    mu = math.exp(-gamma * h)
    step = torch.tensor([[1 - h * h * lam, h * mu], [-h * lam, mu]], dtype=torch.float64)
    q, p = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    state = torch.tensor([1.0, 0.0], dtype=torch.float64)
    for _ in range(20):
        q, p = optim.heavy_ball_step(q, p, lambda z: lam * z, h, gamma)
        state = step @ state
    assert torch.allclose(torch.cat([q, p]), state, rtol=1e-13, atol=1e-15)


def step_determinant(step, f, q, p, *args):
    return optim.step_determinant(step, q, p, torch.func.grad(f), *args)


def test_heavy_ball_is_conformal_symplectic_nesterov_is_not():
    """Theorem (chapter 7): det of one heavy-ball step = mu^d on a non-quadratic f."""
    Q, q = quadratic(d=5)
    p = torch.linspace(-1, 1, 5, dtype=torch.float64)
    f = non_quadratic(Q)
    h, gamma = 0.3, 1.0
    mu_d = math.exp(-gamma * h) ** 5
    heavy = step_determinant(optim.heavy_ball_step, f, q, p, h, gamma)
    assert abs(heavy - mu_d) / mu_d <= 16 * EPS
    nesterov = step_determinant(optim.nesterov_step, f, q, p, h, gamma)
    assert abs(nesterov - mu_d) / mu_d > 1e-3
    hd = step_determinant(optim.hamiltonian_descent_step, f, q, p, h, gamma, 2.0)
    assert abs(hd - mu_d) / mu_d <= 16 * EPS


def test_hamiltonian_descent_with_a_2_is_heavy_ball():
    Q, x0 = quadratic()
    f = non_quadratic(Q)
    a = optim.minimise(f, x0, functools.partial(optim.HamiltonianDescent, h=0.1, gamma=1.0,
                                                a=2.0), 30)
    b = optim.minimise(f, x0, functools.partial(optim.HeavyBall, h=0.1, gamma=1.0), 30)
    assert torch.allclose(a, b, rtol=1e-13, atol=0)


def test_hamiltonian_descent_linear_on_quartic_heavy_ball_not():
    f = lambda x: (x ** 4).sum()
    x0 = torch.tensor([1.0], dtype=torch.float64)
    hd = optim.minimise(f, x0, functools.partial(optim.HamiltonianDescent, h=0.1, gamma=1.0,
                                                 a=4 / 3), 400)
    hb = optim.minimise(f, x0, functools.partial(optim.HeavyBall, h=0.1, gamma=1.0), 400)
    assert hd[-1] < 1e-15 and hb[-1] > 1e-7


def test_relativistic_is_the_published_recursion():
    Q, x0 = quadratic()
    f = non_quadratic(Q)
    gradient = torch.func.grad(f)
    lr, mu, delta, alpha = 0.05, 0.8, 0.5, 0.7
    x, v, xs = x0, torch.zeros_like(x0), []
    for _ in range(20):  # the published loop (França et al., opt_solvers.relativistic)
        x_half = x + math.sqrt(mu) * v / math.sqrt(1 + delta * mu * float(v @ v))
        v_half = math.sqrt(mu) * v - lr * gradient(x_half)
        drift = v_half / math.sqrt(1 + delta * float(v_half @ v_half))
        x = alpha * x_half + (1 - alpha) * x + drift
        v = math.sqrt(mu) * v_half
        xs.append(x)
    ours, p = x0, torch.zeros_like(x0)
    for k in range(20):
        ours, p = optim.relativistic_step(ours, p, gradient, lr, mu, delta, alpha)
        assert torch.allclose(ours, xs[k], rtol=1e-13, atol=1e-15)
    values = optim.minimise(f, x0, functools.partial(optim.RelativisticGD, lr=lr, mu=mu,
                                                     delta=delta, alpha=alpha), 20)
    x_half = xs[-1] + math.sqrt(mu) * v / math.sqrt(1 + delta * mu * float(v @ v))
    assert values[-1] == pytest.approx(float(f(x_half)), rel=1e-12)


def test_nesterov_ode_deviation_is_order_sqrt_s():
    A = torch.tensor([0.04, 0.01], dtype=torch.float64)
    gradient = lambda x: A * x
    x0 = torch.ones(2, dtype=torch.float64)
    T, fine_per_unit = 10.0, 160
    fine = optim.nesterov_ode(gradient, x0, T, int(T * fine_per_unit))
    ss, devs = [], []
    for m in (1, 2, 4, 8):
        root = 1 / (10 * m)
        xs = optim.nesterov_sbc(gradient, x0, root ** 2, int(round(T / root)))
        X = fine[::int(round(fine_per_unit * root))]
        devs.append(float((xs - X).norm(dim=1).max()))
        ss.append(root ** 2)
    assert abs(observed_order(ss, devs) - 0.5) <= 0.1


def test_nesterov_restart_reaches_lower_values_on_a_strongly_convex_quadratic():
    Q, x0 = quadratic(d=6, seed=2)
    f = lambda x: 0.5 * x @ Q @ x
    gradient = lambda x: Q @ x
    s = 1 / float(torch.linalg.eigvalsh(Q).max())
    plain = optim.nesterov_sbc(gradient, x0, s, 300)
    restarted = optim.nesterov_sbc(gradient, x0, s, 300, f=f)
    assert f(restarted[-1]) < 1e-3 * f(plain[-1])


def test_optimisers_train_a_network(donut):
    X, y = donut(50)
    for make in (functools.partial(optim.HeavyBall, h=0.3, gamma=1.0),
                 functools.partial(optim.HamiltonianDescent, h=0.3, gamma=1.0, a=1.5)):
        net = lib.ODENet(width=2, depth=4, seed=0).double()
        history = lib.train(net, X, y, iterations=30, optimizer=make)
        assert history.loss[-1] < history.loss[0]


def test_power_kinetic_gradient_is_the_gradient_of_the_kinetic_energy():
    p = torch.tensor([0.3, -1.2, 0.5], dtype=torch.float64)
    for a in (1.5, 2.0, 4 / 3, 3.0):
        exact = torch.func.grad(lambda v: v.norm() ** a / a)(p)
        torch.testing.assert_close(optim.power_kinetic_gradient(p, a), exact, rtol=1e-14, atol=0)
    assert torch.equal(optim.power_kinetic_gradient(p, 2.0), p)
    assert torch.equal(optim.power_kinetic_gradient(torch.zeros(3), 1.5), torch.zeros(3))


def test_momentum_iterates_start_at_rest_and_repeat_the_step():
    Q, x0 = quadratic()
    gradient = lambda x: Q @ x  # noqa: E731
    qs = optim.momentum_iterates(optim.heavy_ball_step, x0, gradient, 5, 0.2, 0.5)
    q, p = x0, torch.zeros_like(x0)
    assert qs.shape == (6, 4) and torch.equal(qs[0], x0)
    for k in range(5):
        q, p = optim.heavy_ball_step(q, p, gradient, 0.2, 0.5)
        assert torch.equal(qs[k + 1], q)


def test_linear_rate_is_exact_on_a_geometric_sequence_and_refuses_bad_windows():
    k = torch.arange(30, dtype=torch.float64)
    values = 3 * torch.exp(-0.2 * k)
    assert optim.linear_rate(values, 0, 29) == pytest.approx(0.2, rel=1e-12)
    assert optim.linear_rate(values, 10, 15) == pytest.approx(0.2, rel=1e-12)
    sublinear = 1 / (k + 1)       # the rate of f_k = 1/(k+1) decays from window to window
    assert optim.linear_rate(sublinear, 20, 29) < 0.5 * optim.linear_rate(sublinear, 0, 9)
    for first, last in ((5, 5), (-1, 3), (0, 30)):
        with pytest.raises(ValueError, match="0 <= first < last < len"):
            optim.linear_rate(values, first, last)
    with pytest.raises(ValueError, match="positive"):
        optim.linear_rate(values - 1, 0, 29)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_sharpness_is_the_largest_eigenvalue_of_the_hessian(donut):
    # (forward-mode AD loads torch's own TorchScript decompositions once, which warns)
    """Power iteration against the eigenvalues of the full Hessian of the data loss over all
    15 parameters of a small network (the largest in modulus is positive here)."""
    X, y = donut(30)
    net = lib.ODENet(width=2, depth=2, T=1.0, seed=1).double()
    names, shapes = zip(*((n, p.shape) for n, p in net.named_parameters()))
    theta = torch.cat([p.detach().flatten() for p in net.parameters()])

    def E(vector):
        chunks = vector.split([math.prod(s) for s in shapes])
        params = {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}
        return lib.losses.cross_entropy(torch.func.functional_call(net, params, (X,)), y)

    eigenvalues = torch.linalg.eigvalsh(torch.func.hessian(E)(theta))
    assert eigenvalues[-1] > eigenvalues[0].abs()
    assert optim.sharpness(net, X, y) == pytest.approx(float(eigenvalues[-1]), rel=1e-9)


def test_layer_displacements_train_a_copy(donut):
    from lib.parameter_path import parameter_path

    X, y = donut(30)
    net = lib.ODENet(width=2, depth=3, T=1.5, seed=2).double()
    before = parameter_path(net)
    moved = optim.layer_displacements(net, X, y, "gd", 0.1, 5)
    assert torch.equal(parameter_path(net), before)          # the network itself is untouched
    trained = lib.ODENet(width=2, depth=3, T=1.5, seed=2).double()
    lib.train(trained, X, y, iterations=5, optimizer="gd", lr=0.1)
    torch.testing.assert_close(moved, (parameter_path(trained) - before).norm(dim=-1),
                               rtol=1e-12, atol=0)
    assert moved.shape == (3,) and bool((moved > 0).all())


def test_bad_arguments():
    x = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="lr"):
        optim.GradientDescent(x, lr=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        optim.HeavyBall(x, h=0.1, gamma=-1.0)
    with pytest.raises(ValueError, match="a must be"):
        optim.HamiltonianDescent(x, h=0.1, gamma=1.0, a=1.0)
    with pytest.raises(ValueError, match="mu"):
        optim.RelativisticGD(x, lr=0.1, mu=1.5, delta=0.1)
    with pytest.raises(ValueError, match="t0"):
        optim.nesterov_ode(lambda z: z, torch.ones(1), T=1.0, steps=10, t0=0.5)
    net = lib.ODENet(width=2, depth=2, seed=0)
    X, y = lib.make_dataset("donut2d", 10, seed=0)
    with pytest.raises(TypeError, match="optimizer"):
        lib.train(net, X, y, iterations=1, optimizer=lambda params: "not an optimizer")


def test_training_dynamics_figures_draw_and_refuse_no_panels():
    import matplotlib.pyplot as plt

    from lib.plotting import training_dynamics as tplot

    runs = torch.rand(5, 20, dtype=torch.float64) + 0.1
    fig = tplot.curves_figure([dict(series={"a": runs, "b": runs[0]}, title="t")])
    assert fig.axes[0].get_title() == "t" and len(fig.axes[0].get_lines()) == 2
    fig2 = tplot.loss_and_time({"a": runs}, {"a": [1.0] * 5}, target=0.5)
    assert [ax.get_xlabel() for ax in fig2.axes] == ["iteration", "seconds"]
    plt.close("all")
    with pytest.raises(ValueError, match="panels"):
        tplot.curves_figure([])
