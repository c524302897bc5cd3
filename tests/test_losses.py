"""The data losses and data checks of lib/losses.py: one value per member (each member's own
loss), the regression loss by hand, and data refused with a message naming the argument."""
import pytest
import torch

import lib
from lib.losses import (LOSSES, REGRESSION_LOSSES, accuracy, check_data, cross_entropy,
                        least_squares, mean_squared, per_member)

F64 = torch.float64


def test_the_registry():
    assert LOSSES == {"cross_entropy": cross_entropy, "least_squares": least_squares,
                      "mean_squared": mean_squared}
    assert REGRESSION_LOSSES == {"mean_squared"} and REGRESSION_LOSSES <= set(LOSSES)


def test_mean_squared_by_hand():
    output = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    y = torch.tensor([1.0, -1.0, 0.0], dtype=F64)
    assert float(mean_squared(output, y)) == pytest.approx((0.5 * 0.25 + 0 + 0.5 * 4) / 3,
                                                           rel=1e-15)


@pytest.mark.parametrize("name, classes", [("cross_entropy", 2), ("cross_entropy", 4),
                                           ("least_squares", 2), ("least_squares", 4),
                                           ("mean_squared", 2)])
def test_each_loss_gives_one_value_per_member(name, classes):
    g = torch.Generator().manual_seed(0)
    shape = (3, 7) if classes == 2 else (3, 7, classes)
    logits = torch.randn(shape, generator=g, dtype=F64)
    y = (torch.randn(3, 7, generator=g, dtype=F64) if name in REGRESSION_LOSSES
         else torch.randint(0, classes, (3, 7), generator=g))
    values = LOSSES[name](logits, y)
    assert values.shape == (3,)
    for s in range(3):
        assert float(values[s]) == pytest.approx(float(LOSSES[name](logits[s], y[s])), rel=1e-14)
    assert LOSSES[name](logits[0], y[0]).shape == ()
    assert not torch.allclose(values[0], values[1])   # the members are not averaged together


def test_accuracy_per_member_by_hand(points, small_net):
    X, y = points(30, seed=1)
    net = small_net(members=3)
    with torch.no_grad():
        predictions = (net(X) > 0).long()
    expected = (predictions == y).double().mean(-1)
    assert torch.equal(accuracy(net, X, y), expected)
    assert torch.equal(accuracy(net.member(1), X, y), expected[1])


def test_check_data_accepts_shared_and_per_member_data_and_per_member_expands(points, small_net):
    X, y = points(10)
    net = small_net(members=2)
    check_data(net, X, y, "data")
    check_data(net, X.expand(2, 10, 2), y.expand(2, 10), "data")
    Xm, ym = per_member(net, X, y, "data")
    assert Xm.shape == (2, 10, 2) and ym.shape == (2, 10)
    assert torch.equal(Xm[1], X) and torch.equal(ym[0], y)
    single = small_net()
    assert per_member(single, X, y, "data")[0] is X          # nothing to repeat


@pytest.mark.parametrize("change, error, message", [
    (lambda X, y: (X.tolist(), y), TypeError, r"data must be a pair of tensors"),
    (lambda X, y: (X[:, :1], y), ValueError, r"data: X must have shape \[n, 2\] or \[2, n, 2\]"),
    (lambda X, y: (X.expand(3, 10, 2), y), ValueError, r"data: X must have shape"),
    (lambda X, y: (X, y.double()), ValueError, r"data: y must be a long tensor of shape \[10\]"),
    (lambda X, y: (X, y[:-1]), ValueError, r"data: y must be a long tensor"),
    (lambda X, y: (X, y - 1), ValueError, r"data: labels must lie in 0..1"),
])
def test_check_data_refuses_bad_data_naming_the_argument(points, small_net, change, error,
                                                         message):
    X, y = points(10)
    with pytest.raises(error, match=message):
        check_data(small_net(members=2), *change(X, y), "data")


def test_regression_data_needs_real_targets_and_one_output(points, small_net):
    X, _ = points(10)
    targets = torch.sin(X[:, 0])
    check_data(small_net(), X, targets, "data", loss="mean_squared")
    with pytest.raises(ValueError, match="the loss 'mean_squared' needs one output and real"):
        check_data(small_net(), X, targets.long(), "data", loss="mean_squared")
    three = lib.ODENet(width=3, depth=2, classes=3).double()
    with pytest.raises(ValueError, match="needs one output"):
        check_data(three, X, targets, "data", loss="mean_squared")
    with pytest.raises(ValueError, match="y must be a long tensor"):   # a classification loss
        check_data(small_net(), X, targets, "data")


def test_labels_valid_for_more_classes_are_checked_again_for_fewer(points):
    """The label check remembers a valid tensor, but for its number of classes only."""
    X, y = points(10, classes=3)
    assert int(y.max()) == 2
    check_data(lib.ODENet(width=3, depth=2, classes=3).double(), X, y, "data")
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        check_data(lib.ODENet(width=3, depth=2).double(), X, y, "data")
