"""The argument checks of lib/validate.py and the defaults of lib/config.py: every check returns
the good value, refuses bools, NaN, infinities and wrong types with a message that names the
argument, and every training entry point takes its defaults from ``DEFAULTS``."""
import dataclasses
import inspect
import math

import pytest
import torch

import lib
import lib.examples
import lib.regularisers
from lib import validate
from lib.config import DEFAULTS, Defaults
from lib.experiments import classify, run

NAN, INF = math.nan, math.inf


# --- the numeric checks ---------------------------------------------------------------------

def refused(check, value, name, error=ValueError) -> str:
    """The message of ``check(value)``'s error: it must name the argument and show the value."""
    with pytest.raises(error) as raised:
        check(value)
    message = str(raised.value)
    assert message.startswith(f"{name} must be "), message
    assert repr(value) in message, message
    return message


@pytest.mark.parametrize("check, good", [
    (lambda v: validate.integer(v, "count"), [0, -3, 7, 10 ** 20]),
    (lambda v: validate.integer(v, "count", low=2), [2, 3, 100]),
    (lambda v: validate.positive_int(v, "count"), [1, 2, 10 ** 6]),
])
def test_integer_checks_return_good_values_unchanged(check, good):
    for value in good:
        out = check(value)
        assert out == value and type(out) is int


@pytest.mark.parametrize("check, bad", [
    (lambda v: validate.integer(v, "count"),
     [True, False, 1.0, 2.5, NAN, INF, "3", None, torch.tensor(3)]),
    (lambda v: validate.integer(v, "count", low=2), [1, 0, -5, True, 2.0]),
    (lambda v: validate.positive_int(v, "count"),
     [0, -1, True, False, 1.0, NAN, INF, "1", None, torch.tensor(1)]),
])
def test_integer_checks_refuse_bools_floats_and_other_types_naming_the_argument(check, bad):
    for value in bad:
        assert "integer" in refused(check, value, "count")


def test_integer_bound_is_in_the_message():
    assert ">= 2" in refused(lambda v: validate.integer(v, "count", low=2), 1, "count")
    assert "positive" in refused(lambda v: validate.positive_int(v, "count"), 0, "count")


@pytest.mark.parametrize("check, good", [
    (lambda v: validate.number(v, "x"), [0, -2, 3.5, -1e300, 1e-300]),
    (lambda v: validate.positive(v, "x"), [1, 1e-300, 2.5, 1e300]),
    (lambda v: validate.non_negative(v, "x"), [0, 0.0, 1, 2.5]),
    (lambda v: validate.finite_at_least(v, "x", 1.0, strict=False), [1, 1.0, 7.5]),
    (lambda v: validate.finite_at_least(v, "x", 1.0, strict=True), [1.0000001, 2]),
])
def test_number_checks_return_floats(check, good):
    for value in good:
        out = check(value)
        assert out == value and type(out) is float


@pytest.mark.parametrize("check, bad", [
    (lambda v: validate.number(v, "x"),
     [True, False, NAN, INF, -INF, "1", None, torch.tensor(1.0), [1.0]]),
    (lambda v: validate.positive(v, "x"), [0, 0.0, -1e-300, -2, True, NAN, INF, "1", None]),
    (lambda v: validate.non_negative(v, "x"), [-1e-300, -1, False, True, NAN, INF, -INF, "0"]),
    (lambda v: validate.finite_at_least(v, "x", 1.0, strict=False), [0.999, True, NAN, INF]),
    (lambda v: validate.finite_at_least(v, "x", 1.0, strict=True), [1, 1.0, 0.5, True, INF]),
])
def test_number_checks_refuse_bools_nan_inf_and_other_types_naming_the_argument(check, bad):
    for value in bad:
        assert "finite" in refused(check, value, "x")


def test_flag_accepts_only_bools():
    assert validate.flag(True, "verbose") is True and validate.flag(False, "verbose") is False
    for bad in (1, 0, None, "True", 1.0, torch.tensor(True)):
        assert "True or False" in refused(lambda v: validate.flag(v, "verbose"), bad, "verbose",
                                          TypeError)


def test_tensor_accepts_only_tensors():
    t = torch.zeros(2)
    assert validate.tensor(t, "x") is t
    for bad, kind in ((t.tolist(), "list"), (1.0, "float"), (None, "NoneType")):
        with pytest.raises(TypeError, match=f"x must be a torch.Tensor, got {kind}"):
            validate.tensor(bad, "x")


def test_single_network_refuses_members_and_other_objects(small_net):
    """The check of a network argument lives beside ODENet (lib.validate imports nothing of
    the library)."""
    from lib.models import single_network

    net = small_net()
    assert single_network(net, "the check") is net
    with pytest.raises(ValueError, match="net has 2 members; the check examines one network"):
        single_network(small_net(members=2), "the check")
    with pytest.raises(TypeError, match="net must be a lib.models.ODENet, got Linear"):
        single_network(torch.nn.Linear(2, 2), "the check")


def test_the_library_uses_these_checks_for_its_arguments(small_net):
    """A few arguments of the library, each refused with the message of lib.validate, not
    accepted as a bool (True is 1) or a NaN."""
    refused(small_net().refined, True, "m")
    refused(lambda v: lib.ODENet(width=v), True, "width")
    refused(lib.regularisers.time_smoothness, NAN, "lam")
    refused(lib.examples.gradient_layer, INF, "h_norm2")
    refused(lambda v: lib.train(small_net(), torch.zeros(4, 2), torch.zeros(4).long(),
                                lr=v), NAN, "lr")


# --- the defaults ------------------------------------------------------------------------------

def test_defaults_are_frozen_and_hold_the_documented_values():
    assert DEFAULTS == Defaults(iterations=500, optimizer="adam", lr=0.05,
                                loss="cross_entropy", record_every=10, seeds=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.iterations = 1000
    assert DEFAULTS.iterations == 500


@pytest.mark.parametrize("function", [lib.train, classify])
def test_training_functions_default_to_defaults(function):
    parameters = inspect.signature(function).parameters
    for name in ("iterations", "optimizer", "lr", "loss"):
        assert parameters[name].default == getattr(DEFAULTS, name), name
    if function is lib.train:
        assert parameters["record_every"].default == DEFAULTS.record_every
    else:
        assert len(parameters["seeds"].default) == DEFAULTS.seeds


def test_train_without_options_is_train_with_the_defaults(points, small_net):
    X, y = points(20)
    plain, explicit = small_net(width=2, depth=2), small_net(width=2, depth=2)
    a = lib.train(plain, X, y)
    b = lib.train(explicit, X, y, iterations=500, optimizer="adam", lr=0.05,
                  loss="cross_entropy", record_every=10)
    assert len(a.loss) == DEFAULTS.iterations
    assert a.recorded == list(range(DEFAULTS.record_every, DEFAULTS.iterations + 1,
                                    DEFAULTS.record_every))
    assert torch.equal(a.loss, b.loss)
    for p, q in zip(plain.parameters(), explicit.parameters()):
        assert torch.equal(p, q)
    # a negative control: another learning rate is another path
    other = small_net(width=2, depth=2)
    assert not torch.equal(lib.train(other, X, y, iterations=20, lr=0.01).loss, a.loss[:20])


def test_run_without_iterations_trains_the_default_count():
    e = run(dict(dataset="spiral", seeds=[0], n=20, width=2, depth=2))
    assert len(e.history.loss) == DEFAULTS.iterations
    assert e.history.recorded[-1] == DEFAULTS.iterations
    assert e.net.field.linear_parts().dtype == torch.float64   # run's own default dtype
