"""The figures of lib.plotting.regularisation (chapter 6) and what they draw: the spectra of the
growth comparison and of the stability summary come from lib.spectra.jacobians (one copy of
the code), and the chapter's figures (lib.plotting.regularisation,
lib.plotting.classification.transition_grid and decision_region_grid) have the axes and artists
they promise.  The regularisers themselves are tested in test_regularisers.py, the parameter
path in test_parameter_path.py, the spectra in test_spectra.py and the experiments in
test_experiments.py."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import ipywidgets  # noqa: E402
import torch  # noqa: E402

import lib  # noqa: E402
from lib import experiments as ex  # noqa: E402
from lib import growth as gr  # noqa: E402
from lib import spectra  # noqa: E402
from lib.one_sided import network_curves  # noqa: E402
from lib.plotting import classification as cplot  # noqa: E402
from lib.plotting import regularisation as rplot  # noqa: E402

F64 = torch.float64
def test_spectra_come_from_lib_spectra(monkeypatch, points, tiny):
    """trajectory_spectra and lib.growth.growth_comparison (and so stability_summary) compute
    every Jacobian of the field with lib.spectra.jacobians: one call per layer, no second
    copy of the code."""
    calls = []
    original = spectra.jacobians

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(spectra, "jacobians", counting)
    net = lib.ODENet(width=2, depth=6, T=3.0, seed=0).double()
    gr.growth_comparison(net, points(5, 2)[0], generator=torch.Generator().manual_seed(3))
    assert len(calls) == 6
    ex.stability_summary(tiny, points=5, refinement=2)
    assert len(calls) == 6 + 2 * 8     # two members, refined to 8 layers


# --- figures ---------------------------------------------------------------------------------

def lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_entry_labels(tiny):
    """The entries of theta^k are labelled A_ij then b_i."""
    assert rplot.entry_labels(tiny.net.member(0)) == [
        "$A_{11}$", "$A_{12}$", "$A_{21}$", "$A_{22}$", "$b_{1}$", "$b_{2}$"]


def test_theta_paths_figure(tiny):
    """One panel per network, one step line per entry of theta(t) over [0, T] (b dashed)."""
    nets = {"λ = 0": tiny.net.member(0), "λ = 0.1": tiny.net.member(1)}
    fig = rplot.theta_paths(nets)
    axes = fig.axes
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == list(nets)
    for ax in axes:
        assert len(lines(ax)) == 6 and ax.get_xlabel() and ax.get_ylabel()
        assert [line.get_linestyle() for line in lines(ax)] == ["-"] * 4 + ["--"] * 2
        t, _ = lines(ax)[0].get_data()
        assert t[0] == 0 and t[-1] == tiny.net.T
    assert len(fig.legends) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="members"):
        rplot.theta_paths({"all": tiny.net})


def test_deep_limit_and_distance_figures(tiny):
    """theta(t) of each depth per entry, and the distances between refinements on log axes."""
    one = tiny.net.member(0)
    runs = {"λ = 0": {4: one, 8: one.refined(2)}, "λ = 0.1": {4: one, 8: one.refined(2)}}
    fig = rplot.deep_limit_paths(runs, entries=(0, 4))
    assert len(fig.axes) == 4
    assert all(len(lines(ax)) == 2 for ax in fig.axes)
    assert fig.axes[1].get_title() == "λ = 0: $b_{1}$"
    plt.close(fig)
    fig = rplot.refinement_distances([10, 20, 40], {"a": torch.rand(2, 5),
                                                    "b": torch.rand(2, 5)})
    (ax,) = fig.axes
    assert len(ax.containers) == 2 and ax.get_xscale() == ax.get_yscale() == "log"
    assert len(fig.legends) == 1
    plt.close(fig)
    fig = rplot.refinement_distances([10, 20, 40], {"a": torch.rand(2, 5)},
                                     {"a": torch.rand(3, 5) + 0.1})
    assert len(fig.axes) == 2 and len(fig.axes[1].containers) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="shape"):
        rplot.refinement_distances([10, 20], {"a": torch.rand(3, 5)})
    with pytest.raises(ValueError, match="shape"):
        rplot.refinement_distances([10, 20], {"a": torch.rand(1, 5)}, {"a": torch.rand(1, 5)})


def test_explorer_figure_and_widget(tiny):
    """Four panels for one lambda and layer; the widget redraws its PNG when the layer changes."""
    runs = {}
    for s, lam in enumerate((0.0, 0.1)):
        net = tiny.net.member(s)
        runs[lam] = rplot.ExplorerRun(net, tiny.X_val[s], tiny.y_val[s],
                                      network_curves(net, tiny.X_val[s], pairs=8))
    fig = rplot.explorer_figure(runs, 0.1, 2)
    assert len(fig.axes) == 4
    theta, curves, regions, features = fig.axes
    assert len(lines(theta)) == 6
    assert [line.get_label() for line in lines(curves)] == [r"$\max_z \alpha(J)$",
                                                            r"$\hat\nu = \max_z \mu_2(J)$"]
    assert features.get_title().startswith("features at $k = 2$")
    plt.close(fig)
    widget = rplot.explorer(runs)
    assert [c.description for c in widget.children[:2]] == ["λ", "layer k"]
    # the figure is a PNG in an Image widget: an Output widget stalls nbconvert (nbclient #312)
    assert not [w for w in widget.children if isinstance(w, ipywidgets.Output)]
    status, image = widget.children[2:]
    assert status.value == "λ = 0.1, layer k = 2" and bytes(image.value[:4]) == b"\x89PNG"
    before = bytes(image.value)
    widget.children[1].value = 0
    assert status.value == "λ = 0.1, layer k = 0" and bytes(image.value) != before
    plt.close("all")
    with pytest.raises(ValueError, match="lam must be one of"):
        rplot.explorer_figure(runs, 0.5, 1)
    with pytest.raises(ValueError, match="layer"):
        rplot.explorer_figure(runs, 0.1, 9)


def test_transition_grid(tiny):
    """One row per network, three layers each, the classes and the classifier's line."""
    nets = {"Euler": tiny.net.member(0), "Heun": tiny.net.member(1)}
    fig = cplot.transition_grid(nets, tiny.X[0], tiny.y[0])
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["Euler, $k = 1$", "Euler, $k = 3$",
                                                       "Euler, $k = 4$"]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    assert all(len(ax.collections) == 2 for ax in fig.axes)        # the two classes
    assert len(lines(fig.axes[2])) == 1                            # the classifier's line
    assert len(fig.legends) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="at most 3"):
        cplot.transition_grid(nets, tiny.X[0], tiny.y[0], layers=[1, 2, 3, 4])
    with pytest.raises(ValueError, match="equal depth"):
        cplot.transition_grid({"a": tiny.net.member(0), "b": tiny.net.member(0).refined(2)},
                              tiny.X[0], tiny.y[0])


def test_decision_region_grid(tiny):
    """One panel per (row, column), one legend for the figure."""
    cell = (tiny.net.member(0), tiny.X[0], tiny.y[0])
    rows = {"Euler": {"spiral": cell, "again": cell}, "RK4": {"spiral": cell, "again": cell}}
    fig = cplot.decision_region_grid(rows, resolution=20)
    assert len(fig.axes) == 4 and fig.axes[3].get_title() == "RK4, again"
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    plt.close(fig)
    with pytest.raises(ValueError, match="same columns"):
        cplot.decision_region_grid({"a": {"x": cell}, "b": {"y": cell}})
