"""Full-batch training (lib.training, lib.train): it learns donut2d, it is deterministic, its
losses (lib.losses) are the documented formulas, the regulariser is added, members train as
they would alone, a gradient strategy of lib.gradients replaces autograd with the loss it
reports, and training stops with the iteration when the objective is not finite."""
import copy
import math

import pytest
import torch

import lib
from lib.gradients import OTD, Checkpointed, Reversible, Strategy, relative_difference
from lib.hamiltonian import CoupledField
from lib.losses import LOSSES, accuracy, cross_entropy, least_squares
from lib.regularisers import time_smoothness
from lib.training import History, train

SETTING = dict(width=3, depth=5, T=5.0, seed=0)


def parameters(net):
    return {name: p.detach() for name, p in net.named_parameters()}


@pytest.fixture(scope="module")
def donut200(donut):
    """200 training and 200 validation points of donut2d (float64)."""
    return donut(200, 0), donut(200, 1)


def setting_net():
    return lib.ODENet(**SETTING).double()


def test_adam_learns_donut2d(donut200):
    """Adam reaches a fifth of the initial loss and 90% training accuracy in 200 steps."""
    (X, y), validation = donut200
    net = setting_net()
    history = train(net, X, y, iterations=200, optimizer="adam", lr=0.05, validation=validation)
    # measured (torch 2.13, CPU, float32): loss 0.923 -> 0.099, accuracy 0.970, validation 0.930
    assert isinstance(history, History)
    assert len(history.loss) == 200
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.train_accuracy[-1] >= 0.9
    assert history.validation_accuracy[-1] >= 0.85
    assert history.recorded == list(range(10, 201, 10))
    assert len(history.train_accuracy) == len(history.validation_accuracy) == 20
    assert history.train_accuracy[-1] == pytest.approx(accuracy(net, X, y).item())


def test_gradient_descent_learns_donut2d(donut200):
    """Gradient descent reaches a fifth of the initial loss and 85% accuracy in 300 steps."""
    (X, y), _ = donut200
    net = setting_net()
    history = train(net, X, y, iterations=300, optimizer="gd", lr=0.5, record_every=300)
    # measured (float32): loss 0.923 -> 0.139, train accuracy 0.940
    assert history.loss[-1] < 0.2 * history.loss[0]
    assert history.train_accuracy[-1] >= 0.85
    assert history.recorded == [300] and history.validation_accuracy is None


def test_gradient_descent_step_is_theta_minus_lr_grad(donut200):
    """One step of "gd" is theta - lr dE/dtheta with autograd's gradient."""
    (X, y), _ = donut200
    net = setting_net()
    reference = copy.deepcopy(net)
    cross_entropy(reference(X), y).backward()
    expected = [p - 0.1 * p.grad for p in reference.parameters()]
    train(net, X, y, iterations=1, optimizer="gd", lr=0.1)
    for p, q in zip(net.parameters(), expected):
        assert torch.allclose(p, q, rtol=0, atol=1e-7)


def test_training_is_deterministic(donut200):
    """Two runs from the same seed give bitwise the same losses, accuracies and parameters."""
    (X, y), _ = donut200
    runs = []
    for _ in range(2):
        net = setting_net()
        history = train(net, X, y, iterations=30, optimizer="adam", lr=0.05)
        runs.append((history, [p.detach().clone() for p in net.parameters()]))
    (h1, p1), (h2, p2) = runs
    assert torch.equal(h1.loss, h2.loss) and torch.equal(h1.train_accuracy, h2.train_accuracy)
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


def test_loss_history_is_the_objective_before_each_update(donut200):
    """history.loss[0] is the loss of the initial network."""
    (X, y), _ = donut200
    net = setting_net()
    initial = cross_entropy(net(X), y).item()
    history = train(net, X, y, iterations=3, lr=0.05)
    assert history.loss[0] == pytest.approx(initial, rel=1e-6)


# --- the losses ----------------------------------------------------------------------------------

def test_cross_entropy_formulas():
    """Binary: -[y log s + (1-y) log(1-s)]; several classes: -log softmax_y; means over points."""
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
    """1/2 |eta - y|^2 with eta the sigmoid or the softmax against one-hot labels."""
    logits = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    expected = sum(0.5 * (1 / (1 + math.exp(-v)) - t) ** 2
                   for v, t in zip(logits.tolist(), y.tolist())) / 3
    assert least_squares(logits, y).item() == pytest.approx(expected, rel=1e-12)
    many = torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.0, -1.0]], dtype=torch.float64)
    labels = torch.tensor([2, 0])
    onehot = torch.tensor([[0, 0, 1], [1, 0, 0]], dtype=torch.float64)
    expected = 0.5 * ((many.softmax(1) - onehot) ** 2).sum() / 2
    assert least_squares(many, labels).item() == pytest.approx(expected.item(), rel=1e-12)
    assert set(LOSSES) == {"cross_entropy", "least_squares", "mean_squared"}


def test_least_squares_training_uses_that_loss_and_learns(donut200):
    """loss="least_squares" records and minimises that loss."""
    (X, y), _ = donut200
    net = setting_net()
    initial = least_squares(net(X), y).item()
    history = train(net, X, y, iterations=200, lr=0.05, loss="least_squares")
    assert history.loss[0] == pytest.approx(initial, rel=1e-6)
    assert history.loss[-1] < 0.3 * history.loss[0]
    assert history.train_accuracy[-1] >= 0.85


def test_three_classes_train():
    """A three-class problem trains (softmax cross-entropy)."""
    X, y = lib.make_dataset("spiral", 60, seed=0)
    y = torch.where(X[:, 0] > 0.5, torch.tensor(2), y)
    net = lib.ODENet(width=3, depth=3, T=3.0, classes=3)
    history = train(net, X, y, iterations=20, lr=0.05)
    assert history.loss[-1] < history.loss[0]


# --- the regulariser -----------------------------------------------------------------------------




def test_regulariser_is_added_to_the_objective_and_its_gradient_used(smoothness_by_loop, donut200):
    """The recorded objective is data loss + R_h, and R_h's gradient smooths theta(t)."""
    (X, y), _ = donut200
    net = setting_net()
    plain = copy.deepcopy(net)
    data, R = cross_entropy(net(X), y).item(), smoothness_by_loop(net, 1.0)
    history = train(net, X, y, iterations=50, lr=0.05, regulariser=time_smoothness(1.0))
    assert history.loss[0] == pytest.approx(data + R, rel=1e-5)
    train(plain, X, y, iterations=50, lr=0.05)
    # the regulariser's gradient makes the layers' parameters vary less in time
    assert smoothness_by_loop(net, 1.0) < 0.5 * smoothness_by_loop(plain, 1.0)


def test_regulariser_returning_nan_stops_training_naming_the_iteration(donut200):
    """A non-finite regulariser at iteration 7 stops training naming iteration 7, at the end of
    its block of record_every steps at the latest."""
    (X, y), _ = donut200
    calls = []

    def nan_at_seven(net):
        calls.append(len(calls))
        return torch.tensor(math.nan if len(calls) == 8 else 0.0, dtype=torch.float64)

    with pytest.raises(ValueError, match=r"non-finite.*iteration 7\b"):
        train(setting_net(), X, y, iterations=30, lr=0.05, regulariser=nan_at_seven,
              record_every=5)
    assert 8 <= len(calls) <= 10       # stopped at the latest at the end of the block 5..9


def test_huge_learning_rate_is_reported_as_non_finite(donut200):
    """A diverging run is stopped with the iteration named."""
    (X, y), _ = donut200
    net = lib.ODENet(width=3, depth=5, T=5.0, activation="identity", seed=0).double()
    with pytest.raises(ValueError, match=r"non-finite .*at iteration \d+"):
        train(net, X, y, iterations=50, optimizer="gd", lr=1e6)


# --- bad arguments and data ----------------------------------------------------------------------

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
    (dict(gradient="otd"), TypeError, "gradient must be a lib.gradients.Strategy"),
    (dict(gradient=OTD), TypeError, "gradient must be a lib.gradients.Strategy"),
    (dict(gradient=lambda net, X, y, loss: {}), TypeError,
     "gradient must be a lib.gradients.Strategy"),
])
def test_bad_arguments_are_refused(donut200, kwargs, error, message):
    """Each bad argument is refused with an error naming it; a gradient that is not a Strategy
    object (a name, the class, a function of the old API) is a TypeError."""
    (X, y), _ = donut200
    with pytest.raises(error, match=message):
        train(setting_net(), X, y, **kwargs)


def test_bad_data_is_refused(donut200):
    """Data of the wrong shape or dtype, labels out of range and bad validation data."""
    (X, y), _ = donut200
    net = setting_net()
    with pytest.raises(ValueError, match="X must have shape"):
        train(net, X[:, :1], y, iterations=1)
    with pytest.raises(ValueError, match="y must be a long tensor"):
        train(net, X, y.double(), iterations=1)
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


def test_labels_are_checked_again_after_they_change(donut200):
    """The label check reads a tensor once; modifying it in place makes it read again."""
    (X, y), _ = donut200
    net = setting_net()
    y = y.clone()
    train(net, X, y, iterations=1)
    y[0] = 5
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        train(net, X, y, iterations=1)


# --- members -------------------------------------------------------------------------------------

def test_members_train_as_they_would_alone(donut):
    """Three seeds trained together by gradient descent (float64), each on its own data, follow
    the paths of the three networks trained alone, to round-off (the batched products differ
    from the single ones in the last bits of some gradients only)."""
    seeds = [0, 1, 2]
    data = [donut(80, s) for s in seeds]
    X, y = torch.stack([d[0] for d in data]), torch.stack([d[1] for d in data])
    options = dict(iterations=40, optimizer="gd", lr=0.5, regulariser=time_smoothness(0.1),
                   record_every=20)
    members = lib.ODENet(width=3, depth=4, T=2.0, method="heun", seed=seeds).double()
    together = train(members, X, y, **options)
    assert together.loss.shape == (40, 3) and together.train_accuracy.shape == (2, 3)
    for i, s in enumerate(seeds):
        net = lib.ODENet(width=3, depth=4, T=2.0, method="heun", seed=s).double()
        alone = train(net, X[i], y[i], **options)
        assert torch.allclose(together.loss[:, i], alone.loss, rtol=1e-12, atol=0)
        assert torch.equal(together.train_accuracy[:, i], alone.train_accuracy)
        for (name, p), q in zip(members.member(i).named_parameters(), net.parameters()):
            assert torch.allclose(p, q, rtol=1e-12, atol=1e-14), name


def test_a_non_finite_member_is_named(donut200):
    """The member (and its seed) whose objective diverges is named."""
    (X, y), _ = donut200
    net = lib.ODENet(width=3, depth=5, T=5.0, activation="identity", seed=[3, 4]).double()
    A = net.field.linear_parts().detach().clone()
    A[:, 1] *= 1e3                                   # member 1's matrices
    net.field.set_affine(A)
    with pytest.raises(ValueError, match=r"at iteration \d+ \(member 1, seed 4\)"):
        train(net, X, y, iterations=20, optimizer="gd", lr=10.0)


# --- gradient strategies -------------------------------------------------------------------------

class ByHand(Strategy):
    """Autograd's gradient, computed here rather than by train's backward pass."""

    name = "by_hand"

    def _compute(self, net, X, y, data_loss):
        with torch.enable_grad():
            E = data_loss(net(X), y)
            params = dict(net.named_parameters())
            grads = torch.autograd.grad(E.sum(), tuple(params.values()))
        return E.detach(), dict(zip(params, grads))


def test_a_gradient_strategy_replaces_autograd(donut200):
    """train(gradient=...) with a strategy that returns autograd's gradient by hand follows
    autograd's path exactly, and the regulariser's gradient is still added."""
    (X, y), _ = donut200
    options = dict(iterations=10, optimizer="gd", lr=0.3, regulariser=time_smoothness(0.5))
    a, b = setting_net(), setting_net()
    ha = train(a, X, y, **options)
    hb = train(b, X, y, gradient=ByHand(), **options)
    assert torch.allclose(ha.loss, hb.loss, rtol=1e-13, atol=0)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=1e-12, atol=1e-14)
    unregularised = setting_net()
    train(unregularised, X, y, gradient=ByHand(), **dict(options, regulariser=None))
    assert relative_difference(parameters(unregularised), parameters(b)) > 1e-6


def test_training_with_the_otd_gradient_follows_autograd(points, small_net):
    """The talk's standard procedure: lib.train with gradient=OTD() (sweep forward, sweep p
    backward with the partner, update) takes the steps of autograd training, to round-off."""
    x, y = points(32, 3)
    a, b = small_net("rk4", depth=5, seed=3), small_net("rk4", depth=5, seed=3)
    standard = train(a, x, y, iterations=15, optimizer="gd", lr=0.5, gradient=OTD())
    autograd = train(b, x, y, iterations=15, optimizer="gd", lr=0.5)
    assert torch.allclose(standard.loss, autograd.loss, rtol=1e-12, atol=0)
    assert standard.loss[-1] < standard.loss[0]
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(p, q, rtol=1e-11, atol=1e-13)


class NanOnFifthCall(OTD):
    """OTD() whose fifth gradient is NaN: the parameters of iteration 5 are not finite."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def value_and_gradient(self, net, x, y, loss="cross_entropy"):
        self.calls += 1
        E, grads = super().value_and_gradient(net, x, y, loss)
        return E, ({k: g * math.nan for k, g in grads.items()} if self.calls == 5 else grads)


def test_standard_procedure_refuses_a_non_finite_objective(donut):
    """A non-finite gradient at the fifth call makes the objective of iteration 5 non-finite,
    and training says so."""
    net = lib.ODENet(width=2, depth=3, T=3.0, seed=0).double()
    x, y = donut(20)
    with pytest.raises(ValueError, match=r"non-finite .*at iteration 5\b"):
        train(net, x, y, gradient=NanOnFifthCall(), iterations=8, optimizer="gd", lr=0.1)


class Recording(Strategy):
    """Another strategy, recording the losses it reports (a new strategy is one class)."""

    def __init__(self, inner: Strategy):
        self.inner, self.name, self.reported = inner, inner.name, []

    def refusal(self, net):
        return self.inner.refusal(net)

    def value_and_gradient(self, net, x, y, loss="cross_entropy"):
        E, grads = self.inner.value_and_gradient(net, x, y, loss)
        self.reported.append(E.clone())
        return E, grads


@pytest.mark.parametrize("strategy, method", [(OTD(), "rk4"), (Checkpointed(), "heun"),
                                              (Reversible(), "stormer_verlet")],
                         ids=["otd", "checkpointed", "reversible"])
def test_training_with_a_gradient_strategy_trains_five_seeds_as_one(points, strategy, method):
    """train(..., gradient=strategy) on a network with 5 members follows each member trained
    alone (parameters to 1e-12 relative, float64), records exactly the losses the strategy
    reports, and evaluates the classifier once per iteration (no extra forward pass)."""
    x, y = points(24, 7)
    field = CoupledField if method == "stormer_verlet" else "resnet"
    iterations = 8

    def build(seed):
        return lib.ODENet(width=3, depth=4, method=method, field=field, seed=seed).double()

    many, recording, evaluations = build(list(range(5))), Recording(strategy), []
    hook = many.classifier.register_forward_hook(lambda *_: evaluations.append(1))
    try:
        together = train(many, x, y, iterations=iterations, optimizer="gd", lr=0.3,
                         gradient=recording, record_every=iterations)
    finally:
        hook.remove()
    assert torch.equal(together.loss, torch.stack(recording.reported).to(torch.float64))
    assert len(evaluations) == iterations + 1     # one per step, one for the final accuracy
    for s in range(5):
        alone = build(s)
        history = train(alone, x, y, iterations=iterations, optimizer="gd", lr=0.3,
                        gradient=strategy, record_every=iterations)
        assert torch.allclose(history.loss, together.loss[:, s], rtol=1e-12, atol=0)
        mine = parameters(many.member(s))
        assert relative_difference(mine, parameters(alone)) <= 1e-12, s
        assert relative_difference(mine, parameters(build(s))) > 1e-6, s    # it did train
