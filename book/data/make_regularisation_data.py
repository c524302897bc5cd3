"""Regenerate ``book/data/regularisation.json`` and ``book/data/rk_transitions.json``: the trained
networks of chapter 6 and of the appendix on Runge--Kutta transitions.

Run from anywhere: ``python book/data/make_regularisation_data.py`` (about 20 minutes on one
core).  It trains every configuration of :data:`CONFIGS` over its five seeds with
:func:`lib.experiments.run`, stores the trained members with :func:`lib.experiments.to_record`
and, for the runs of the lambda sweep, what their spectra say
(:func:`lib.experiments.stability_summary`).  ``--only NAME`` regenerates one configuration and
prints how far it is from the stored one instead of writing the files; ``--retrain deep/``
trains the deep limit again and keeps the other stored runs (re-analysing the sweep's);
``--seeds 5 6 7 8 9 --output DIR`` trains everything on other seeds and writes the files to ``DIR`` (to check that
the chapters' conclusions hold beyond the stored seeds).

Reproducibility.  Training is deterministic on one machine (``lib.setup_notebook`` and one
thread), so on the machine that wrote the file the script reproduces it bit for bit
(``tests/test_regularisation_data.py`` re-runs the cheapest configuration).  Another CPU, BLAS
code path or thread count changes the round-off, which 1000 Adam iterations amplify: there the
regenerated parameters differ in their later digits and, for some seeds, the training ends in
another local minimum.  The chapter therefore relies only on conclusions over the seeds, which
are re-checked on the reader's machine by a small configuration trained live.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import torch

import lib
from lib.experiments import from_record, run, stability_summary, to_record

HERE = pathlib.Path(__file__).resolve().parent
FILES = ("regularisation.json", "rk_transitions.json")

COMMON = dict(dataset="spiral", seeds=[0, 1, 2, 3, 4], n=500, width=2, T=10.0, method="euler",
              activation="tanh", optimizer="adam", loss="cross_entropy", dtype="float64")
"""Settings shared by every run: the talk's spiral, width 2, explicit Euler on [0, 10], Adam."""

SWEEP = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
"""The weights lambda of the sweep (the talk's experiment: 0, 0.1 and 1)."""

TALK = (0.0, 0.1, 1.0)
"""The talk's weights: their records keep the objective at every iteration."""

DEPTHS = (10, 20, 40, 80, 160)
"""The depths of the deep limit, each trained from its own random initialisation."""

DEEP_LAMBDAS = (0.0, 0.1)

SIZE = 1e-3
"""The weight of the size penalty of the deep limit's objective (:func:`lib.deep_limit.objective`;
:func:`lib.regularisers.weight_penalty` of weight ``2 SIZE``), which the theorem of Thorpe and
van Gennip assumes."""

DEEP_TRAINING = dict(iterations=3000, lr=0.05)

DATASETS = ("spiral", "donut2d", "squares")
METHODS = ("euler", "heun", "kutta3", "rk4")
"""The appendix: every method on every data set, at equal T = 10 and K = 10 (h = 1)."""


def sweep_name(lam: float) -> str:
    return f"sweep/lam={lam:g}"


def deep_name(lam: float, depth: int) -> str:
    return f"deep/lam={lam:g}/K={depth}"


def rk_name(dataset: str, method: str) -> str:
    return f"rk/{dataset}/{method}"


def configurations(seeds=COMMON["seeds"]) -> dict[str, dict]:
    """Every configuration by name.  The deep limit trains every depth from its own random
    initialisation (``ODENet(seed=s)`` at that depth), with ``R_h`` and the size penalty."""
    common = dict(COMMON, seeds=list(seeds))
    configs = {sweep_name(lam): dict(common, depth=20, iterations=1000, lr=0.05, lam=lam)
               for lam in SWEEP}
    for lam in DEEP_LAMBDAS:
        for K in DEPTHS:
            configs[deep_name(lam, K)] = dict(common, depth=K, lam=lam, size=SIZE,
                                              **DEEP_TRAINING)
    for dataset in DATASETS:
        for method in METHODS:
            configs[rk_name(dataset, method)] = dict(common, dataset=dataset, method=method,
                                                     depth=10, T=10.0, iterations=1000,
                                                     lr=0.05, lam=0.0)
    return configs


def file_of(name: str) -> str:
    """The data file that holds configuration ``name``."""
    return FILES[1] if name.startswith("rk/") else FILES[0]


CONFIGS = configurations()

ANALYSIS = dict(points=200, refinement=4, seed=0)
"""The arguments of :func:`lib.experiments.stability_summary` for the sweep's records."""


def analyse(name: str, record: dict) -> dict:
    """``record`` with, for a run of the lambda sweep, what the spectra say about its trained
    members (:func:`lib.experiments.stability_summary`) under the key ``"analysis"``."""
    if name.startswith("sweep/"):
        summary = stability_summary(from_record(record), **ANALYSIS)
        record = dict(record, analysis={key: value.tolist()
                                        for key, value in summary._asdict().items()})
    return record


def make(name: str) -> dict:
    """Train configuration ``name`` and return its record (with its analysis)."""
    config = CONFIGS[name]
    record = to_record(run(config), config, full_loss=config["lam"] in TALK
                       and name.startswith("sweep/"))
    return analyse(name, record)


def metadata() -> dict:
    return {"library": lib.__version__, "torch": torch.__version__, "analysis": ANALYSIS,
            "script": "book/data/make_regularisation_data.py"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="regenerate this configuration and compare, write nothing")
    parser.add_argument("--retrain", nargs="+", metavar="PREFIX",
                        help="train only the configurations whose names start with one of "
                             "these prefixes; keep the other stored runs, re-analysed")
    parser.add_argument("--seeds", type=int, nargs="+", default=COMMON["seeds"])
    parser.add_argument("--output", type=pathlib.Path, default=HERE)
    args = parser.parse_args(argv)
    lib.setup_notebook(seed=0, threads=1)
    global CONFIGS
    CONFIGS = configurations(args.seeds)
    if args.only:
        _, stored = lib.experiments.load_records(HERE / file_of(args.only))
        new = make(args.only)
        for key, value in new["state"].items():
            difference = (torch.tensor(value) - torch.tensor(stored[args.only]["state"][key]))
            print(f"{key}: largest difference {difference.abs().max():.3g}")
        return
    stored = {}
    if args.retrain:
        for file in FILES:
            stored.update(lib.experiments.load_records(HERE / file)[1])
    records = {}
    for name in CONFIGS:
        began = time.perf_counter()
        if args.retrain and not name.startswith(tuple(args.retrain)):
            records[name] = analyse(name, stored[name])
        else:
            records[name] = make(name)
        print(f"{name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    args.output.mkdir(parents=True, exist_ok=True)
    for file in FILES:
        part = {k: v for k, v in records.items() if file_of(k) == file}
        if args.retrain and all(part[k] == stored.get(k) for k in part):
            continue  # nothing of this file changed: leave it as it is
        lib.experiments.save_records(args.output / file, part, **metadata())


if __name__ == "__main__":
    main()
