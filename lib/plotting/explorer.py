"""Interactive explorers: ``ipywidgets`` controls over a figure, and chapter 1's explorer of
ResNet-like networks (choose the depth ``K``, the step ``h`` and the activation, train, and see
the decision regions and the features layer by layer).

:func:`figure_widget` shows its figure as a PNG in an ``ipywidgets.Image``, not through an
``Output`` widget (as ``ipywidgets.interactive`` does).  Output captured by an ``Output`` widget
while a cell runs makes headless executors (nbclient, hence ``jupyter nbconvert --execute``)
send the widget's new state back to the kernel on the shell socket while they wait for the
cell's reply on that same socket; now and then that wait is not woken and lasts the whole cell
timeout (nbclient issue #312).  An ``Image`` widget needs no such round trip: the kernel only
sends its new value.
"""
from __future__ import annotations

import io

import matplotlib.pyplot as plt

from ..data import make_dataset
from ..activations import ACTIVATIONS
from ..models import ODENet
from ..training import train
from .classification import decision_regions, scatter_classes
from .style import panels

__all__ = ["figure_widget", "figure_png", "explorer_figure", "explorer"]


def explorer_figure(dataset: str = "donut2d", depth: int = 10, h: float = 1.0,
                    activation: str = "tanh", iterations: int = 300, n: int = 300,
                    seed: int = 0):
    """Train a width-2 Euler network of ``depth`` layers with step ``h`` on ``dataset`` and draw
    its decision regions beside the features at the first, middle and last layer."""
    X, y = make_dataset(dataset, n, seed=seed)
    net = ODENet(width=2, depth=depth, T=depth * h, method="euler", activation=activation,
                 seed=seed)
    history = train(net, X, y, iterations=iterations, lr=0.05, record_every=iterations)
    states = net.trajectory(X).detach()
    fig, axes = panels(4, columns=2, height=3.0)
    accuracy = float(history.train_accuracy[-1])
    decision_regions(net, X, y, ax=axes[0],
                     title=f"K = {depth}, h = {h:g}, {activation}: accuracy {accuracy:.3f}")
    for ax, k in zip(axes[1:], (0, depth // 2, depth)):
        scatter_classes(ax, states[k], y, size=3, legend=False)
        ax.set(title=f"features at layer {k} (t = {k * h:g})", xlabel="$z_1$", ylabel="$z_2$")
    return fig


def figure_png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed, so no backend shows it a second time."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def figure_widget(draw, controls, describe):
    """A box of ``controls``, a status line and the figure ``draw(*values)`` as a PNG, drawn now
    and again whenever a control's value changes.  ``describe(*values)`` is the status line;
    while ``draw`` runs it ends in "…", and an exception is shown there instead of the figure
    (a widget callback has nowhere else to report it)."""
    import ipywidgets as widgets

    status = widgets.Label()
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))

    def update(change=None):
        values = [c.value for c in controls]
        status.value = f"{describe(*values)} …"
        try:
            image.value = figure_png(draw(*values))
        except Exception as error:
            status.value = f"{type(error).__name__}: {error}"
            return
        status.value = describe(*values)

    for control in controls:
        control.observe(update, names="value")
    update()
    return widgets.VBox([*controls, status, image])


def explorer(dataset: str = "donut2d", **options):
    """The ipywidgets explorer: sliders for ``K`` and ``h``, a menu for the activation, a status
    line and the figure of :func:`explorer_figure` (``options`` are passed on to it).  It trains
    once for the initial values, then again whenever a control is released."""
    import ipywidgets as widgets

    controls = [
        widgets.IntSlider(value=10, min=1, max=40, step=1, description="K",
                          continuous_update=False),
        widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.1, description="h",
                            continuous_update=False),
        widgets.Dropdown(options=sorted(ACTIVATIONS), value="tanh", description="σ"),
    ]
    return figure_widget(
        lambda depth, h, activation: explorer_figure(dataset, depth, h, activation, **options),
        controls,
        lambda depth, h, activation: f"{dataset}: K = {depth}, h = {h:g}, σ = {activation}")
