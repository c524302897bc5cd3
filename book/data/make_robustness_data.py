"""Regenerate ``book/data/ch8_robustness.json`` and ``book/data/ch8_networks.pt``: the trained
digit classifiers of chapter 8 and what the attacks, certificates and Lipschitz searches say
about them.

Run from anywhere: ``python book/data/make_robustness_data.py`` (about 15 minutes on one core).
It trains every configuration of :data:`CONFIGS` over five seeds as one computation
(:func:`lib.robustness.train_digits`), evaluates it on the test digits
(:func:`lib.robustness.evaluate`: clean accuracy, accuracy under PGD and certified accuracy at
:data:`RADII`, the Lipschitz bound and the estimate of the Lipschitz constant), repeats the
attack on the two main networks with twice the steps and twice the restarts, and stores the
outcomes as JSON and the parameters of the two main networks as float32 tensors.  ``--only
NAME`` retrains one configuration and prints its evaluation beside the stored one.

Reproducibility.  Training and attacks are deterministic on one machine (one thread); another
CPU or BLAS path changes the round-off, which 300 Adam steps amplify, so the chapter relies
only on conclusions over the seeds (``tests/test_robustness_data.py`` retrains a sample).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

import lib
from lib.robustness import evaluate, train_digits

HERE = pathlib.Path(__file__).resolve().parent
RESULTS, NETWORKS = HERE / "ch8_robustness.json", HERE / "ch8_networks.pt"

COMMON = dict(width=32, depth=10, seeds=[0, 1, 2, 3, 4], iterations=300, lr=0.01,
              activation="tanh", dtype="float32")
"""Shared by every run: a linear lift 64 -> 32, ten explicit Euler layers (h = 1), ten logits,
Adam for 300 full-batch steps on the 1,200 training digits."""

NONEXPANSIVE = dict(field="gradient", limit=2.0, temperature=10.0, margin=0.7)
"""h ||A^k||^2 <= 2, a 1-Lipschitz lift and read-out, and the tempered margin loss asking for
a logit margin sqrt(2) * 0.5 (a certified radius 0.5 on the training digits)."""

RADII = (0.25, 0.5, 1.0, 2.0, 3.0)
ATTACK = dict(steps=100, restarts=10)
STRONG = dict(steps=200, restarts=20)
DEPTHS = (2, 4, 8, 16, 32, 64)
DEPTH_ITERATIONS = 100
LIMITS = (1.0, 2.0, 3.0, 4.0)
"""The step limits of the price sweep, h ||A^k||^2 <= limit; above 2 a layer may expand."""
MARGINS = (0.0, 0.35, 0.7, 1.4)
"""The logit margins asked for by the training loss (sqrt(2) times the radius they certify
on the training digits)."""


def configurations() -> dict[str, dict]:
    """Every configuration by name: the two main networks, the depth sweep of both (100
    steps each) and the sweeps of the step limit and of the loss's margin of the gradient
    network."""
    configs = {"resnet": dict(COMMON, field="resnet"), "nonexpansive": dict(COMMON, **NONEXPANSIVE)}
    for K in DEPTHS:
        configs[f"depth/resnet/K={K}"] = dict(COMMON, field="resnet", depth=K,
                                              iterations=DEPTH_ITERATIONS)
        configs[f"depth/nonexpansive/K={K}"] = dict(COMMON, **NONEXPANSIVE, depth=K,
                                                    iterations=DEPTH_ITERATIONS)
    for limit in LIMITS:
        if limit != NONEXPANSIVE["limit"]:
            configs[f"limit={limit:g}"] = dict(COMMON, **dict(NONEXPANSIVE, limit=limit))
    for margin in MARGINS:
        if margin != NONEXPANSIVE["margin"]:
            configs[f"margin={margin:g}"] = dict(COMMON, **dict(NONEXPANSIVE, margin=margin))
    return configs


CONFIGS = configurations()
MAIN = ("resnet", "nonexpansive")


def make(name: str) -> tuple[dict, object]:
    """Train and evaluate configuration ``name``: its record and the trained run."""
    config = CONFIGS[name]
    run = train_digits(config)
    radii = () if name.startswith("depth/") else RADII
    record = {"config": config,
              "validation": run.history.validation_accuracy[-1].tolist(),
              "evaluation": evaluate(run, radii, **ATTACK)}
    if name in MAIN:
        record["strong"] = evaluate(run, radii, **STRONG)["attacked"]
    return record, run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="retrain this configuration and compare, write nothing")
    args = parser.parse_args(argv)
    lib.setup_notebook(seed=0, threads=1)
    if args.only:
        stored = json.loads(RESULTS.read_text())["records"][args.only]
        record, _ = make(args.only)
        for key, value in record["evaluation"].items():
            print(f"{key}: new {value}\n{' ' * len(key)}  stored {stored['evaluation'][key]}")
        return
    records, networks = {}, {}
    metadata = {"library": lib.__version__, "torch": torch.__version__, "radii": list(RADII),
                "attack": ATTACK, "strong": STRONG, "script": "book/data/make_robustness_data.py"}
    for name in CONFIGS:
        began = time.perf_counter()
        records[name], run = make(name)
        if name in MAIN:
            networks[name] = {k: v.detach().cpu() for k, v in run.net.state_dict().items()}
        print(f"{name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
        write(records, networks, metadata)


def write(records: dict, networks: dict, metadata: dict) -> None:
    """Write the records so far (one per line) and the main networks."""
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in records.items())
    RESULTS.write_text("{\n" + f'  "metadata": {json.dumps(metadata)},\n'
                       f'  "records": {{\n{lines}\n  }}\n}}\n')
    torch.save(networks, NETWORKS)


if __name__ == "__main__":
    main()
