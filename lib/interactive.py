"""Chapter 1's explorer of ResNet-like networks: choose the depth ``K``, the step ``h`` and the
activation, train (:func:`lib.experiments.explore`) and see the decision regions and the
features layer by layer (:func:`lib.plotting.explorer.explorer_figure`).  The only module that
both trains and draws: it joins the two, so that plotting never trains."""
from __future__ import annotations

from .activations import ACTIVATIONS
from .experiments import explore
from .plotting import explorer as figures

__all__ = ["explorer_figure", "explorer"]


def explorer_figure(dataset: str = "donut2d", depth: int = 10, h: float = 1.0,
                    activation: str = "tanh", iterations: int = 300, n: int = 300,
                    seed: int = 0):
    """Train as :func:`lib.experiments.explore` does and draw the run."""
    return figures.explorer_figure(explore(dataset, depth, h, activation, iterations, n, seed))


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
    return figures.figure_widget(
        lambda depth, h, activation: explorer_figure(dataset, depth, h, activation, **options),
        controls,
        lambda depth, h, activation: f"{dataset}: K = {depth}, h = {h:g}, σ = {activation}")
