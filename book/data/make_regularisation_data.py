"""Regenerate ``book/data/regularisation.json`` and ``book/data/rk_transitions.json``: the trained
networks of chapter 6 and of the appendix on Runge--Kutta transitions.

Run from anywhere: ``python book/data/make_regularisation_data.py`` (about 15 minutes on one
core).  It trains every configuration of :data:`CONFIGS` over its five seeds with
:func:`lib.experiments.run`, stores the trained members with :func:`lib.experiments.to_record`
and, for the runs of the lambda sweep, what their spectra say
(:func:`lib.experiments.stability_summary`).  ``--only NAME`` regenerates one configuration and
prints how far it is from the stored one instead of writing the files; ``--seeds 5 6 7 8 9
--output DIR`` trains everything on other seeds and writes the files to ``DIR`` (to check that
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

DEPTHS = (10, 20, 40, 80)
"""The depths of the deep limit, each trained from the one before, refined."""

DEEP_LAMBDAS = (0.0, 0.1)

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
    """Every configuration by name, in the order they must run (a deep-limit depth after the
    one it starts from).  The deep limit trains depth 10 from a random initialisation and every
    finer depth from the one before, refined, for 300 iterations at learning rate 0.01."""
    common = dict(COMMON, seeds=list(seeds))
    configs = {sweep_name(lam): dict(common, depth=20, iterations=1000, lr=0.05, lam=lam)
               for lam in SWEEP}
    for lam in DEEP_LAMBDAS:
        for i, K in enumerate(DEPTHS):
            config = dict(common, depth=K, iterations=300 if i else 1000, lr=0.01 if i else 0.05,
                          lam=lam)
            if i:
                config["start"] = deep_name(lam, DEPTHS[i - 1])
            configs[deep_name(lam, K)] = config
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


def make(name: str, records: dict, experiments: dict) -> dict:
    """Train configuration ``name`` (after the one it starts from, found in ``experiments`` or
    rebuilt from ``records``) and return its record."""
    config = CONFIGS[name]
    start = config.get("start")
    if start is not None and start not in experiments:
        experiments[start] = from_record(records[start])
    experiment = run(config, start=experiments.get(start))
    experiments[name] = experiment
    record = to_record(experiment, config, full_loss=config["lam"] in TALK
                       and name.startswith("sweep/"))
    if name.startswith("sweep/"):
        summary = stability_summary(experiment, **ANALYSIS)
        record["analysis"] = {key: value.tolist() for key, value in summary._asdict().items()}
    return record


def metadata() -> dict:
    return {"library": lib.__version__, "torch": torch.__version__, "analysis": ANALYSIS,
            "script": "book/data/make_regularisation_data.py"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="regenerate this configuration and compare, write nothing")
    parser.add_argument("--seeds", type=int, nargs="+", default=COMMON["seeds"])
    parser.add_argument("--output", type=pathlib.Path, default=HERE)
    args = parser.parse_args(argv)
    lib.setup_notebook(seed=0, threads=1)
    global CONFIGS
    CONFIGS = configurations(args.seeds)
    if args.only:
        _, stored = lib.experiments.load_records(HERE / file_of(args.only))
        new = make(args.only, stored, {})
        for key, value in new["state"].items():
            difference = (torch.tensor(value) - torch.tensor(stored[args.only]["state"][key]))
            print(f"{key}: largest difference {difference.abs().max():.3g}")
        return
    records, experiments = {}, {}
    for name in CONFIGS:
        began = time.perf_counter()
        records[name] = make(name, records, experiments)
        print(f"{name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    args.output.mkdir(parents=True, exist_ok=True)
    for file in FILES:
        lib.experiments.save_records(args.output / file,
                                     {k: v for k, v in records.items() if file_of(k) == file},
                                     **metadata())


if __name__ == "__main__":
    main()
