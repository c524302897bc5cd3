"""Regenerate ``book/data/ch7_training_dynamics.json``: the training runs of chapter 7.

Run from anywhere: ``python book/data/make_training_dynamics_data.py`` (several minutes on one
core).  Two experiments, each over the seeds :data:`SEEDS`:

- ``sin``: fit ``sin(x)`` on ``[-pi, pi]`` (100 training and 100 test points drawn with the
  seed) with a ResNet of 20 layers of width 5 and tanh (Li, Chen, Tai & E 2018), by gradient
  descent, Adam, basic MSA and E-MSA (:mod:`lib.msa`), all through :func:`lib.train`;
  the objective at every iteration and the wall-clock seconds of each run.
- ``binary``: a network with binary weights (:class:`lib.msa.BinaryField`) on ``donut1d``,
  trained by MSA's sign rule and by the straight-through estimator; accuracies.

Wall-clock seconds depend on the machine; the chapter states only conclusions that hold with a
margin.  ``tests/test_training_dynamics_data.py`` retrains a sample of the stored runs.
"""
from __future__ import annotations

import functools
import json
import math
import pathlib
import time

import torch

import lib
from lib import msa
from lib.losses import accuracy, mean_squared
from lib.training import train

HERE = pathlib.Path(__file__).resolve().parent
FILE = HERE / "ch7_training_dynamics.json"
SEEDS = (0, 1, 2, 3, 4)

SIN = dict(width=5, depth=20, T=5.0, n=100)
SIN_METHODS = {
    "GD": dict(optimizer="gd", lr=0.1, iterations=500),
    "Adam": dict(optimizer="adam", lr=0.01, iterations=500),
    "basic MSA": dict(msa=dict(lr=0.1, rho=0.0, inner_steps=10, inner_lr=0.3), iterations=200),
    "E-MSA": dict(msa=dict(lr=0.1, rho=3.0, inner_steps=10, inner_lr=0.05), iterations=200),
    "basic MSA, E-MSA's inner steps": dict(
        msa=dict(lr=0.1, rho=0.0, inner_steps=10, inner_lr=0.05), iterations=200),
    "E-MSA, basic's inner steps": dict(
        msa=dict(lr=0.1, rho=3.0, inner_steps=10, inner_lr=0.3), iterations=200),
}
"""Each method's settings; MSA's ``lr`` is the classifier's gradient step."""

BINARY = dict(dataset="donut1d", n=200, width=4, depth=10, T=5.0, iterations=100)
BINARY_METHODS = {"MSA sign rule": dict(rho=0.5, lr=0.05), "straight-through": dict(lr=0.05)}


def sin_data(seed: int, n: int = SIN["n"]):
    """``(X, y, X_test, y_test)``: ``n`` uniform points on ``[-pi, pi]`` and ``sin`` of them,
    training and test drawn from ``seed`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    X = (2 * torch.rand(2 * n, 1, generator=g, dtype=torch.float64) - 1) * math.pi
    y = torch.sin(X[:, 0])
    return X[:n], y[:n], X[n:], y[n:]


def sin_run(method: str, seed: int, iterations: int | None = None) -> dict:
    """Train one seed with one method of :data:`SIN_METHODS`; returns its record."""
    settings = dict(SIN_METHODS[method])
    stored = settings.pop("iterations")
    iterations = stored if iterations is None else iterations
    X, y, X_test, y_test = sin_data(seed)
    net = lib.ODENet(width=SIN["width"], depth=SIN["depth"], T=SIN["T"], in_features=1,
                     seed=seed).double()
    if "msa" in settings:
        settings = dict(optimizer=msa.msa(net, X, y, loss="mean_squared", **settings["msa"]))
    start = time.perf_counter()
    history = train(net, X, y, iterations=iterations, loss="mean_squared",
                    record_every=iterations, **settings)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        final = float(mean_squared(net(X), y))
        test = float(mean_squared(net(X_test), y_test))
    return dict(loss=history.loss.tolist() + [final], test=test, seconds=seconds)


def binary_run(method: str, seed: int, iterations: int | None = None) -> dict:
    """Train one seed of the binary-weight network with one of :data:`BINARY_METHODS`."""
    c = BINARY
    iterations = c["iterations"] if iterations is None else iterations
    X, y = lib.make_dataset(c["dataset"], c["n"], seed=seed, dtype=torch.float64)
    Xv, yv = lib.make_dataset(c["dataset"], c["n"], seed=seed + 1000, dtype=torch.float64)
    net = lib.ODENet(width=c["width"], depth=c["depth"], T=c["T"], field=msa.BinaryField,
                     seed=seed).double()
    options = BINARY_METHODS[method]
    if method == "MSA sign rule":
        optimizer = msa.msa(net, X, y, loss="cross_entropy", binary=True, **options)
    else:
        optimizer = functools.partial(msa.StraightThrough, binary=[net.field.signs()], **options)
    history = train(net, X, y, iterations=iterations, optimizer=optimizer,
                    record_every=iterations)
    binary = bool(((net.field.signs() == 1) | (net.field.signs() == -1)).all())
    return dict(loss=history.loss.tolist(), train=float(accuracy(net, X, y)),
                validation=float(accuracy(net, Xv, yv)), binary=binary)


def main() -> None:
    lib.setup_notebook(seed=0)
    records = dict(sin={m: [sin_run(m, s) for s in SEEDS] for m in SIN_METHODS},
                   binary={m: [binary_run(m, s) for s in SEEDS] for m in BINARY_METHODS})
    metadata = dict(seeds=list(SEEDS), sin_settings=SIN, sin_methods=SIN_METHODS,
                    binary_settings=BINARY, binary_methods=BINARY_METHODS)
    # the layout of lib.experiments.load_records, which downloads it on Colab
    FILE.write_text(json.dumps(dict(metadata=metadata, records=records)))


if __name__ == "__main__":
    main()
