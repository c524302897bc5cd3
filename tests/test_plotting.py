"""The book's figures: each returns a figure whose axes are labelled, and bad input is refused."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import lib  # noqa: E402
from lib.experiments import classify  # noqa: E402
from lib.plotting import classification as cplot  # noqa: E402
from lib.plotting.convergence import error_vs_step  # noqa: E402


@pytest.fixture(scope="module")
def run():
    return classify("donut2d", n=60, iterations=20, width=3, depth=4)


def labelled(fig):
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel(), "every axis needs labels"
    plt.close(fig)
    return True


def test_figures_are_labelled(run):
    assert labelled(cplot.datasets({"donut2d": (run.X, run.y)}))
    one = run.member(0)
    assert labelled(cplot.decision_regions(one.net, one.X, one.y))
    assert labelled(cplot.transitions(one.net, one.X, one.y, layers=[0, 2, 4]))
    assert labelled(cplot.training_curves({"run": run.history}))
    assert labelled(error_vs_step([0.1, 0.05], {"Euler": [0.2, 0.1]}))


def test_transitions_rejects_layers_out_of_range(run):
    with pytest.raises(ValueError, match="layers must be indices in 0..4"):
        cplot.transitions(run.member(0).net, run.X[0], run.y[0], layers=[0, 5])


def test_decision_regions_needs_two_classes(run):
    net = lib.ODENet(width=2, depth=2, classes=3)
    with pytest.raises(ValueError, match="two-class"):
        cplot.decision_regions(net, run.X[0], run.y[0])


def test_explorer_figure_and_widget():
    from lib.experiments import explore
    from lib.interactive import explorer
    from lib.plotting.explorer import explorer_figure
    run = explore("spiral", depth=2, iterations=5, n=40)
    fig = explorer_figure(run)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("K = 2, h = 1, tanh: accuracy")
    assert titles[1:] == ["features at layer 0 (t = 0)", "features at layer 1 (t = 1)",
                          "features at layer 2 (t = 2)"]
    assert labelled(fig)
    widget = explorer(iterations=5, n=40)
    assert [c.description for c in widget.children[:3]] == ["K", "h", "σ"]
    plt.close("all")


def test_gradient_figures_are_labelled():
    from lib.plotting import gradients as gplot
    t = torch.arange(5, dtype=torch.float64) * 0.5
    curves = {"initial": torch.rand(3, 5) + 0.1, "trained": torch.rand(3, 5) * 1e-6}
    fig = gplot.layer_gradients(t, curves)
    assert len(fig.axes[0].get_lines()) == 6
    assert labelled(fig)
    values = {"exact": torch.ones(5), "drifting": 1 + torch.linspace(1e-3, 0, 5)}
    fig = gplot.invariant_drift(t, values, eps=2.0 ** -52)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3 and len(lines[0].get_xdata()) == 0  # exact zeros are left out
    assert len(lines[1].get_xdata()) == 4
    assert labelled(fig)


def test_median_regions_and_determinant_signs_are_labelled(run):
    assert labelled(cplot.median_regions({"a": run, "b": run}))
    one = run.member(0)
    fig = cplot.determinant_signs(one.net, one.X, one.y, resolution=20)
    assert len(fig.axes) == 3 and labelled(fig)
    assert labelled(cplot.determinant_signs(one.net, one.X, one.y, layers=[1], resolution=20))


def test_determinant_signs_picks_the_folding_layer_and_draws_its_fold_line():
    net = lib.ODENet(width=2, depth=5, seed=0).double()    # h = 1, tanh
    A = torch.zeros(5, 2, 2, dtype=torch.float64)  # only layer 3 folds: det(I + diag(tanh') A)
    A[3] = torch.tensor([[-3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # < 0 near the origin
    net.field.set_affine(A, torch.zeros(2))
    X = torch.tensor([[-3.0, -3.0], [3.0, 3.0]], dtype=torch.float64)
    fig = cplot.determinant_signs(net, X, torch.tensor([0, 1]), resolution=41, margin=0.0)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["layer $k = 0$", "layer $k = 1$", "layer $k = 3$"]
    drawn = [len(ax.collections) for ax in fig.axes]   # the fold line det = 0 only in layer 3
    assert drawn[2] == drawn[0] + 1 == drawn[1] + 1
    plt.close(fig)


def test_chapter_one_figures_refuse_bad_input(run):
    with pytest.raises(ValueError, match="at least one"):
        cplot.median_regions({})
    one = run.member(0)
    with pytest.raises(ValueError, match="layers must be indices in 0..3"):
        cplot.determinant_signs(one.net, one.X, one.y, layers=[4], resolution=10)
