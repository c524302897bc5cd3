"""Interactive figures: ``ipywidgets`` controls over a figure (:func:`figure_widget`), and the
figure of chapter 1's explorer of a trained run (:func:`explorer_figure`; the explorer itself,
which trains, is :mod:`lib.interactive`).

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

from ..experiments import Exploration
from .classification import decision_regions, scatter_classes
from .style import panels

__all__ = ["figure_widget", "figure_png", "explorer_figure"]


def explorer_figure(run: Exploration):
    """Chapter 1's explorer figure of a trained run (:func:`lib.experiments.explore`): the
    decision regions beside the features at the first, middle and last layer."""
    net, X, y, history = run
    depth, h, activation = net.depth, net.h, net.field.activation
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
