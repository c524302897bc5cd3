"""The Bayes accuracy of the toy problems (lib.bayes) against references built from lib.data."""
import math

import pytest
import torch

from lib import bayes
from lib.data import DATASETS, make_dataset

NAMES = sorted(DATASETS)


def importance_posterior(name, x, clean=400_000):
    """``P(class 1 | x)`` by weighting clean points of ``lib.data`` (noise 0) by the noise
    density: an estimate that knows only the generator, not the formulas of lib.bayes."""
    c, labels = make_dataset(name, clean, seed=7, noise=0.0, dtype=torch.float64)
    s = bayes.NOISE_SCALE[name]
    log_w = -torch.cdist(x, c).square() / (2 * s * s)
    w = torch.softmax(log_w, 1)
    return (w * labels.double()).sum(1)


@pytest.mark.parametrize("name", NAMES)
def test_posterior_matches_importance_weighting_of_the_generator(name):
    x, _ = make_dataset(name, 40, seed=3, dtype=torch.float64)
    eta = bayes.posterior(name, x)
    reference = importance_posterior(name, x)
    assert (eta - reference).abs().max() < 0.03
    assert ((eta >= 0) & (eta <= 1)).all()


@pytest.mark.parametrize("name", NAMES)
def test_bayes_accuracy_is_the_accuracy_of_the_bayes_rule_on_labelled_samples(name):
    n = 20_000
    estimate = bayes.bayes_accuracy(name, n=n, seed=1)
    x, y = make_dataset(name, n, seed=2, dtype=torch.float64)
    right = (bayes.bayes_rule(name)(x) == y).double()
    empirical_se = float(right.std()) / math.sqrt(n)
    assert abs(float(right.mean()) - estimate.value) \
        < 4 * math.hypot(estimate.standard_error, empirical_se)
    assert 0 < estimate.standard_error < 0.01


def test_quadrature_is_converged():
    x, _ = make_dataset("donut2d", 500, dtype=torch.float64)
    assert (bayes.posterior("donut2d", x) - bayes.posterior("donut2d", x, nodes=400)).abs().max() \
        < 1e-12
    x, _ = make_dataset("spiral", 200, dtype=torch.float64)
    assert (bayes.posterior("spiral", x) - bayes.posterior("spiral", x, nodes=8000)).abs().max() \
        < 1e-5


def test_no_classifier_beats_the_bayes_rule_and_the_channel_costs_its_width():
    best = bayes.bayes_accuracy("donut2d", n=20_000)
    for radius in (1.0, 1.4):   # discs other than the Bayes disc (radius about 1.2)
        disc = bayes.expected_accuracy(
            "donut2d", lambda x, r=radius: (x.norm(dim=1) >= r).long(), n=20_000)
        assert disc.value < best.value
    narrow, wide = (bayes.expected_accuracy("donut2d", bayes.channel_rule(w), n=20_000)
                    for w in (0.05, 0.5))
    assert wide.value < narrow.value < best.value
    assert best.value - narrow.value < 0.01


def test_less_noise_gives_a_higher_bayes_accuracy():
    for name in ("donut1d", "squares"):
        accuracies = [bayes.bayes_accuracy(name, n=20_000, noise=s).value for s in (2, 1, 0.25)]
        assert accuracies[0] < accuracies[1] < accuracies[2]


def test_bad_input_is_refused():
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown dataset"):
        bayes.posterior("moons", x)
    with pytest.raises(ValueError, match="x must be"):
        bayes.posterior("donut2d", torch.zeros(3, 3))
    with pytest.raises(ValueError, match="noise"):
        bayes.posterior("donut2d", x, noise=0.0)
    with pytest.raises(ValueError, match="nodes"):
        bayes.posterior("spiral", x, nodes=2)
    with pytest.raises(ValueError, match="width"):
        bayes.channel_rule(0)
    with pytest.raises(ValueError, match="rule"):
        bayes.expected_accuracy("donut1d", lambda x: torch.zeros(2), n=10)


def test_accuracy_bars_start_where_asked_and_mark_the_bayes_accuracy():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.plotting import stability as splot
    seeds = torch.tensor([0.90, 0.92, 0.88, 0.91, 0.93])
    fig = splot.accuracy_bars({"donut2d": {"a": (seeds, seeds - 0.05)}}, bottom=0.0,
                              ceilings={"donut2d": 0.92})
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0.0
    lines = [line for line in ax.get_lines() if line.get_label() == "Bayes accuracy"]
    assert len(lines) == 1 and list(lines[0].get_ydata()) == [0.92, 0.92]
    plt.close(fig)
