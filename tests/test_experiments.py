"""Experiments over several seeds (lib/experiments.py): the members of ``classify`` are the runs
of each seed alone on that seed's data, ``run`` is ``classify`` from plain data, records store
and restore the trained members exactly, outcomes are reported as a median and a range over the
seeds, and the stability summary measures each member's flow."""
import dataclasses
import json
import math

import pytest
import torch

import lib
from lib import experiments as ex
from lib.parameter_path import parameter_path, roughness
from lib.regularisers import time_smoothness, weight_penalty
from lib.training import History

F64 = torch.float64
def same_parameters(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# --- spread and rank correlation -------------------------------------------------------------

def test_spread_is_the_lower_median_and_the_range():
    assert ex.spread(torch.tensor([0.3, 0.1, 0.2], dtype=F64)) == (0.2, 0.1, 0.3)
    assert ex.spread(torch.tensor([4.0, 1.0, 3.0, 2.0])) == (2.0, 1.0, 4.0)   # lower median
    assert ex.spread(torch.tensor([5.0])) == (5.0, 5.0, 5.0)
    s = ex.spread(torch.tensor([0.75, 0.5, 0.25], dtype=F64))
    assert (s.median, s.low, s.high) == (0.5, 0.25, 0.75)
    assert str(s) == "0.500 (0.250–0.750)"
    assert all(type(v) is float for v in s)


@pytest.mark.parametrize("bad", [torch.zeros(0), torch.zeros(2, 3), [0.1, 0.2], torch.tensor(1.0)])
def test_spread_refuses_anything_but_a_non_empty_vector(bad):
    with pytest.raises(ValueError, match="values must be a non-empty 1-D tensor"):
        ex.spread(bad)


def test_rank_correlation_by_hand():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert ex.rank_correlation(a, torch.tensor([10.0, 30.0, 20.0, 40.0])) == \
        pytest.approx(1 - 6 * 2 / (4 * 15), abs=1e-15)                      # d = (0, 1, -1, 0)
    assert ex.rank_correlation(a, a.exp()) == 1.0                          # ranks, not values
    assert ex.rank_correlation(a, -a) == -1.0
    # Spearman's coefficient is Pearson's correlation of the ranks (no ties)
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(12, generator=g, dtype=F64), torch.randn(12, generator=g, dtype=F64)
    ranks = torch.stack([u.argsort().argsort(), v.argsort().argsort()]).double()
    assert ex.rank_correlation(u, v) == pytest.approx(float(torch.corrcoef(ranks)[0, 1]),
                                                      abs=1e-14)


@pytest.mark.parametrize("a, b", [(torch.zeros(3), torch.zeros(4)), (torch.zeros(1), torch.zeros(1)),
                                  (torch.zeros(2, 2), torch.zeros(2, 2)), ([1, 2], [2, 1])])
def test_rank_correlation_refuses_bad_input(a, b):
    with pytest.raises(ValueError, match="1-D tensors of the same length"):
        ex.rank_correlation(a, b)


# --- classify: one member per seed -------------------------------------------------------------

def test_each_member_is_its_seed_trained_alone_on_its_own_data():
    kwargs = dict(n=30, iterations=8, width=2, depth=3, T=1.5, dtype=F64)
    both = ex.classify("donut2d", seeds=[3, 5], **kwargs)
    alone = ex.classify("donut2d", seeds=[5], **kwargs)
    for s, seed in enumerate((3, 5)):
        X, y = lib.make_dataset("donut2d", 30, seed=seed, dtype=F64)
        X_val, y_val = lib.make_dataset("donut2d", 30, seed=seed + ex.VALIDATION_SEED, dtype=F64)
        assert torch.equal(both.X[s], X) and torch.equal(both.y[s], y)
        assert torch.equal(both.X_val[s], X_val) and torch.equal(both.y_val[s], y_val)
    for p, q in zip(both.net.member(1).parameters(), alone.net.member(0).parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(both.history.loss[:, 1], alone.history.loss[:, 0], rtol=1e-12,
                               atol=0)
    assert both.net.seeds == (3, 5) and both.seeds == (3, 5) and both.name == "donut2d"
    assert both.history.recorded == [8]                       # every min(50, iterations)
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        ex.classify("donut2d", seeds=[], **kwargs)


def test_experiment_records_everything():
    run = ex.classify("donut2d", n=60, iterations=20, width=3, depth=4)
    assert run.history.recorded == [20] and len(run.history.loss) == 20
    assert run.train_accuracy.shape == run.validation_accuracy.shape == (5,)
    assert bool(((0 <= run.validation_accuracy) & (run.validation_accuracy <= 1)).all())
    assert torch.equal(run.objective, run.history.loss[-1])
    assert run.name in run.summary() and "validation" in run.summary()
    assert str(ex.spread(run.validation_accuracy)) in run.summary() and "(5 seeds)" in run.summary()
    assert not torch.equal(run.X, run.X_val)
    one = run.member(2)
    assert one.net.members is None and torch.equal(one.X, run.X[2])
    assert one.seeds == (2,) and "seed 2" in one.name
    assert float(one.validation_accuracy) == float(run.validation_accuracy[2])
    assert torch.equal(one.history.loss, run.history.loss[:, 2])
    with torch.no_grad():
        torch.testing.assert_close(one.net(one.X_val), run.net(run.X_val)[2])  # float32


def test_median_member_is_the_lower_median_of_the_validation_accuracy(tiny):
    for accuracies, median in (([0.9, 0.7, 0.8, 0.6], 1), ([0.5, 0.9, 0.7], 2),
                               ([0.8, 0.8, 0.8], 1)):
        S = len(accuracies)
        accuracy = torch.tensor([accuracies], dtype=F64)
        history = History(torch.zeros(1, S, dtype=F64), [1], accuracy, accuracy)
        e = dataclasses.replace(tiny, seeds=tuple(range(S)), history=history)
        assert e.median_member() == median
        assert float(e.validation_accuracy[median]) == ex.spread(e.validation_accuracy).median


# --- run: configurations as data ----------------------------------------------------------------

def test_run_is_deterministic_and_is_classify(tiny_config, tiny):
    again = ex.run(tiny_config)
    assert same_parameters(tiny.net, again.net)
    assert torch.equal(tiny.history.loss, again.history.loss)
    direct = ex.classify("spiral", seeds=[0, 1], n=40, iterations=6, width=2, depth=4, T=2.0,
                         regulariser=time_smoothness(0.1), dtype=F64)
    assert same_parameters(tiny.net, direct.net)
    unregularised = ex.classify("spiral", seeds=[0, 1], n=40, iterations=6, width=2, depth=4,
                                T=2.0, dtype=F64)
    assert not same_parameters(tiny.net, unregularised.net)          # lam does act
    assert tiny.X.dtype == F64 and tiny.history.loss.shape == (6, 2)


def test_run_adds_the_size_penalty_and_defaults_to_no_regulariser(tiny_config):
    config = dict(tiny_config, size=0.01)
    sized = ex.run(config)
    by_hand = ex.classify("spiral", seeds=[0, 1], n=40, iterations=6, width=2, depth=4, T=2.0,
                          dtype=F64, regulariser=lambda net: time_smoothness(0.1)(net)
                          + weight_penalty(2 * 0.01)(net))
    assert same_parameters(sized.net, by_hand.net)
    plain = ex.run({k: v for k, v in tiny_config.items() if k != "lam"})
    unregularised = ex.classify("spiral", seeds=[0, 1], n=40, iterations=6, width=2, depth=4,
                                T=2.0, dtype=F64)
    assert same_parameters(plain.net, unregularised.net)
    assert ex.run(dict(tiny_config, dtype="float32")).X.dtype == torch.float32


@pytest.mark.parametrize("change, message", [
    (lambda c: {k: v for k, v in c.items() if k != "dataset"}, "dataset"),
    (lambda c: dict(c, dtype="float17"), r"config\['dtype'\] must name a torch dtype"),
    (lambda c: dict(c, regulariser=None), "by its weight 'lam'"),
    (lambda c: [("dataset", "spiral")], "must be a mapping"),
])
def test_run_refuses_bad_configurations(tiny_config, change, message):
    with pytest.raises(ValueError, match=message):
        ex.run(change(tiny_config))


# --- records ---------------------------------------------------------------------------------------

def test_records_round_trip_exactly(tiny_config, tiny):
    record = ex.to_record(tiny, tiny_config)
    assert json.loads(json.dumps(record)) == record          # plain data
    assert record["config"] == tiny_config and record["config"] is not tiny_config
    assert record["history"]["recorded"] == tiny.history.recorded and \
        not record["history"]["full_loss"]
    loaded = ex.from_record(record)
    assert same_parameters(loaded.net, tiny.net) and loaded.net.seeds == tiny.net.seeds
    for name in ("X", "y", "X_val", "y_val"):
        assert torch.equal(getattr(loaded, name), getattr(tiny, name)), name
    assert torch.equal(loaded.validation_accuracy, tiny.validation_accuracy)
    assert torch.equal(loaded.train_accuracy, tiny.train_accuracy)
    assert torch.equal(loaded.objective, tiny.objective)
    recorded = torch.tensor(tiny.history.recorded) - 1
    assert torch.equal(loaded.history.loss, tiny.history.loss[recorded])
    with torch.no_grad():
        assert torch.equal(loaded.net(loaded.X_val), tiny.net(tiny.X_val))
    full = ex.from_record(ex.to_record(tiny, tiny_config, full_loss=True))
    assert torch.equal(full.history.loss, tiny.history.loss)
    assert ex.from_record(dict(record, config=dict(tiny_config, name="named"))).name == "named"


def test_save_and_load_records(tiny_config, tmp_path, tiny):
    record = ex.to_record(tiny, tiny_config)
    path = tmp_path / "runs.json"
    ex.save_records(path, {"a": record, "b": record}, note="test", seeds=[0, 1])
    lines = path.read_text().splitlines()
    assert len(lines) == 7                                   # one line per record
    assert json.loads("{" + lines[3].rstrip(",") + "}") == {"a": record}
    metadata, records = ex.load_records(path)
    assert metadata == {"note": "test", "seeds": [0, 1]} and list(records) == ["a", "b"]
    assert records["a"] == record
    # a missing file is downloaded from the url first (on Colab: the book's repository)
    fetched = tmp_path / "colab" / "data" / "runs.json"
    assert ex.load_records(fetched, url=path.as_uri()) == (metadata, records)
    assert fetched.read_bytes() == path.read_bytes()
    with pytest.raises(FileNotFoundError, match="regenerate"):
        ex.load_records(tmp_path / "missing.json")
    broken = json.loads(json.dumps(record))
    leaf = broken["state"][next(iter(broken["state"]))]
    while isinstance(leaf[0], list):
        leaf = leaf[0]
    leaf[0] = math.nan
    with pytest.raises(ValueError, match="record 'broken' holds a non-finite parameter"):
        ex.save_records(tmp_path / "broken.json", {"broken": broken})
    assert not (tmp_path / "broken.json").exists()


# --- the stability summary ---------------------------------------------------------------------

def test_stability_summary_per_seed(tiny):
    summary = ex.stability_summary(tiny, points=8, refinement=2)
    assert all(v.shape == (2,) and v.dtype == F64 for v in summary)
    path = parameter_path(tiny.net)
    by_hand = (path[1:] - path[:-1]).norm(dim=-1).sum(0)
    torch.testing.assert_close(summary.roughness, by_hand, rtol=1e-14, atol=0)
    assert torch.equal(summary.roughness, roughness(tiny.net))
    # the largest growth of the refined flow, from autograd's Jacobian of each member (the lift
    # pads 2 inputs to width 2, so dz^K / dx is dz^K / dz^0)
    for s in range(2):
        fine = tiny.net.member(s).refined(2)
        jac = torch.stack([torch.func.jacrev(lambda x: fine.features(x[None])[0])(x)
                           for x in tiny.X_val[s, :8]])
        largest = torch.linalg.matrix_norm(jac, ord=2).max().log()
        torch.testing.assert_close(summary.log_growth[s], largest, rtol=1e-10, atol=1e-12)
    again = ex.stability_summary(tiny, points=8, refinement=2)
    assert all(torch.equal(a, b) for a, b in zip(summary, again))
    assert bool((summary.log_growth <= summary.log_bound + 1e-6).all())
    assert bool((summary.gap >= -1e-12).all())
    assert bool((summary.random_error >= 0).all() and (summary.departure >= 0).all())
    assert bool(((summary.exceeded >= 0) & (summary.exceeded <= 1)).all())
    other = ex.stability_summary(tiny, points=8, refinement=2, seed=1)
    assert not torch.equal(other.random_error, summary.random_error)   # the seed is used
    assert torch.equal(other.log_growth, summary.log_growth)


# --- chapter 1's explorer: one run, trained -----------------------------------------------------

def test_explore_is_one_adam_run_of_the_chosen_network():
    run = ex.explore("spiral", depth=3, h=0.5, activation="relu", iterations=7, n=30, seed=2)
    assert isinstance(run, ex.Exploration)
    net, X, y, history = run
    assert (net.width, net.depth, net.T, net.h) == (2, 3, 1.5, 0.5)
    assert net.field.activation == "relu" and net.tableau.name == "euler"
    X_ref, y_ref = lib.make_dataset("spiral", 30, seed=2)
    assert torch.equal(X, X_ref) and torch.equal(y, y_ref)
    assert history.recorded == [7] and history.loss.shape == (7,)
    by_hand = lib.ODENet(width=2, depth=3, T=1.5, activation="relu", seed=2)
    expected = lib.train(by_hand, X_ref, y_ref, iterations=7, optimizer="adam", lr=0.05)
    assert torch.equal(history.loss, expected.loss)
    assert same_parameters(net, by_hand)
    assert float(history.train_accuracy[-1]) == float(lib.losses.accuracy(net, X, y))
