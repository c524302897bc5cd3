"""Full-batch training: it learns donut2d, it is deterministic, its losses and regulariser are
the documented formulas, members train as they would alone, a gradient strategy replaces
autograd, and it stops with the iteration when the objective is not finite."""
import copy
import math

import pytest
import torch

import lib
from lib.deep_limit import refine
from lib.train import (LOSSES, History, accuracy, cross_entropy, least_squares, parameter_path,
                       path_distance, roughness, time_smoothness, train)

SETTING = dict(width=3, depth=5, T=5.0, seed=0)


@pytest.fixture(scope="module")
def donut():
    return lib.make_dataset("donut2d", 200, seed=0), lib.make_dataset("donut2d", 200, seed=1)


def test_adam_learns_donut2d(donut):
    (X, y), validation = donut
    net = lib.ODENet(**SETTING)
    history = train(net, X, y, iterations=200, optimizer="adam", lr=0.05, validation=validation)
    # measured (torch 2.13, CPU): loss 0.923 -> 0.099, train accuracy 0.970, validation 0.930
    assert isinstance(history, History)
    assert len(history.loss) == 200
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.train_accuracy[-1] >= 0.9
    assert history.validation_accuracy[-1] >= 0.85
    assert history.recorded == list(range(10, 201, 10))
    assert len(history.train_accuracy) == len(history.validation_accuracy) == 20
    assert history.train_accuracy[-1] == pytest.approx(accuracy(net, X, y).item())


def test_gradient_descent_learns_donut2d(donut):
    (X, y), _ = donut
    net = lib.ODENet(**SETTING)
    history = train(net, X, y, iterations=300, optimizer="gd", lr=0.5, record_every=300)
    # measured: loss 0.923 -> 0.139, train accuracy 0.940
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.train_accuracy[-1] >= 0.85
    assert history.recorded == [300] and history.validation_accuracy is None


def test_gradient_descent_step_is_theta_minus_lr_grad(donut):
    (X, y), _ = donut
    net = lib.ODENet(**SETTING)
    reference = copy.deepcopy(net)
    cross_entropy(reference(X), y).backward()
    expected = [p - 0.1 * p.grad for p in reference.parameters()]
    train(net, X, y, iterations=1, optimizer="gd", lr=0.1)
    for p, q in zip(net.parameters(), expected):
        assert torch.allclose(p, q, rtol=0, atol=1e-7)


def test_training_is_deterministic(donut):
    (X, y), _ = donut
    runs = []
    for _ in range(2):
        net = lib.ODENet(**SETTING)
        history = train(net, X, y, iterations=30, optimizer="adam", lr=0.05)
        runs.append((history, [p.detach().clone() for p in net.parameters()]))
    (h1, p1), (h2, p2) = runs
    assert torch.equal(h1.loss, h2.loss) and torch.equal(h1.train_accuracy, h2.train_accuracy)
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


def test_loss_history_is_the_objective_before_each_update(donut):
    (X, y), _ = donut
    net = lib.ODENet(**SETTING)
    initial = cross_entropy(net(X), y).item()
    history = train(net, X, y, iterations=3, lr=0.05)
    assert history.loss[0] == pytest.approx(initial, rel=1e-6)


def test_cross_entropy_formulas():
    logits = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    s = torch.sigmoid(logits)
    expected = -(y * s.log() + (1 - y) * (1 - s).log()).mean()
    assert cross_entropy(logits, y).item() == pytest.approx(expected.item(), rel=1e-12)
    many = torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.0, -1.0]], dtype=torch.float64)
    labels = torch.tensor([2, 0])
    expected = -(many.softmax(1)[[0, 1], labels]).log().mean()
    assert cross_entropy(many, labels).item() == pytest.approx(expected.item(), rel=1e-12)


def test_least_squares_formulas():
    logits = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    expected = sum(0.5 * (1 / (1 + math.exp(-v)) - t) ** 2 for v, t in zip(logits.tolist(), y.tolist())) / 3
    assert least_squares(logits, y).item() == pytest.approx(expected, rel=1e-12)
    many = torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.0, -1.0]], dtype=torch.float64)
    labels = torch.tensor([2, 0])
    onehot = torch.tensor([[0, 0, 1], [1, 0, 0]], dtype=torch.float64)
    expected = 0.5 * ((many.softmax(1) - onehot) ** 2).sum() / 2
    assert least_squares(many, labels).item() == pytest.approx(expected.item(), rel=1e-12)
    assert set(LOSSES) == {"cross_entropy", "least_squares", "mean_squared"}


def test_least_squares_training_uses_that_loss_and_learns(donut):
    (X, y), _ = donut
    net = lib.ODENet(**SETTING)
    initial = least_squares(net(X), y).item()
    history = train(net, X, y, iterations=200, lr=0.05, loss="least_squares")
    assert history.loss[0] == pytest.approx(initial, rel=1e-6)
    assert history.loss[-1] < 0.3 * history.loss[0]
    assert history.train_accuracy[-1] >= 0.85


def test_three_classes_train():
    X, y = lib.make_dataset("spiral", 60, seed=0)
    y = torch.where(X[:, 0] > 0.5, torch.tensor(2), y)
    net = lib.ODENet(width=3, depth=3, T=3.0, classes=3)
    history = train(net, X, y, iterations=20, lr=0.05)
    assert history.loss[-1] < history.loss[0]


def time_smoothness_by_loop(net, lam):
    """``lam h sum_k |(theta^{k+1} - theta^k) / h|^2`` over A and b, written out."""
    h, total = net.h, 0.0
    for k in range(net.depth - 1):
        for theta in (net.field.A, net.field.b):
            total += (((theta[k + 1] - theta[k]) / h) ** 2).sum().item()
    return lam * h * total


@pytest.mark.parametrize("T", [1.0, 5.0, None])
def test_time_smoothness_is_the_discretised_integral(T):
    net = lib.ODENet(width=3, depth=4, T=T, seed=2).double()
    assert time_smoothness(0.7)(net).item() == pytest.approx(time_smoothness_by_loop(net, 0.7), rel=1e-12)
    assert time_smoothness(0.0)(net).item() == 0.0


def test_time_smoothness_of_constant_parameters_is_zero():
    net = lib.ODENet(width=2, depth=4)
    with torch.no_grad():
        net.field.A.copy_(net.field.A[:1].expand_as(net.field.A))
        net.field.b.copy_(net.field.b[:1].expand_as(net.field.b))
    assert time_smoothness(1.0)(net).item() == 0.0


def test_regulariser_is_added_to_the_objective_and_its_gradient_used(donut):
    (X, y), _ = donut
    net = lib.ODENet(**SETTING)
    plain = copy.deepcopy(net)
    data, R = cross_entropy(net(X), y).item(), time_smoothness_by_loop(net, 1.0)
    history = train(net, X, y, iterations=50, lr=0.05, regulariser=time_smoothness(1.0))
    assert history.loss[0] == pytest.approx(data + R, rel=1e-5)
    train(plain, X, y, iterations=50, lr=0.05)
    # the regulariser's gradient makes the layers' parameters vary less in time
    assert time_smoothness_by_loop(net, 1.0) < 0.5 * time_smoothness_by_loop(plain, 1.0)


def test_regulariser_returning_nan_stops_training_naming_the_iteration(donut):
    (X, y), _ = donut
    calls = []

    def nan_at_seven(net):
        calls.append(len(calls))
        return torch.tensor(math.nan if len(calls) == 8 else 0.0)

    with pytest.raises(ValueError, match=r"non-finite.*iteration 7\b"):
        train(lib.ODENet(**SETTING), X, y, iterations=30, lr=0.05, regulariser=nan_at_seven,
              record_every=5)
    assert 8 <= len(calls) <= 10       # stopped at the latest at the end of the block 5..9


def test_huge_learning_rate_is_reported_as_non_finite(donut):
    (X, y), _ = donut
    net = lib.ODENet(width=3, depth=5, T=5.0, activation="identity", seed=0)
    with pytest.raises(ValueError, match=r"non-finite .*at iteration \d+"):
        train(net, X, y, iterations=50, optimizer="gd", lr=1e6)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(iterations=0), ValueError, "iterations"),
    (dict(iterations=2.5), ValueError, "iterations"),
    (dict(optimizer="sgd"), ValueError, "unknown optimizer"),
    (dict(loss="mse"), ValueError, "unknown loss"),
    (dict(lr=0), ValueError, "lr"),
    (dict(lr=-0.1), ValueError, "lr"),
    (dict(lr=float("inf")), ValueError, "lr"),
    (dict(lr=True), ValueError, "lr"),
    (dict(record_every=0), ValueError, "record_every"),
    (dict(record_every=True), ValueError, "record_every"),
])
def test_bad_arguments_are_refused(donut, kwargs, error, message):
    (X, y), _ = donut
    with pytest.raises(error, match=message):
        train(lib.ODENet(**SETTING), X, y, **kwargs)


def test_bad_data_is_refused(donut):
    (X, y), _ = donut
    net = lib.ODENet(**SETTING)
    with pytest.raises(ValueError, match="X must have shape"):
        train(net, X[:, :1], y, iterations=1)
    with pytest.raises(ValueError, match="y must be a long tensor"):
        train(net, X, y.float(), iterations=1)
    with pytest.raises(ValueError, match="y must be a long tensor"):
        train(net, X, y[:-1], iterations=1)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        train(net, X, y + 1, iterations=1)
    with pytest.raises(TypeError, match="pair of tensors"):
        train(net, X.tolist(), y, iterations=1)
    with pytest.raises(ValueError, match="validation"):
        train(net, X, y, iterations=1, validation=(X[:, :1], y))
    with pytest.raises(TypeError, match="validation must be a pair"):
        train(net, X, y, iterations=1, validation=X)
    with pytest.raises(ValueError, match="lam"):
        time_smoothness(-1.0)


def test_members_train_as_they_would_alone():
    """Three seeds trained together by gradient descent (float64) follow the paths of the three
    networks trained alone, to round-off (the batched products differ from the single ones in
    the last bits of some gradients only)."""
    seeds = [0, 1, 2]
    data = [lib.make_dataset("donut2d", 80, seed=s, dtype=torch.float64) for s in seeds]
    X, y = torch.stack([d[0] for d in data]), torch.stack([d[1] for d in data])
    members = lib.ODENet(width=3, depth=4, T=2.0, method="heun", seed=seeds).double()
    together = train(members, X, y, iterations=40, optimizer="gd", lr=0.5,
                     regulariser=time_smoothness(0.1), record_every=20)
    assert together.loss.shape == (40, 3) and together.train_accuracy.shape == (2, 3)
    for i, s in enumerate(seeds):
        net = lib.ODENet(width=3, depth=4, T=2.0, method="heun", seed=s).double()
        alone = train(net, X[i], y[i], iterations=40, optimizer="gd", lr=0.5,
                      regulariser=time_smoothness(0.1), record_every=20)
        assert torch.allclose(together.loss[:, i], alone.loss, rtol=1e-12, atol=0)
        assert torch.equal(together.train_accuracy[:, i], alone.train_accuracy)
        for (name, p), q in zip(members.member(i).named_parameters(), net.parameters()):
            assert torch.allclose(p, q, rtol=1e-12, atol=1e-14), name


def test_a_non_finite_member_is_named(donut):
    (X, y), _ = donut
    net = lib.ODENet(width=3, depth=5, T=5.0, activation="identity", seed=[3, 4])
    with torch.no_grad():
        net.field.A[:, 1] *= 1e3
    with pytest.raises(ValueError, match=r"at iteration \d+ \(member 1, seed 4\)"):
        train(net, X, y, iterations=20, optimizer="gd", lr=10.0)


def test_a_gradient_strategy_replaces_autograd(donut):
    """train(gradient=...) with a strategy that returns autograd's gradient by hand follows
    autograd's path exactly, and the regulariser's gradient is still added."""
    (X, y), _ = donut
    X, y = X.double(), y

    def by_hand(net, X, y, loss):
        params = dict(net.named_parameters())
        grads = torch.autograd.grad(LOSSES[loss](net(X), y), tuple(params.values()))
        return dict(zip(params, grads))

    a, b = lib.ODENet(**SETTING).double(), lib.ODENet(**SETTING).double()
    ha = train(a, X, y, iterations=10, optimizer="gd", lr=0.3, regulariser=time_smoothness(0.5))
    hb = train(b, X, y, iterations=10, optimizer="gd", lr=0.3, regulariser=time_smoothness(0.5),
               gradient=by_hand)
    assert torch.allclose(ha.loss, hb.loss, rtol=1e-13, atol=0)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match="gradient must be callable"):
        train(a, X, y, iterations=1, gradient="otd")


def test_labels_are_checked_again_after_they_change(donut):
    """The label check reads a tensor once; modifying it in place makes it read again."""
    (X, y), _ = donut
    net = lib.ODENet(**SETTING)
    y = y.clone()
    train(net, X, y, iterations=1)
    y[0] = 5
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        train(net, X, y, iterations=1)


# --- R_h by hand, its gradient, the roughness and the distance between refinements ----------

def small_net(members=None):
    """Width 2, K = 3 layers, T = 1.5 (h = 1/2), with parameters chosen by hand: A^k = k I and
    b^k = (k, -k) for k = 0, 1, 2 (members s add s to every entry)."""
    seed = 0 if members is None else list(range(members))
    net = lib.ODENet(width=2, depth=3, T=1.5, seed=seed).double()
    k = torch.arange(3, dtype=torch.float64)
    A = k[:, None, None] * torch.eye(2, dtype=torch.float64)
    b = torch.stack([k, -k], 1)
    with torch.no_grad():
        if members is None:
            net.field.A.copy_(A)
            net.field.b.copy_(b)
        else:
            s = torch.arange(members, dtype=torch.float64)
            net.field.A.copy_(A[:, None] + s[None, :, None, None])
            net.field.b.copy_(b[:, None] + s[None, :, None])
    return net


def test_time_smoothness_by_hand():
    """Each jump theta^{k+1} - theta^k has A-part I and b-part (1, -1): |jump|^2 = 2 + 2 = 4.
    Two jumps, h = 1/2: R_h = lam h sum |jump / h|^2 = lam (1/2) 2 (4 / (1/4)) = 16 lam."""
    assert time_smoothness(0.25)(small_net()).item() == 4.0
    assert torch.equal(time_smoothness(0.25)(small_net(members=3)),
                       torch.tensor([4.0, 4.0, 4.0], dtype=torch.float64))


def test_time_smoothness_gradient_is_the_discrete_laplacian():
    """dR_h/dtheta^k = (2 lam / h) (2 theta^k - theta^{k-1} - theta^{k+1}), with one neighbour at
    the ends (the discrete -2 lam theta''); autograd agrees, and so do finite differences."""
    torch.manual_seed(0)
    net = lib.ODENet(width=3, depth=6, T=2.0, seed=1).double()
    lam = 0.7
    time_smoothness(lam)(net).backward()
    for theta in (net.field.A, net.field.b):
        p = theta.detach()
        neighbours = torch.zeros_like(p)
        neighbours[1:] += p[1:] - p[:-1]
        neighbours[:-1] += p[:-1] - p[1:]
        assert torch.allclose(theta.grad, 2 * lam / net.h * neighbours, rtol=1e-13, atol=1e-13)
    # R_h is quadratic, so a central difference is exact up to round-off
    for theta, index in ((net.field.A, (2, 1, 0)), (net.field.b, (5, 2)), (net.field.b, (0, 0))):
        values = []
        for step in (1e-3, -1e-3):
            with torch.no_grad():
                theta[index] += step
            values.append(time_smoothness(lam)(net).item())
            with torch.no_grad():
                theta[index] -= step
        assert (values[0] - values[1]) / 2e-3 == pytest.approx(theta.grad[index].item(), rel=1e-8)


def test_roughness_by_hand_and_its_bound():
    """Two jumps of norm 2: roughness 4; Cauchy-Schwarz: roughness^2 <= (K-1) h R_h / lam."""
    assert roughness(small_net()).item() == 4.0
    assert torch.equal(roughness(small_net(members=2)), torch.tensor([4.0, 4.0], dtype=torch.float64))
    net = lib.ODENet(width=3, depth=7, T=2.0, seed=3).double()
    lam = 0.3
    assert roughness(net) ** 2 <= (net.depth - 1) * net.h * time_smoothness(lam)(net) / lam
    assert torch.equal(parameter_path(small_net())[2], torch.tensor([2.0, 0, 0, 2, 2, -2],
                                                                    dtype=torch.float64))


def test_roughness_of_a_refined_network_is_unchanged():
    net = lib.ODENet(width=2, depth=5, T=3.0, seed=4).double()
    assert roughness(refine(net, 4)).item() == pytest.approx(roughness(net).item(), rel=1e-14)


def test_path_distance_by_hand_and_of_refinements():
    """The coarse network's theta(t) against a fine one that differs by c on one fine step of
    length h_f: distance |c| sqrt(h_f); a refinement of the same theta(t) is at distance 0."""
    coarse = small_net()
    fine = refine(coarse, 2)
    assert path_distance(coarse, fine).item() == 0.0
    with torch.no_grad():
        fine.field.b[3, 0] += 2.0       # h_f = 1/4: distance 2 * 1/2 = 1
    assert path_distance(coarse, fine).item() == 1.0
    members = small_net(members=2)
    assert torch.equal(path_distance(members, refine(members, 3)), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="multiple"):
        path_distance(refine(coarse, 2), refine(coarse, 3))
    with pytest.raises(ValueError, match="share T"):
        path_distance(coarse, lib.ODENet(width=2, depth=6, T=1.0).double())
    with pytest.raises(ValueError, match="members"):
        path_distance(coarse, refine(members, 2))
