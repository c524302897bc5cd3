"""Milliseconds per training step of a ResNet-type ODE network, three ways.

One training step is: zero the gradients (set them to ``None``), forward pass, binary
cross-entropy loss, backward pass.  No optimiser update is timed (it is the same for every
implementation).  The network is the one of ``lib.ODENet``: zero-padding lift of the 2-D
spiral data to width ``d``, ``K`` explicit Runge--Kutta steps of ``z' = tanh(A^k z + b^k)``
with step ``h = 1`` (``T = K``, the ResNet) and per-layer parameters ``theta^k = (A^k, b^k)``,
then the logit ``w^T z^K + w0``.  Compared implementations, all starting from the same
parameter values:

* ``lib``: ``lib.ODENet`` with the tableau ``euler``, ``rk4`` (classic) or ``rk38``;
* ``hand``: a minimal PyTorch loop, ``z = z + h * torch.tanh(z @ A[k].T + b[k])`` for Euler and
  the stages written out plainly for the Runge--Kutta methods;
* ``torchdiffeq``: ``odeint`` with a vector field that picks ``theta^k`` from ``t``
  (piecewise constant, ``k = floor(t / h)``; for ``rk4`` with ``perturb=True`` so that the
  stage at the end of a step still uses that step's parameters), called
  with the whole time grid as ``t`` (``grid``) and with ``t = [0, T]`` plus
  ``options={'step_size': h}`` (``step``).  Its fixed-step ``rk4`` is Kutta's 3/8 rule, so it is
  compared with ``lib``'s ``rk38`` and a hand-written 3/8 loop, not with the classic RK4.

Before timing, every implementation's loss and gradients after one step are checked against
``lib``'s for the same tableau, in float64 (to 1e-10 relative) and in float32 (loss to 1e-5,
gradients to 1e-3 relative: round-off grows through K layers), so that equal computations are
compared.  Timings: float32, ``torch.set_num_threads(1)``, implementations interleaved
round-robin within one run, medians over the timed rounds after warm-up rounds, of the
wall-clock time and of the process CPU time (which a machine shared with other jobs disturbs
less).

    python benchmarks/step_time.py               # full run, prints the markdown table
    python benchmarks/step_time.py --quick       # tiny smoke run
    python benchmarks/step_time.py --write-readme  # full run, table into README.md
    python benchmarks/step_time.py --write-readme --slow-repeats 7 --note "shared machine"
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
import torchdiffeq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import lib  # noqa: E402
from benchmarks._common import cpu_model, write_block  # noqa: E402

README = ROOT / "README.md"
H = 1.0  # step size: T = K, the ResNet
TOLERANCE = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-5, 1e-3)}
"""Relative tolerances (loss, gradient) of the agreement check: round-off only."""


# ---------------------------------------------------------------- the implementations

class Problem:
    """Data and parameter values shared by all implementations of one size."""

    def __init__(self, d: int, K: int, n: int, dtype: torch.dtype):
        X, y = lib.make_dataset("spiral", n, seed=0)
        self.X, self.y = X.to(dtype), y.to(dtype)
        self.d, self.K, self.n, self.dtype = d, K, n, dtype

    def net(self, method: str) -> lib.ODENet:
        return lib.ODENet(width=self.d, depth=self.K, T=self.K * H, method=method,
                          activation="tanh", classes=2, seed=0).to(self.dtype)

    def leaves(self):
        """Fresh leaf copies ``A, b, w, w0`` of the same initial values as :meth:`net`."""
        net = self.net("euler")
        return [p.detach().clone().requires_grad_() for p in net.parameters()]

    def loss(self, zK, w, w0):
        return F.binary_cross_entropy_with_logits(torch.mv(zK, w) + w0, self.y)

    def lift(self):
        return F.pad(self.X, (0, self.d - self.X.shape[1]))


class Impl:
    """One implementation: ``step()`` is one timed training step, returning the loss."""

    def __init__(self, name: str, tableau: str, params, forward, loss):
        self.name, self.tableau = name, tableau
        self.params, self.forward, self._loss = params, forward, loss
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def step(self) -> torch.Tensor:
        for p in self.params:
            p.grad = None
        loss = self._loss(self.forward())
        loss.backward()
        return loss

    def grads(self) -> list[torch.Tensor]:
        return [p.grad for p in self.params]


def lib_impl(P: Problem, method: str) -> Impl:
    net = P.net(method)
    params = list(net.parameters())  # A, b, w, w0
    return Impl(f"lib {method}", method, params, lambda: net(P.X),
                lambda logits: F.binary_cross_entropy_with_logits(logits, P.y))


def hand_euler(P, A, b):
    z, h = P.lift(), H
    for k in range(P.K):
        z = z + h * torch.tanh(z @ A[k].T + b[k])
    return z


def hand_rk4(P, A, b):
    z, h = P.lift(), H
    for k in range(P.K):
        Ak, bk = A[k], b[k]
        k1 = torch.tanh(z @ Ak.T + bk)
        k2 = torch.tanh((z + h / 2 * k1) @ Ak.T + bk)
        k3 = torch.tanh((z + h / 2 * k2) @ Ak.T + bk)
        k4 = torch.tanh((z + h * k3) @ Ak.T + bk)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return z


def hand_rk38(P, A, b):
    z, h = P.lift(), H
    for k in range(P.K):
        Ak, bk = A[k], b[k]
        k1 = torch.tanh(z @ Ak.T + bk)
        k2 = torch.tanh((z + h / 3 * k1) @ Ak.T + bk)
        k3 = torch.tanh((z + h * (k2 - k1 / 3)) @ Ak.T + bk)
        k4 = torch.tanh((z + h * (k1 - k2 + k3)) @ Ak.T + bk)
        z = z + h / 8 * (k1 + 3 * (k2 + k3) + k4)
    return z


HAND = {"euler": hand_euler, "rk4": hand_rk4, "rk38": hand_rk38}


def hand_impl(P: Problem, method: str) -> Impl:
    A, b, w, w0 = params = P.leaves()
    return Impl(f"hand {method}", method, params, lambda: HAND[method](P, A, b),
                lambda z: P.loss(z, w, w0))


class LayerField(torch.nn.Module):
    """``f(t, z) = tanh(A^k z + b^k)``, ``k = floor(t / h)``: parameters piecewise constant in t."""

    def __init__(self, A, b, h):
        super().__init__()
        self.A, self.b, self.h = A, b, h

    def forward(self, t, z):
        k = min(int(float(t) / self.h), self.A.shape[0] - 1)
        return torch.tanh(z @ self.A[k].T + self.b[k])


TORCHDIFFEQ = {"euler": ("euler", {}), "rk38": ("rk4", {"perturb": True})}


def torchdiffeq_impl(P: Problem, method: str, usage: str) -> Impl:
    A, b, w, w0 = params = P.leaves()
    func = LayerField(A, b, H)
    name, options = TORCHDIFFEQ[method]
    T = P.K * H
    if usage == "grid":
        t = torch.arange(P.K + 1, dtype=P.dtype) * H
    else:
        t = torch.tensor([0.0, T], dtype=P.dtype)
        options = {**options, "step_size": H}

    def forward():
        return torchdiffeq.odeint(func, P.lift(), t, method=name, options=options)[-1]
    return Impl(f"torchdiffeq {name} ({usage})", method, params, forward,
                lambda z: P.loss(z, w, w0))


def implementations(P: Problem, group: str) -> list[Impl]:
    """The compared implementations of one group; the first is the hand loop (the baseline)."""
    if group == "euler":
        return [hand_impl(P, "euler"), lib_impl(P, "euler"),
                torchdiffeq_impl(P, "euler", "step"), torchdiffeq_impl(P, "euler", "grid")]
    return [hand_impl(P, "rk4"), lib_impl(P, "rk4"), hand_impl(P, "rk38"), lib_impl(P, "rk38"),
            torchdiffeq_impl(P, "rk38", "step"), torchdiffeq_impl(P, "rk38", "grid")]


# ---------------------------------------------------------------- checking and timing

def same_tableau(impls: list[Impl], impl: Impl, kind: str) -> Impl:
    """The implementation ``kind`` (``lib`` or ``hand``) of the same tableau as ``impl``."""
    return next(i for i in impls if i.name == f"{kind} {impl.tableau}")


def relative_difference(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def check_agreement(d: int, K: int, n: int, group: str, dtype: torch.dtype,
                    loss_rtol: float, grad_rtol: float) -> tuple[float, float]:
    """Largest relative differences ``(loss, gradient)`` of every implementation to ``lib`` with
    the same tableau, after one training step from equal parameters; raises if above tolerance."""
    impls = implementations(Problem(d, K, n, dtype), group)
    losses = {i.name: i.step().detach() for i in impls}
    worst_loss = worst_grad = 0.0
    for impl in impls:
        ref = same_tableau(impls, impl, "lib")
        loss_err = relative_difference(losses[impl.name], losses[ref.name])
        grad_err = max(relative_difference(a, r) for a, r in zip(impl.grads(), ref.grads()))
        if not (loss_err <= loss_rtol and grad_err <= grad_rtol):
            raise AssertionError(
                f"{impl.name} disagrees with {ref.name} in {dtype} (d={d}, K={K}, n={n}): relative "
                f"difference of the loss {loss_err:.1e} (tolerance {loss_rtol:.0e}), of the "
                f"gradients {grad_err:.1e} (tolerance {grad_rtol:.0e})")
        worst_loss, worst_grad = max(worst_loss, loss_err), max(worst_grad, grad_err)
    return worst_loss, worst_grad


class Result(NamedTuple):
    tableau: str
    name: str
    wall_ms: float
    wall_ratio: float
    cpu_ms: float
    cpu_ratio: float
    runs: int


def time_group(d: int, K: int, n: int, group: str, repeats: int, warmup: int, slow_repeats: int,
               seconds: float) -> list[Result]:
    """Round-robin timing, ``warmup`` untimed rounds then at least ``repeats`` timed ones (more,
    up to ``seconds`` of timed rounds, when steps are fast; at most ``slow_repeats`` of
    torchdiffeq's whole-grid usage).  Returns the medians of the wall-clock and of the process
    CPU time per step, and their ratios to the hand loop of the same tableau."""
    impls = implementations(Problem(d, K, n, torch.float32), group)
    start, r = None, 0
    while r < warmup + repeats or time.perf_counter() - start < seconds:
        if r == warmup:
            start = time.perf_counter()
        for impl in impls:
            if "(grid)" in impl.name and len(impl.wall) >= slow_repeats:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            impl.step()
            if r >= warmup:
                impl.wall.append(time.perf_counter() - wall)
                impl.cpu.append(time.process_time() - cpu)
        r += 1
    wall = {i.name: 1e3 * statistics.median(i.wall) for i in impls}
    cpu = {i.name: 1e3 * statistics.median(i.cpu) for i in impls}
    hand = {i.name: same_tableau(impls, i, "hand").name for i in impls}
    return [Result(i.tableau, i.name, wall[i.name], wall[i.name] / wall[hand[i.name]],
                   cpu[i.name], cpu[i.name] / cpu[hand[i.name]], len(i.wall)) for i in impls]


# ---------------------------------------------------------------- reporting

TABLEAU_NAMES = {"euler": "Euler", "rk4": "RK4 (classic)", "rk38": "RK4 (3/8 rule)"}


def table(rows) -> str:
    lines = ["| d | K | n | tableau | implementation | ms / step | × hand loop "
             "| CPU ms / step | × hand loop (CPU) | runs |",
             "| ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (d, K, n), results in rows:
        for r in results:
            lines.append(f"| {d} | {K} | {n} | {TABLEAU_NAMES[r.tableau]} | {r.name} | "
                         f"{r.wall_ms:.2f} | {r.wall_ratio:.2f} | {r.cpu_ms:.2f} | "
                         f"{r.cpu_ratio:.2f} | {r.runs} |")
    return "\n".join(lines)


def summary(rows) -> str:
    """The targets: ``lib`` against the hand loop and against torchdiffeq's faster usage."""
    def spread(values):
        return f"{min(values):.2f}–{max(values):.2f}×"

    vs_hand = {"wall": [], "cpu": []}
    vs_torchdiffeq = {"wall": [], "cpu": []}
    for _, results in rows:
        for clock in ("wall", "cpu"):
            vs_hand[clock] += [getattr(r, f"{clock}_ratio") for r in results
                               if r.name.startswith("lib")]
            for tableau in {r.tableau for r in results if r.name.startswith("torchdiffeq")}:
                lib_ms = next(getattr(r, f"{clock}_ms") for r in results
                              if r.name == f"lib {tableau}")
                best = min(getattr(r, f"{clock}_ms") for r in results
                           if r.tableau == tableau and r.name.startswith("torchdiffeq"))
                vs_torchdiffeq[clock].append(lib_ms / best)
    return (f"`lib` takes {spread(vs_hand['wall'])} the wall-clock time of the hand loop "
            f"({spread(vs_hand['cpu'])} its CPU time; target ≤ 1.1×) and "
            f"{spread(vs_torchdiffeq['wall'])} the wall-clock time of torchdiffeq's faster usage "
            f"with the same tableau ({spread(vs_torchdiffeq['cpu'])} its CPU time; target < 1×).")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (sizes and repeats)")
    parser.add_argument("--write-readme", action="store_true",
                        help="replace the step_time block of README.md")
    parser.add_argument("--repeats", type=int, default=9,
                        help="least number of timed rounds (default 9)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="keep timing fast sizes for this long (default 3 s)")
    parser.add_argument("--slow-repeats", type=int, default=None,
                        help="timed rounds of torchdiffeq's whole-grid usage (default: --repeats)")
    parser.add_argument("--note", default="", help="a remark on the machine, appended to the table")
    args = parser.parse_args(argv)
    if args.quick and args.write_readme:
        parser.error("--write-readme needs the full run, not --quick")
    torch.set_num_threads(1)

    sizes = [(2, 5, 64), (4, 10, 128)] if args.quick else [(2, 20, 1000), (32, 100, 4096)]
    repeats, warmup = (7, 1) if args.quick else (args.repeats, 2)
    slow = args.slow_repeats or math.inf
    seconds = 0.0 if args.quick else args.seconds
    if repeats < 7 or slow < 7:
        parser.error("--repeats and --slow-repeats must be at least 7")

    load = [os.getloadavg()[0]]
    rows, agreement = [], []
    for d, K, n in sizes:
        for group in ("euler", "rk4"):
            errors = [check_agreement(d, K, n, group, dtype, *TOLERANCE[dtype])
                      for dtype in (torch.float64, torch.float32)]
            (loss64, grad64), (loss32, grad32) = errors
            print(f"d={d} K={K} n={n} {group}: every implementation agrees with lib; largest "
                  f"relative difference of the loss {loss64:.1e} (float64), {loss32:.1e} "
                  f"(float32), of the gradients {grad64:.1e} (float64), {grad32:.1e} (float32)",
                  flush=True)
            agreement.append(errors)
            rows.append(((d, K, n), time_group(d, K, n, group, repeats, warmup, slow, seconds)))
            print(table(rows[-1:]), flush=True)

    load.append(os.getloadavg()[0])
    worst64 = max(max(e[0]) for e in agreement)
    worst32 = max(max(e[1]) for e in agreement)
    runs = (f"median of the timed rounds (column *runs*: at least {repeats}, more for fast sizes"
            + (f", {slow} for torchdiffeq's whole-grid usage" if slow < math.inf else "")
            + f") after {warmup} warm-up rounds")
    block = "\n".join([
        "Milliseconds per training step (zero_grad, forward, binary cross-entropy, backward; no "
        "optimiser update), wall-clock and process CPU time, float32, tanh, h = 1 (T = K), from "
        f"`benchmarks/step_time.py`: {runs}, the implementations interleaved round-robin. "
        "Before timing, every implementation's loss and gradients are checked against `lib`'s "
        f"with the same tableau (largest relative difference {worst64:.0e} in float64, "
        f"{worst32:.0e} in float32). *hand*: the plain PyTorch loop "
        "`z = z + h*torch.tanh(z @ A[k].T + b[k])` (RK stages written out likewise); "
        "*torchdiffeq*: `odeint` of a field that picks θᵏ = θ(⌊t/h⌋), with *step* "
        "`t = [0, T]`, `options={'step_size': h}`, and *grid* the whole time grid as `t`. "
        "torchdiffeq's fixed-step `rk4` is Kutta's 3/8 rule (run with `perturb=True` so that "
        "the stage at the end of a step still uses θᵏ), so it is compared with `lib`'s `rk38` "
        "and a hand-written 3/8 loop. Each × column is relative to the hand loop of the same "
        "tableau. The *grid* usage writes each output into a preallocated [K+1, n, d] tensor, so "
        "its backward pass copies a gradient of that size once per grid point: its cost grows "
        "like K², and with the page faults of these fresh buffers it varies from run to run with "
        "the state of the memory allocator.",
        "",
        table(rows),
        "",
        summary(rows),
        "",
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()} ({os.cpu_count()} "
        f"logical CPUs), torch.set_num_threads(1), {platform.python_implementation()} "
        f"{platform.python_version()}, torch {torch.__version__}, torchdiffeq "
        f"{torchdiffeq.__version__}; load average {load[0]:.1f} at the start of the run and "
        f"{load[1]:.1f} at its end (other jobs on the machine disturb the wall-clock columns "
        "more than the CPU-time ones)." + (f" {args.note}" if args.note else ""),
    ])
    print()
    print(block)
    if args.write_readme:
        write_block(README, "step_time", block)
        print(f"\nwrote the table into {README}")


if __name__ == "__main__":
    main()
