"""An interactive explorer of ResNet-like networks: choose the depth ``K``, the step ``h`` and
the activation, train, and see the decision regions and the features layer by layer."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..data import make_dataset
from ..activations import ACTIVATIONS
from ..models import ODENet
from ..train import train
from .classification import decision_regions, scatter_classes
from .style import panels


def explorer_figure(dataset: str = "donut2d", depth: int = 10, h: float = 1.0,
                    activation: str = "tanh", iterations: int = 300, n: int = 300, seed: int = 0):
    """Train a width-2 Euler network of ``depth`` layers with step ``h`` on ``dataset`` and draw
    its decision regions beside the features at the first, middle and last layer."""
    X, y = make_dataset(dataset, n, seed=seed)
    net = ODENet(width=2, depth=depth, T=depth * h, method="euler", activation=activation, seed=seed)
    history = train(net, X, y, iterations=iterations, lr=0.05, record_every=iterations)
    states = net.trajectory(X).detach()
    fig, axes = panels(4, columns=2, height=3.0)
    decision_regions(net, X, y, ax=axes[0],
                     title=f"K = {depth}, h = {h:g}, {activation}: accuracy {history.train_accuracy[-1]:.3f}")
    for ax, k in zip(axes[1:], (0, depth // 2, depth)):
        scatter_classes(ax, states[k], y, size=3, legend=False)
        ax.set(title=f"features at layer {k} (t = {k * h:g})", xlabel="$z_1$", ylabel="$z_2$")
    return fig


def explorer(dataset: str = "donut2d"):
    """The ipywidgets explorer: sliders for ``K`` and ``h``, a menu for the activation."""
    import ipywidgets as widgets

    def show(depth, h, activation):
        explorer_figure(dataset, depth, h, activation)
        plt.show()

    return widgets.interactive(
        show,
        depth=widgets.IntSlider(value=10, min=1, max=40, step=1, description="K"),
        h=widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.1, description="h"),
        activation=widgets.Dropdown(options=sorted(ACTIVATIONS), value="tanh", description="σ"),
    )
