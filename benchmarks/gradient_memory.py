"""Peak memory and time per gradient: DTO, checkpointed DTO, OTD with the symplectic partner,
the black-box backsolve, and ``torchdiffeq.odeint_adjoint`` (issue 3, chapter 2); and, for a
Hamiltonian network, DTO against the reversible gradient, which stores no states (chapter 5).

The network is :func:`lib.examples.smooth_network`: width ``d``, ``K`` layers of
``z' = tanh(A(t) z + b(t))`` on ``[0, T]``, float64, the ``donut2d`` data (``n`` points) lifted to
width ``d``.  The method defaults to ``rk38``, the four-stage fourth-order 3/8 rule, which is
torchdiffeq's fixed-grid ``"rk4"``, so that all five methods differentiate the same network
(classic RK4 costs the same: pass ``--method rk4`` to time the four lib methods with it).
The Hamiltonian rows (``dto_hamiltonian``, ``reversible``) use the same construction with the
second-order field :class:`lib.hamiltonian.SecondOrderField` (``z'' = -A^T tanh(A z + b)``, the
leapfrog network) under Störmer--Verlet, and are compared with ``dto_hamiltonian``.

Each (K, method) is measured in two fresh subprocesses, one thread each, which build the
network and warm up on a two-layer copy first:

* ``peak RSS``: the process's high-water resident set size (``resource.getrusage``) after one
  call minus its resident set size just before it (psutil).  This process runs with glibc's
  ``MALLOC_MMAP_THRESHOLD_=65536``, so every tensor buffer is its own mapping and goes back to
  the system when freed: the high-water mark is then the peak of live memory.  (With glibc's
  default dynamic threshold freed buffers stay in the heap, and fragmentation inflates the
  high-water mark, for checkpointing more than tenfold.)  On CUDA it is
  ``torch.cuda.max_memory_allocated`` above the allocation before the call instead;
* ``peak tensors`` (with ``--tensors``, same process, a later call):
  :func:`lib.profiling.peak_memory`, the largest number of bytes held at once by the tensors the
  call created, exact and deterministic;
* ``time``: in the other process, with the default allocator, the median of ``--repeat`` calls
  after one warm-up call (:func:`lib.profiling.seconds_per_call`);
* ``rel. diff.``: ``|g - g_DTO| / |g_DTO|`` over all parameters, against DTO at the same K.

    python benchmarks/gradient_memory.py                                 # d=32, n=4096, K=100 and 1000
    python benchmarks/gradient_memory.py --n 1024 --depths 100 1000      # what fits a small machine
    python benchmarks/gradient_memory.py --quick                          # smoke run
    python benchmarks/gradient_memory.py --tensors --write-appendix cpu   # table into the book
    python benchmarks/gradient_memory.py --methods reversible             # the Hamiltonian rows

``--write-appendix NAME`` replaces the block between ``<!-- gradient_memory:NAME:begin -->`` and
``<!-- gradient_memory:NAME:end -->`` in ``book/appendix_gradient_costs.md`` with this run's
table.  The last column is printed by the book's rule for numbers (``CONTRIBUTING.md``): DTO is
the reference, checkpointed DTO is compared bitwise, OTD with the partner is round-off and
shown as the bound it satisfies (``lib.claims.roundoff``), the backsolve's and torchdiffeq's
differences are discretisation errors, shown to two digits (or as a bound where they are as
small as round-off).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lib import claims  # noqa: E402
from lib.examples import smooth_network  # noqa: E402
from lib.gradients import DTO, STRATEGIES, relative_difference  # noqa: E402
from lib.profiling import peak_memory, seconds_per_call  # noqa: E402
from lib.data import make_dataset  # noqa: E402
from lib.hamiltonian import SecondOrderField  # noqa: E402
from benchmarks._common import cpu_model, write_block  # noqa: E402

APPENDIX = ROOT / "book" / "appendix_gradient_costs.md"
ROUNDOFF_ULPS = 64
"""The bound, in units of the working precision, that OTD with the partner must meet."""

HAMILTONIAN = {"dto_hamiltonian": DTO(), "reversible": STRATEGIES["reversible"]}
"""The methods measured on the Hamiltonian network, each against ``dto_hamiltonian``."""
METHODS = ["dto", "checkpointed_dto", "otd_partner", "backsolve", "torchdiffeq_adjoint",
           *HAMILTONIAN]
MiB = 2 ** 20


def problem(args, depth, method="dto"):
    device = torch.device(args.device)
    hamiltonian = dict(method="stormer_verlet", field=SecondOrderField) \
        if method in HAMILTONIAN else dict(method=args.method)
    net = smooth_network(width=args.width, depth=depth, T=args.T, seed=0, device=device,
                         **hamiltonian)
    x, y = make_dataset("donut2d", args.n, seed=0, dtype=torch.float64)
    return net, x.to(device), y.to(device)


def worker(args) -> None:
    """Measure one (method, depth) in this process and print one JSON line: the peak memory
    (and the gradient, saved) with ``--save``, else the time."""
    import psutil

    torch.set_num_threads(1)
    gradient = HAMILTONIAN.get(args.worker) or STRATEGIES[args.worker]
    small, xs, ys = problem(args, 2, args.worker)
    gradient(small, xs, ys)  # warm-up: lazy initialisation outside the measurement
    net, x, y = problem(args, args.depth, args.worker)
    if not args.save:
        print(json.dumps({"seconds": seconds_per_call(gradient, net, x, y, repeat=args.repeat)}))
        return
    cuda = x.is_cuda
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = psutil.Process().memory_info().rss
    g = gradient(net, x, y)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    torch.save({k: v.cpu() for k, v in g.items()}, args.save)
    del g
    tensors = peak_memory(gradient, net, x, y)[1] if args.tensors else float("nan")
    print(json.dumps({"peak": peak, "tensors": tensors}))


def difference_text(method: str, g: dict, reference: dict) -> str:
    """The last column: how ``g`` compares with the DTO gradient ``reference``, printed by the
    kind of number it is (the partner's difference is checked against its round-off bound)."""
    if method in ("dto", "dto_hamiltonian"):
        return "0 (reference)"
    diff = relative_difference(g, reference)
    if method == "checkpointed_dto" and all(torch.equal(g[k], reference[k]) for k in reference):
        return "0 (bitwise)"
    if method in ("otd_partner", "reversible"):
        return claims.roundoff(f"{method} is DTO (benchmark)", diff, ROUNDOFF_ULPS)
    if diff <= ROUNDOFF_ULPS * claims.epsilon():
        return f"≤ {ROUNDOFF_ULPS} ε (round-off level)"
    return f"{diff:.1e}"


def write_appendix(name: str, block: str) -> None:
    """Replace the block ``gradient_memory:name`` of the appendix page with ``block``."""
    write_block(APPENDIX, f"gradient_memory:{name}", block)


def run_worker(args, method, depth, save=None):
    cmd = [sys.executable, __file__, "--worker", method, "--depth", str(depth),
           "--width", str(args.width), "--n", str(args.n), "--T", str(args.T),
           "--method", args.method, "--device", args.device, "--repeat", str(args.repeat)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if save:
        cmd += ["--save", save] + (["--tensors"] if args.tensors else [])
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--depths", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--T", type=float, default=1.0)
    parser.add_argument("--method", default="rk38")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--torchdiffeq-max-depth", type=int, default=100,
                        help="skip torchdiffeq's adjoint above this depth (its cost grows like K^2)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tensors", action="store_true",
                        help="also count the peak tensor bytes with lib.profiling.peak_memory")
    parser.add_argument("--quick", action="store_true", help="d=8, n=256, K=10 and 40")
    parser.add_argument("--write-appendix", metavar="NAME",
                        help="write the table into block NAME of book/appendix_gradient_costs.md")
    parser.add_argument("--note", default="", help="a remark on the machine, after the table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.width, args.n, args.depths, args.tensors = 8, 256, [10, 40], True
    memory = "CUDA max_memory_allocated" if args.device.startswith("cuda") else "peak RSS"
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_model()
    lines = [f"d = {args.width}, n = {args.n}, T = {args.T:g}, {args.method}, float64, "
             f"{args.device}, 1 thread, median of {args.repeat}; {machine}, "
             f"torch {torch.__version__}, {datetime.date.today().isoformat()}", ""]
    head = f"| K | method | time (s) | time / DTO | {memory} (MiB) | memory / DTO |"
    head += " peak tensors (MiB) |" if args.tensors else ""
    lines += [head + " rel. diff. to DTO |", "|" + "---|" * (head.count("|") - 1 + 1)]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for depth in args.depths:
            rk = [m for m in args.methods if m not in HAMILTONIAN]
            methods = ["dto"] + [m for m in rk if m != "dto"] if rk else []
            methods += list(HAMILTONIAN) if len(rk) < len(args.methods) else []
            rows, references = {}, {}
            for method in methods:
                if method == "torchdiffeq_adjoint" and depth > args.torchdiffeq_max_depth:
                    continue
                save = os.path.join(tmp, f"{method}_{depth}.pt")
                rows[method] = run_worker(args, method, depth, save) | run_worker(args, method, depth)
                g = torch.load(save)
                base = "dto_hamiltonian" if method in HAMILTONIAN else "dto"
                if method == base:
                    references[base] = g
                r, d = rows[method], rows[base]
                line = (f"| {depth} | {method} | {r['seconds']:.3f} | {r['seconds'] / d['seconds']:.2f} | "
                        f"{r['peak'] / MiB:.1f} | {r['peak'] / d['peak']:.3f} |")
                line += f" {r['tensors'] / MiB:.1f} |" if args.tensors else ""
                lines.append(line + f" {difference_text(method, g, references[base])} |")
                print(lines[-1], flush=True)
    if args.note:
        lines += ["", args.note]
    if args.write_appendix:
        write_appendix(args.write_appendix, "\n".join(lines))


if __name__ == "__main__":
    main()
