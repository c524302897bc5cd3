"""What several seeds cost: S seeds trained as one network with S members against S separate
runs, at the book's sizes (issue 7).

A network built with ``ODENet(seed=[s_1, ..., s_S])`` holds S members, each exactly the network
its seed alone would give, stacked along a member axis: every product is one batched product
(``torch.baddbmm``), the objective is the sum of the members' objectives, and Adam and gradient
descent act entry by entry, so each member follows its own path.  At the book's sizes a step is
bound by the per-operation overhead of PyTorch, not by arithmetic, so S members cost little more
than one.

For each size and each S in (1, 5, 20) this script times ``lib.train`` (Adam, ``--iterations``
iterations, float32, one thread) of

* *members*: one network with S members, trained once;
* *separate*: S single networks trained one after the other (its time is S times the median time
  of one single run, measured in the same round-robin);

and reports the medians of the wall-clock and process CPU time over the timed rounds, and the
ratio *members / one seed* (target: at most 2 for S = 5).

Before timing it checks that the members are the separate runs: five seeds trained together
and apart in float64 by gradient descent (``--check-iterations`` iterations, default 30) end
with the same parameters and objectives to ``1e-12`` relative.  A batched and a single matrix
product may differ in the last bit, so the check is a tolerance, not bitwise equality, and it
stops before training amplifies those bits.  Adam divides each gradient entry by the root of its
running mean square, which turns last-bit differences in entries whose gradient is near zero
into differences of the update's size, so the check uses gradient descent.  Gradient descent
amplifies them too, more slowly: on the width-2 spiral network with h = 1 at step size 0.1 the
difference grows from 1e-16 at iteration 10 to about 1e-10 at iteration 50 and 1e-2 at
iteration 100 (measured 2026-11-28), as two CPUs' runs of that training would.  After 30
iterations it is below 1e-13 at every size.

    python benchmarks/seeds.py                   # full run, prints the markdown table
    python benchmarks/seeds.py --quick           # smoke run
    python benchmarks/seeds.py --write-readme    # full run, table into README.md
"""
from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import lib  # noqa: E402
from benchmarks._common import cpu_model, write_block  # noqa: E402
from lib import train  # noqa: E402

SIZES = [  # (width d, depth K, final time T, method, points n): the book's sizes
    (2, 20, 20.0, "euler", 500),
    (3, 10, 5.0, "euler", 300),
    (4, 100, 10.0, "rk4", 1000),
]
QUICK_SIZES = [(2, 5, 5.0, "euler", 64)]


def data(seeds, n: int, dtype: torch.dtype):
    """Spiral data per seed, stacked ``[S, n, 2]`` and ``[S, n]``."""
    sets = [lib.make_dataset("spiral", n, seed=s, dtype=dtype) for s in seeds]
    return torch.stack([X for X, _ in sets]), torch.stack([y for _, y in sets])


def network(size, seed, dtype: torch.dtype) -> lib.ODENet:
    d, K, T, method, _ = size
    return lib.ODENet(width=d, depth=K, T=T, method=method, seed=seed).to(dtype)


def check_members_are_separate_runs(size, iterations: int) -> float:
    """The largest relative difference (parameters and objectives) between five members trained
    together and the five networks trained alone, float64, gradient descent."""
    seeds = list(range(5))
    X, y = data(seeds, size[-1], torch.float64)
    members = network(size, seeds, torch.float64)
    together = train(members, X, y, iterations=iterations, optimizer="gd", lr=0.1,
                     record_every=iterations)
    worst = 0.0
    for i, s in enumerate(seeds):
        single = network(size, s, torch.float64)
        alone = train(single, X[i], y[i], iterations=iterations, optimizer="gd", lr=0.1,
                      record_every=iterations)
        diffs = [float((together.loss[:, i] - alone.loss).norm() / alone.loss.norm())]
        for p, q in zip(members.member(i).parameters(), single.parameters()):
            diffs.append(float((p - q).detach().norm() / q.detach().norm()))
        worst = max(worst, *diffs)
    return worst


def time_size(size, counts, iterations: int, repeats: int, warmup: int) -> dict:
    """Round-robin medians ``{label: (wall s, cpu s)}`` of one training run, for one single
    network and for a network of S members for each S in ``counts``."""
    n = size[-1]
    runs = {"one seed": (network(size, 0, torch.float32), data([0], n, torch.float32))}
    for S in counts:
        seeds = list(range(S))
        runs[f"{S} members"] = (network(size, seeds, torch.float32), data(seeds, n, torch.float32))
    samples = {label: ([], []) for label in runs}
    for r in range(warmup + repeats):
        for label, (template, (X, y)) in runs.items():
            net = copy.deepcopy(template)
            X_, y_ = (X[0], y[0]) if template.members is None else (X, y)
            wall, cpu = time.perf_counter(), time.process_time()
            train(net, X_, y_, iterations=iterations, record_every=iterations)
            if r >= warmup:
                samples[label][0].append(time.perf_counter() - wall)
                samples[label][1].append(time.process_time() - cpu)
    return {label: (statistics.median(w), statistics.median(c))
            for label, (w, c) in samples.items()}


def table(results, iterations: int) -> str:
    lines = ["| d | K | method | n | seeds S | members: s / run | × one seed | "
             "separate: s / run | speed-up | members CPU s | × one seed (CPU) |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for size, timing in results:
        d, K, _, method, n = size
        one_wall, one_cpu = timing["one seed"]
        for label, (wall, cpu) in timing.items():
            if label == "one seed":
                continue
            S = int(label.split()[0])
            lines.append(f"| {d} | {K} | {method} | {n} | {S} | {wall:.3f} | {wall / one_wall:.2f} | "
                         f"{S * one_wall:.3f} | {S * one_wall / wall:.1f} | {cpu:.3f} | "
                         f"{cpu / one_cpu:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--write-readme", action="store_true",
                        help="replace the seeds block of README.md")
    parser.add_argument("--iterations", type=int, default=20, help="Adam iterations per run")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--check-iterations", type=int, default=30,
                        help="gradient-descent iterations of the equality check")
    parser.add_argument("--note", default="", help="a remark on the machine, appended")
    args = parser.parse_args(argv)
    if args.quick and args.write_readme:
        parser.error("--write-readme needs the full run, not --quick")
    torch.set_num_threads(1)
    sizes = QUICK_SIZES if args.quick else SIZES
    counts = (1, 5) if args.quick else (1, 5, 20)
    repeats, warmup = (3, 1) if args.quick else (args.repeats, 1)
    load = [os.getloadavg()[0]]
    checks, results = [], []
    check_iterations = 10 if args.quick else args.check_iterations
    for size in sizes:
        worst = check_members_are_separate_runs(size, check_iterations)
        if not worst <= 1e-12:
            raise SystemExit(f"members differ from separate runs at {size}: {worst:.1e}")
        checks.append(worst)
        print(f"{size}: five members = five separate runs to {worst:.1e} relative", flush=True)
        results.append((size, time_size(size, counts, args.iterations, repeats, warmup)))
        print(table(results[-1:], args.iterations), flush=True)
    load.append(os.getloadavg()[0])
    five = [t["5 members"][0] / t["one seed"][0] for _, t in results]
    block = "\n".join([
        f"Seconds per training run ({args.iterations} Adam iterations of `lib.train`, "
        "full batch, float32, one thread, spiral data) of one network with S members "
        "(`ODENet(seed=range(S))`, one batched computation) against S separate runs, from "
        f"`benchmarks/seeds.py`: medians of {repeats} timed rounds after one warm-up, the runs "
        "interleaved round-robin; *separate* is S times the median of one single run. "
        "Before timing, five members trained together and the five networks trained alone "
        f"(float64, {check_iterations} gradient-descent iterations) were checked equal: "
        f"largest relative difference of parameters and objectives {max(checks):.0e}.",
        "",
        table(results, args.iterations),
        "",
        f"Five seeds as members take {min(five):.2f}–{max(five):.2f}× the time of one seed "
        "(target ≤ 2×).",
        "",
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()} ({os.cpu_count()} logical "
        f"CPUs), CPython {platform.python_version()}, torch {torch.__version__}; load average "
        f"{load[0]:.1f} at the start and {load[1]:.1f} at the end."
        + (f" {args.note}" if args.note else ""),
    ])
    print()
    print(block)
    if args.write_readme:
        write_block(ROOT / "README.md", "seeds", block)
        print("\nwrote the table into README.md")


if __name__ == "__main__":
    main()
