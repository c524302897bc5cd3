"""The pieces behind chapter 6 and its appendix: the eigenvalues' prediction of perturbation
growth (lib.stability, computed from lib.stability's own spectra), configurations run, stored
and loaded over several seeds (lib.experiments), and the new figures (lib.plotting.regularisation,
lib.plotting.classification.transition_grid) with the axes and artists they promise."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import ipywidgets  # noqa: E402
import torch  # noqa: E402

import lib  # noqa: E402
from lib import experiments as ex  # noqa: E402
from lib import growth as gr  # noqa: E402
from lib import stability as st  # noqa: E402
from lib.deep_limit import refine  # noqa: E402
from lib.plotting import classification as cplot  # noqa: E402
from lib.plotting import regularisation as rplot  # noqa: E402
from lib.train import parameter_path, roughness, time_smoothness  # noqa: E402

F64 = torch.float64
TINY = dict(dataset="spiral", seeds=[0, 1], n=40, iterations=6, width=2, depth=4, T=2.0,
            lam=0.1, dtype="float64")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the eigenvalues' prediction of growth --------------------------------------------------

def test_eigenvalue_growth_is_exp_of_integrated_alpha_per_column():
    alpha = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-1.0, 1.0]], dtype=F64)
    growth = st.eigenvalue_growth(alpha, 0.1)
    assert growth.shape == (4, 2)
    for j in range(2):
        torch.testing.assert_close(growth[:, j], st.growth_bound(alpha[:, j], 0.1), rtol=0,
                                   atol=1e-15)
    torch.testing.assert_close(st.eigenvalue_growth(alpha[:, 0], 0.1),
                               st.growth_bound(alpha[:, 0], 0.1), rtol=0, atol=0)
    with pytest.raises(ValueError, match="alpha"):
        st.eigenvalue_growth(torch.zeros(2, 2, 2), 0.1)
    with pytest.raises(ValueError, match="h must"):
        st.eigenvalue_growth(alpha, 0.0)


def test_trajectory_spectra_are_those_of_the_layer_jacobians_at_the_trajectory():
    """J = diag(sigma'(A z + b)) A for the ResNet field, at every state z_n^k of the trajectory."""
    net = lib.ODENet(width=3, depth=5, T=2.0, seed=3).double()
    x = torch.randn(7, 2, generator=gen(1), dtype=F64)
    spectra = st.trajectory_spectra(net, x)
    states = net.trajectory(x).detach()
    J = []
    for k, (A, b) in enumerate(net.field.thetas()):
        A, b = A.detach(), b.detach()
        D = 1 - torch.tanh(states[k] @ A.T + b) ** 2
        J.append(D[:, :, None] * A)
    J = torch.stack(J)
    torch.testing.assert_close(spectra.alpha, torch.linalg.eigvals(J).real.amax(-1))
    torch.testing.assert_close(spectra.log_norm, torch.linalg.eigvalsh((J + J.mT) / 2)[..., -1])
    torch.testing.assert_close(spectra.variation,
                               torch.linalg.matrix_norm(J[1:] - J[:-1], ord=2) / net.h)
    assert bool((spectra.alpha <= spectra.log_norm + 1e-12).all())
    eigenvalues = torch.linalg.eigvals(J).abs().square().sum(-1)
    torch.testing.assert_close(spectra.departure,
                               (J.square().sum((-2, -1)) - eigenvalues).clamp(min=0).sqrt())


def test_spectra_come_from_lib_stability(monkeypatch):
    """trajectory_spectra and lib.growth.growth_comparison (and so stability_summary) compute
    every Jacobian of the field with lib.stability.jacobians: one call per layer, no second
    copy of the code."""
    calls = []
    original = st.jacobians

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(st, "jacobians", counting)
    net = lib.ODENet(width=2, depth=6, T=3.0, seed=0).double()
    gr.growth_comparison(net, torch.randn(5, 2, generator=gen(2), dtype=F64),
                         generator=gen(3))
    assert len(calls) == 6
    experiment = ex.run(TINY)
    ex.stability_summary(experiment, points=5, refinement=2)
    assert len(calls) == 6 + 2 * 8


# --- configurations over seeds: run, store, load -------------------------------------------

def test_run_is_deterministic_and_is_classify():
    one, two = ex.run(TINY), ex.run(TINY)
    for p, q in zip(one.net.parameters(), two.net.parameters()):
        assert torch.equal(p, q)
    assert torch.equal(one.history.loss, two.history.loss)
    direct = ex.classify("spiral", seeds=[0, 1], n=40, iterations=6, width=2, depth=4, T=2.0,
                         regulariser=time_smoothness(0.1), dtype=F64)
    for p, q in zip(one.net.parameters(), direct.net.parameters()):
        assert torch.equal(p, q)
    assert one.train_accuracy.shape == (2,) and ex.spread(one.validation_accuracy)


def test_records_round_trip(tmp_path):
    experiment = ex.run(TINY)
    record = ex.to_record(experiment, TINY)
    path = tmp_path / "runs.json"
    ex.save_records(path, {"tiny": record}, note="test")
    metadata, records = ex.load_records(path)
    assert metadata == {"note": "test"} and list(records) == ["tiny"]
    assert json.loads(path.read_text())["records"]["tiny"]["config"] == TINY
    loaded = ex.from_record(records["tiny"])
    for p, q in zip(loaded.net.parameters(), experiment.net.parameters()):
        assert torch.equal(p, q)
    assert torch.equal(loaded.X_val, experiment.X_val)
    assert torch.equal(loaded.validation_accuracy, experiment.validation_accuracy)
    assert torch.equal(loaded.objective, experiment.objective)
    assert len(loaded.history.loss) == len(experiment.history.recorded)
    full = ex.from_record(ex.to_record(experiment, TINY, full_loss=True))
    assert torch.equal(full.history.loss, experiment.history.loss)
    with pytest.raises(FileNotFoundError, match="regenerate"):
        ex.load_records(tmp_path / "missing.json")
    # a missing file is downloaded from the url first (on Colab: the book's tagged repository)
    fetched = tmp_path / "colab" / "data" / "runs.json"
    assert ex.load_records(fetched, url=path.as_uri()) == (metadata, records)
    assert fetched.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="regulariser"):
        ex.run(dict(TINY, regulariser=None))


def test_stability_summary_per_seed():
    experiment = ex.run(TINY)
    summary = ex.stability_summary(experiment, points=8, refinement=2)
    assert all(v.shape == (2,) and v.dtype == F64 for v in summary)
    assert torch.equal(summary.roughness, roughness(experiment.net))
    again = ex.stability_summary(experiment, points=8, refinement=2)
    assert all(torch.equal(a, b) for a, b in zip(summary, again))
    assert bool((summary.log_growth <= summary.log_bound + 1e-6).all())
    assert bool((summary.gap >= -1e-12).all())
    assert bool((summary.random_error >= 0).all() and (summary.departure >= 0).all())
    assert bool(((summary.exceeded >= 0) & (summary.exceeded <= 1)).all())


# --- figures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    return ex.run(TINY)


def lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_entry_labels(tiny):
    assert rplot.entry_labels(tiny.net.member(0)) == [
        "$A_{11}$", "$A_{12}$", "$A_{21}$", "$A_{22}$", "$b_{1}$", "$b_{2}$"]


def test_theta_paths_figure(tiny):
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
    one = tiny.net.member(0)
    runs = {"λ = 0": {4: one, 8: refine(one, 2)}, "λ = 0.1": {4: one, 8: refine(one, 2)}}
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
    runs = {}
    for s, lam in enumerate((0.0, 0.1)):
        net = tiny.net.member(s)
        runs[lam] = rplot.ExplorerRun(net, tiny.X_val[s], tiny.y_val[s],
                                      st.network_curves(net, tiny.X_val[s], pairs=8))
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
        cplot.transition_grid({"a": tiny.net.member(0), "b": refine(tiny.net.member(0), 2)},
                              tiny.X[0], tiny.y[0])


def test_decision_region_grid(tiny):
    cell = (tiny.net.member(0), tiny.X[0], tiny.y[0])
    rows = {"Euler": {"spiral": cell, "again": cell}, "RK4": {"spiral": cell, "again": cell}}
    fig = cplot.decision_region_grid(rows, resolution=20)
    assert len(fig.axes) == 4 and fig.axes[3].get_title() == "RK4, again"
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    plt.close(fig)
    with pytest.raises(ValueError, match="same columns"):
        cplot.decision_region_grid({"a": {"x": cell}, "b": {"y": cell}})
