"""Classification experiments over several seeds, trained as one computation.

``classify("spiral", seeds=range(5), width=2, depth=20)`` draws, for each seed ``s``, ``n``
training points (data seed ``s``) and ``n`` validation points (data seed
``s + VALIDATION_SEED``) of a toy problem, builds an :class:`~lib.models.ODENet` with one member
per seed (member ``s`` initialised from seed ``s``), trains all members together with
:func:`~lib.train`, and keeps it all in an :class:`Experiment`.  A training outcome is then
reported as its median and range over the seeds (:class:`Spread`), never as one run's digits.
"""
from __future__ import annotations

import json
import math
import pathlib
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import torch

from .config import DEFAULTS
from .data import make_dataset
from .models import ODENet
from .regularisers import time_smoothness, weight_penalty
from .training import History, train

__all__ = ["VALIDATION_SEED", "Spread", "spread", "rank_correlation", "Experiment", "classify",
           "run", "to_record", "from_record", "save_records", "ensure_file", "load_records",
           "StabilitySummary", "stability_summary", "Exploration", "explore"]

VALIDATION_SEED = 1000
"""Offset between the data seed of a member's training points and of its validation points."""


class Spread(NamedTuple):
    """The median and range of one outcome over the seeds (the lower median for an even count)."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.3f} ({self.low:.3f}–{self.high:.3f})"


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two 1-D tensors of equal length ``n >= 2`` without ties:
    the correlation of their ranks, ``1 - 6 sum d_i^2 / (n (n^2 - 1))`` with ``d_i`` the
    difference of the ranks of ``a_i`` and ``b_i`` (Spearman 1904)."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.dim() != 1 \
            or a.shape != b.shape or a.numel() < 2:
        raise ValueError("a and b must be 1-D tensors of the same length n >= 2")
    n = a.numel()
    ranks = [v.detach().double().cpu().argsort().argsort().double() for v in (a, b)]
    return float(1 - 6 * (ranks[0] - ranks[1]).square().sum() / (n * (n * n - 1)))


def spread(values: torch.Tensor) -> Spread:
    """:class:`Spread` of a 1-D tensor of per-seed values."""
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"values must be a non-empty 1-D tensor (one value per seed), got {values!r}")
    v = values.detach().double().cpu().sort().values
    return Spread(float(v[(len(v) - 1) // 2]), float(v[0]), float(v[-1]))


@dataclass
class Experiment:
    """Trained members (one per seed) with their data ``[S, n, 2]``, labels ``[S, n]`` and history."""

    name: str
    seeds: tuple[int, ...]
    net: ODENet
    history: History
    X: torch.Tensor
    y: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def train_accuracy(self) -> torch.Tensor:
        """Final training accuracy per seed ``[S]``."""
        return self.history.train_accuracy[-1]

    @property
    def validation_accuracy(self) -> torch.Tensor:
        """Final validation accuracy per seed ``[S]``."""
        return self.history.validation_accuracy[-1]

    @property
    def objective(self) -> torch.Tensor:
        """The objective before the last update, per seed ``[S]``."""
        return self.history.loss[-1]

    def member(self, s: int) -> "Experiment":
        """The run of seed number ``s`` (an index into ``seeds``) alone."""
        return Experiment(f"{self.name} (seed {self.seeds[s]})", (self.seeds[s],),
                          self.net.member(s), History(self.history.loss[:, s], self.history.recorded,
                                                      self.history.train_accuracy[:, s],
                                                      self.history.validation_accuracy[:, s]),
                          self.X[s], self.y[s], self.X_val[s], self.y_val[s])

    def median_member(self) -> int:
        """The index of the seed whose validation accuracy is the (lower) median: the run to
        draw when one run stands for all."""
        order = self.validation_accuracy.argsort(stable=True)
        return int(order[(len(order) - 1) // 2])

    def summary(self) -> str:
        """One line: median (range) of the final train and validation accuracy over the seeds."""
        return (f"{self.name:<24} train {spread(self.train_accuracy)}   "
                f"validation {spread(self.validation_accuracy)}   ({len(self.seeds)} seeds)")


def classify(dataset: str, *, seeds: Sequence[int] = range(DEFAULTS.seeds), n: int = 500,
             iterations: int = DEFAULTS.iterations, lr: float = DEFAULTS.lr,
             optimizer: str = DEFAULTS.optimizer, loss: str = DEFAULTS.loss, regulariser=None,
             device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32, name: str | None = None,
             **net_kwargs) -> Experiment:
    """Train ``ODENet(**net_kwargs, seed=seeds)`` on ``n`` points of ``dataset`` per seed and
    return the :class:`Experiment`; accuracies are recorded every 50 iterations."""
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    train_sets = [make_dataset(dataset, n, seed=s, dtype=dtype) for s in seeds]
    val_sets = [make_dataset(dataset, n, seed=s + VALIDATION_SEED, dtype=dtype) for s in seeds]
    X, y = (torch.stack(t).to(device) for t in zip(*train_sets))
    X_val, y_val = (torch.stack(t).to(device) for t in zip(*val_sets))
    net = ODENet(seed=seeds, **net_kwargs).to(device=device, dtype=dtype)
    history = train(net, X, y, iterations=iterations, lr=lr, optimizer=optimizer, loss=loss,
                    regulariser=regulariser, validation=(X_val, y_val),
                    record_every=min(50, iterations))
    return Experiment(name or dataset, seeds, net, history, X, y, X_val, y_val)


# --- configurations as data: run one, store the trained members, load them back ---------------

def _config(config: Mapping[str, Any]) -> dict:
    """A checked copy of a configuration for :func:`run`."""
    if not isinstance(config, Mapping) or "dataset" not in config:
        raise ValueError(f"config must be a mapping with at least a 'dataset', got {config!r}")
    config = dict(config)
    if not hasattr(torch, str(config.get("dtype", "float64"))):
        raise ValueError(f"config['dtype'] must name a torch dtype, got {config['dtype']!r}")
    if "regulariser" in config:
        raise ValueError("config gives the regulariser by its weight 'lam', not as a function")
    return config


def _regulariser(lam: float, size: float):
    """``R_h`` of weight ``lam`` plus, with ``size > 0``, the size penalty
    (:func:`lib.regularisers.weight_penalty` of weight ``2 size``); ``None`` when both weights
    are 0."""
    parts = [term(w) for term, w in ((time_smoothness, lam), (weight_penalty, 2 * size)) if w]
    if not parts:
        return None
    return lambda net: sum(part(net) for part in parts)


def run(config: Mapping[str, Any], device: torch.device | str = "cpu") -> Experiment:
    """Train one configuration over its seeds: ``config`` holds the keyword arguments of
    :func:`classify` as plain data (``"dataset"``, ``"seeds"``, ``"n"``, ``"iterations"``, the
    network's arguments, ``"dtype"`` as a name, default ``"float64"``), ``"lam"``, the weight
    of :func:`lib.regularisers.time_smoothness` (default 0: no regulariser), and ``"size"``, the
    weight of the size penalty (:func:`lib.deep_limit.objective`; default 0).  Equal configurations give
    equal experiments (on one machine, bit for bit)."""
    config = _config(config)
    dataset, lam = config.pop("dataset"), config.pop("lam", 0.0)
    dtype = getattr(torch, config.pop("dtype", "float64"))
    regulariser = _regulariser(lam, config.pop("size", 0.0))
    return classify(dataset, regulariser=regulariser, dtype=dtype, device=device, **config)


def to_record(experiment: Experiment, config: Mapping[str, Any], full_loss: bool = False) -> dict:
    """The trained members of ``experiment`` (run from ``config``) as plain data for JSON: the
    configuration, every parameter (``tolist``, so float64 values survive exactly) and the
    history: the accuracies at the recorded iterations and the objective there (before the last
    update of each block) or, with ``full_loss``, before every update."""
    h = experiment.history
    loss = h.loss if full_loss else h.loss[torch.tensor(h.recorded) - 1]
    return {"config": _config(config),
            "state": {k: v.detach().cpu().tolist() for k, v in experiment.net.state_dict().items()},
            "history": {"recorded": list(h.recorded), "full_loss": full_loss,
                        "loss": loss.tolist(), "train_accuracy": h.train_accuracy.tolist(),
                        "validation_accuracy": h.validation_accuracy.tolist()}}


def from_record(record: Mapping[str, Any], device: torch.device | str = "cpu") -> Experiment:
    """The :class:`Experiment` stored by :func:`to_record`, without training: the network is
    rebuilt from the configuration and given the stored parameters, the data are drawn again
    from their seeds.  Unless the record holds the full loss, ``history.loss`` holds the
    objective at the recorded iterations only."""
    config = _config(record["config"])
    dtype = getattr(torch, config.pop("dtype", "float64"))
    dataset, seeds = config.pop("dataset"), tuple(config.pop("seeds", range(DEFAULTS.seeds)))
    n = config.pop("n", 500)
    for key in ("lam", "size", "iterations", "lr", "optimizer", "loss", "name"):
        config.pop(key, None)
    X, y = (torch.stack(t) for t in zip(*(make_dataset(dataset, n, seed=s, dtype=dtype)
                                          for s in seeds)))
    X_val, y_val = (torch.stack(t) for t in zip(
        *(make_dataset(dataset, n, seed=s + VALIDATION_SEED, dtype=dtype) for s in seeds)))
    net = ODENet(seed=seeds, **config).to(dtype=dtype)
    net.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in record["state"].items()})
    stored = {k: torch.tensor(record["history"][k], dtype=torch.float64)
              for k in ("loss", "train_accuracy", "validation_accuracy")}
    history = History(stored["loss"], list(record["history"]["recorded"]),
                      stored["train_accuracy"], stored["validation_accuracy"])
    name = record["config"].get("name") or dataset
    return Experiment(name, seeds, net.to(device), history, X.to(device), y.to(device),
                      X_val.to(device), y_val.to(device))


def save_records(path: str | pathlib.Path, records: Mapping[str, Mapping], **metadata) -> None:
    """Write named records (:func:`to_record`) and ``metadata`` to the JSON file ``path``,
    one record per line, so that a change of one configuration changes few lines."""
    for name, record in records.items():
        for value in _numbers(record["state"]):
            if not math.isfinite(value):
                raise ValueError(f"record {name!r} holds a non-finite parameter")
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(record)}" for name, record in records.items())
    text = "{\n" + f'  "metadata": {json.dumps(metadata)},\n  "records": {{\n{lines}\n  }}\n}}\n'
    pathlib.Path(path).write_text(text)


def _numbers(nested):
    if isinstance(nested, (int, float)):
        yield float(nested)
    elif isinstance(nested, Mapping):
        for v in nested.values():
            yield from _numbers(v)
    else:
        for v in nested:
            yield from _numbers(v)


def ensure_file(path: str | pathlib.Path, url: str | None = None) -> pathlib.Path:
    """``path`` as a :class:`pathlib.Path`, downloaded from ``url`` first when it does not
    exist (e.g. a stored run in the book's repository, for a chapter opened on Colab)."""
    path = pathlib.Path(path)
    if not path.exists():
        if url is None:
            raise FileNotFoundError(f"{path} does not exist (regenerate it with the script "
                                    "beside it, or give the url to download it from)")
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response:
            path.write_bytes(response.read())
    return path


def load_records(path: str | pathlib.Path, url: str | None = None) -> tuple[dict, dict]:
    """``(metadata, records)`` from a file written by :func:`save_records`.  When ``path`` does
    not exist and ``url`` is given (e.g. the file in the book's repository, for a chapter opened
    on Colab), the file is downloaded to ``path`` first."""
    data = json.loads(ensure_file(path, url).read_text())
    return data["metadata"], data["records"]


# --- what the spectra say about the trained members (chapter 6) -------------------------------

class StabilitySummary(NamedTuple):
    """Per seed (each a tensor ``[S]``) for the flow of the trained ``theta(t)`` at the
    validation points: the roughness ``sum_k |theta^{k+1} - theta^k|``; the largest estimated
    ``nu`` over the layers; the gap between the red and blue curves, ``max_z mu_2(J) - max_z
    alpha(J)``, averaged over time; the variation of the Jacobian along the trajectories,
    ``int |dJ/dt|`` (median over the points); and, at ``t = T``, in units of ``e``-folds: the
    logarithm of the largest growth ``|d z(T) / d z(0)|_2`` over the points and of the
    estimated bound ``exp(int nu)``, the error of the eigenvalues' prediction against the
    largest growth, ``|log |Phi_n(T)|_2 - int alpha(J_n)|`` (median over the points), the same
    error against the growth in one random direction (the measurement this replaces), the
    fraction of the points whose largest growth exceeds the eigenvalues' prediction, and
    Henrici's departure from normality integrated along the trajectory, ``int dep(J_n)``
    (median over the points)."""

    roughness: torch.Tensor
    nu_max: torch.Tensor
    gap: torch.Tensor
    variation: torch.Tensor
    log_growth: torch.Tensor
    log_bound: torch.Tensor
    eigenvalue_error: torch.Tensor
    random_error: torch.Tensor
    exceeded: torch.Tensor
    departure: torch.Tensor


def stability_summary(experiment: Experiment, points: int = 200, refinement: int = 4,
                      seed: int = 0) -> StabilitySummary:
    """:class:`StabilitySummary` of every member: for each, the network is refined ``refinement``
    times (:meth:`lib.models.ODENet.refined`, the same ``theta(t)`` with steps ``h / refinement``,
    a closer view of the flow) and :func:`lib.growth.growth_comparison` measures the growth of
    perturbations of its first ``points`` validation inputs (random directions drawn from
    ``seed``)."""
    from .growth import growth_comparison
    from .parameter_path import roughness

    rows = []
    for s in range(len(experiment.seeds)):
        one = experiment.member(s)
        fine = one.net.refined(refinement)
        c = growth_comparison(fine, one.X_val[:points],
                              generator=torch.Generator().manual_seed(seed))
        alpha_max, nu = c.spectra.alpha.amax(1), c.spectra.log_norm.amax(1)
        error = c.log_error()
        rows.append(torch.stack([
            roughness(one.net).to(torch.float64), nu.max(), (nu - alpha_max).mean(),
            (fine.h * c.spectra.variation.sum(0)).median(), c.largest[-1].log().max(),
            c.bound[-1].log(), error.abs().median(), c.log_error("random").abs().median(),
            (error > 0).to(nu.dtype).mean(),
            (fine.h * c.spectra.departure.sum(0)).median()]).to(torch.float64).cpu())
    return StabilitySummary(*torch.stack(rows, 1))


class Exploration(NamedTuple):
    """A run of chapter 1's explorer: the trained network, its data and its history."""

    net: ODENet
    X: torch.Tensor
    y: torch.Tensor
    history: History


def explore(dataset: str = "donut2d", depth: int = 10, h: float = 1.0, activation: str = "tanh",
            iterations: int = 300, n: int = 300, seed: int = 0) -> Exploration:
    """Train a width-2 Euler network of ``depth`` layers with step ``h`` and ``activation`` on
    ``n`` points of ``dataset`` (Adam, rate 0.05, ``iterations`` steps), all drawn from ``seed``:
    chapter 1's explorer, drawn by :func:`lib.plotting.explorer.explorer_figure`."""
    X, y = make_dataset(dataset, n, seed=seed)
    net = ODENet(width=2, depth=depth, T=depth * h, method="euler", activation=activation,
                 seed=seed)
    history = train(net, X, y, iterations=iterations, lr=0.05, record_every=iterations)
    return Exploration(net, X, y, history)
