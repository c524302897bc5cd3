"""The book on a GPU, in one run: every chapter, a training step as one CUDA graph, and the
memory of the exact gradient.

Needs only Python with torch, numpy, matplotlib and torchdiffeq (no Jupyter, no ipywidgets;
tqdm and IPython are stubbed when missing).  Run from anywhere, results go to ``$OUT``:

    OUT=/path/to/results python benchmarks/gpu_run.py              # on the GPU machine
    OUT=/tmp/smoke python benchmarks/gpu_run.py --cpu-smoke        # tiny sizes, on a CPU

Parts run in the order (b), (c), (a), each written to ``$OUT`` as soon as it is done.

(a) ``chapters``: every chapter notebook of ``_toc.yml`` is executed as a plain script, its code
    cells in order in one namespace, each chapter in its own process, on ``cuda`` (the set-up
    cell's ``lib.setup_notebook`` picks it).  Cells that need ipywidgets or a Jupyter display
    are recorded as skipped; any other exception (a failed claim, an op without a CUDA kernel)
    fails the chapter and is recorded with its cell and traceback.  Wall time per chapter.
(b) ``step``: one training step (forward, binary cross-entropy, backward, Adam update) of lib's
    ODENet, RK4, d = 32, K = 100, n = 4096, float32, eager against the whole step captured as
    one CUDA graph (``torch.cuda.graph``), after checking that both give the same losses.
(c) ``memory``: peak CUDA memory (``torch.cuda.max_memory_allocated``) of one gradient at
    d = 256, K = 100, n = 65536, float32, RK4: DTO (autograd) against OTD with the symplectic
    partner (``lib.gradients.OTD()``) and checkpointed DTO, each in its own process; the
    gradients are compared.

Writes ``$OUT/summary.md`` (all tables), ``$OUT/results.json``, ``$OUT/chapters/*.log``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
WIDGET_MODULES = {"ipywidgets", "IPython", "ipykernel", "traitlets", "comm"}

STEP = dict(width=32, depth=100, n=4096, method="rk4")
MEMORY = dict(width=256, depth=100, n=65536, method="rk4")
SMOKE_STEP = dict(width=8, depth=4, n=64, method="rk4")
SMOKE_MEMORY = dict(width=8, depth=4, n=256, method="rk4")


# --- making lib importable without installing it or Jupyter ------------------------------------

def prepare_imports() -> list[str]:
    """Put the repository on the path, make ``importlib.metadata`` see the book's distribution
    at lib's version (so the chapters' set-up cell installs nothing), and stub tqdm and
    IPython.display when they are missing.  Returns what was stubbed (once per process)."""
    global _PREPARED
    if _PREPARED is not None:
        return _PREPARED
    sys.path.insert(0, str(ROOT))
    version = re.search(r'__version__ = "([^"]+)"', (ROOT / "lib" / "__init__.py").read_text())[1]
    shim = pathlib.Path(tempfile.mkdtemp(prefix="gpu-run-dist-"))
    info = shim / f"structure_preserving_deep_learning-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: structure-preserving-deep-learning"
                                   f"\nVersion: {version}\n")
    sys.path.insert(0, str(shim))
    stubbed = []
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:
        class tqdm:  # a progress bar that shows nothing (lib shows none unless on a terminal)
            def __init__(self, *args, **kwargs):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def update(self, *args):
                pass

        package, auto = types.ModuleType("tqdm"), types.ModuleType("tqdm.auto")
        auto.tqdm = package.tqdm = tqdm
        package.auto = auto
        sys.modules.update({"tqdm": package, "tqdm.auto": auto})
        stubbed.append("tqdm")
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        def display(*objs, **kwargs):
            for obj in objs:
                if not hasattr(obj, "savefig"):
                    print(repr(obj))

        class _Shown:
            def __init__(self, data=None, *args, **kwargs):
                self.data = data

            def __repr__(self):
                return str(self.data)

        package, shown = types.ModuleType("IPython"), types.ModuleType("IPython.display")
        package.version_info, package.get_ipython = (0, 0, 0), lambda: None  # asked by matplotlib
        shown.display = display
        shown.clear_output = lambda *args, **kwargs: None
        for name in ("Markdown", "HTML", "Math", "Latex", "Code", "Image", "SVG", "JSON"):
            setattr(shown, name, type(name, (_Shown,), {}))
        package.display = shown
        package.get_ipython = lambda: None
        sys.modules.update({"IPython": package, "IPython.display": shown})
        stubbed.append("IPython.display")
    os.environ.setdefault("MPLBACKEND", "Agg")
    _PREPARED = stubbed
    return stubbed


_PREPARED: list[str] | None = None


def chapter_notebooks() -> list[pathlib.Path]:
    entries = re.findall(r"file:\s*([\w./-]+)", (ROOT / "_toc.yml").read_text())
    return [ROOT / (e + ".ipynb") for e in entries if (ROOT / (e + ".ipynb")).exists()]


def code_cells(path: pathlib.Path) -> list[str]:
    """The code cells' sources, with IPython magics (``%...``, ``!...``) commented out."""
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return ["\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                      for line in src.splitlines()) for src in sources]


def needs_jupyter(error: BaseException) -> bool:
    return (isinstance(error, ModuleNotFoundError)
            and (error.name or "").split(".")[0] in WIDGET_MODULES)


def run_chapter(path: pathlib.Path) -> dict:
    """Execute one chapter's code cells in order in one namespace (in this process); print
    their output; return what happened."""
    stubbed = prepare_imports()
    import matplotlib.pyplot as plt
    import torch

    namespace: dict = {"__name__": "__main__"}
    result = dict(chapter=path.name, cells=0, skipped=[], failed=None, stubbed=stubbed)
    start = time.perf_counter()
    for i, source in enumerate(code_cells(path)):
        print(f"--- cell {i}", flush=True)
        try:
            exec(compile(source, f"<{path.name} cell {i}>", "exec"), namespace)
            result["cells"] += 1
        except BaseException as error:  # noqa: BLE001 (a chapter's failure is data here)
            if needs_jupyter(error):
                result["skipped"].append(i)
                print(f"skipped: needs {error.name}")
            else:
                result["failed"] = dict(cell=i, error=f"{type(error).__name__}: {error}",
                                        traceback=traceback.format_exc()[-3000:])
                print(result["failed"]["traceback"])
                break
        finally:
            plt.close("all")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    result["seconds"] = time.perf_counter() - start
    device = namespace.get("device")
    result["device"] = str(device) if device is not None else "?"
    try:
        from lib import claims
        result["claims"] = len(claims.checked())
    except Exception:  # noqa: BLE001
        result["claims"] = None
    if torch.cuda.is_available():
        result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def chapters(out: pathlib.Path, only: str | None, timeout: float = 600,
             results: list | None = None, done_one=lambda: None) -> list[dict]:
    """Each chapter in its own process; ``results`` grows by one entry per chapter and
    ``done_one()`` is called after each (to write the tables so far)."""
    logs = out / "chapters"
    logs.mkdir(parents=True, exist_ok=True)
    results = [] if results is None else results
    for path in chapter_notebooks():
        if only and not re.search(only, path.name):
            continue
        log = logs / (path.stem + ".log")
        report = logs / (path.stem + ".json")
        report.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with log.open("w") as handle:
            try:
                done = subprocess.run([sys.executable, __file__, "--run-chapter", str(path),
                                       "--report", str(report)], stdout=handle,
                                      stderr=subprocess.STDOUT, cwd=path.parent,
                                      timeout=timeout)
                why = f"exit {done.returncode} (see the log)"
            except subprocess.TimeoutExpired:
                why = f"stopped after {timeout:.0f} s"
        process = time.perf_counter() - t0
        if report.exists():
            result = json.loads(report.read_text())
        else:
            result = dict(chapter=path.name, failed=dict(cell=None, error=why), cells=0,
                          skipped=[])
        result["process_seconds"] = process
        results.append(result)
        done_one()
        status = "ok" if not result.get("failed") else f"FAILED: {result['failed']['error']}"
        print(f"  {path.name:<36} {result.get('seconds', float('nan')):7.1f} s  {status[:120]}",
              flush=True)
    return results


# --- (b) a training step as one CUDA graph -----------------------------------------------------

def _network(size: dict, device, dtype, T=None):
    import torch
    import lib
    torch.manual_seed(0)
    net = lib.ODENet(width=size["width"], depth=size["depth"], T=T, method=size["method"],
                     seed=0).to(device=device, dtype=dtype)
    X, y = lib.make_dataset("donut2d", size["n"], seed=0)
    return net, X.to(device=device, dtype=dtype), y.to(device)


def _median_ms(fn, repeats: int, device) -> float:
    import torch
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def step_benchmark(size: dict, device, repeats: int = 20, steps: int = 10) -> dict:
    """Eager step against the step captured as one CUDA graph, from the same initial network;
    both run ``3 + steps`` Adam steps and must reach the same loss (float32 round-off)."""
    import torch
    from lib.losses import cross_entropy

    def setup():
        net, X, y = _network(size, device, torch.float32)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, capturable=device.type == "cuda")

        def step():
            loss = cross_entropy(net(X), y)
            loss.backward()
            opt.step()
            return loss.detach()
        return net, opt, step

    # eager
    net, opt, step = setup()

    def eager():
        opt.zero_grad(set_to_none=True)
        return step()

    losses_eager = [eager() for _ in range(3 + steps)]
    eager_ms = _median_ms(eager, repeats, device)
    result = dict(size=size, device=str(device), eager_ms=eager_ms,
                  eager_final_loss=float(losses_eager[-1]))
    if device.type != "cuda":
        result["graph_ms"] = None
        result["note"] = "no CUDA: the graph capture is skipped"
        return result

    # one CUDA graph: warm up on a side stream (the pattern of the PyTorch CUDA-graph docs)
    net, opt, step = setup()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        warm = []
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            warm.append(step())
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)  # backward then allocates .grad from the graph's pool
    t0 = time.perf_counter()
    with torch.cuda.graph(graph):
        static_loss = step()
    capture_s = time.perf_counter() - t0
    losses_graph = list(warm)
    for _ in range(steps):
        graph.replay()
        losses_graph.append(static_loss.clone())
    torch.cuda.synchronize()
    a, b = torch.stack(losses_eager), torch.stack(losses_graph)
    agree = float(((a - b).abs() / a.abs()).max())
    graph_ms = _median_ms(graph.replay, repeats * 3, device)
    result.update(graph_ms=graph_ms, capture_seconds=capture_s, speedup=eager_ms / graph_ms,
                  loss_relative_difference=agree, same_losses=agree < 1e-4)
    return result


# --- (c) memory of one gradient ----------------------------------------------------------------

def run_memory(method: str, size: dict, device_name: str, save: pathlib.Path) -> dict:
    """One gradient of ``method`` at ``size`` in this process; its peak memory and time."""
    prepare_imports()
    import torch
    from lib.gradients import STRATEGIES
    from lib.profiling import peak_memory

    device = torch.device(device_name)
    net, X, y = _network(size, device, torch.float32, T=1.0)
    fn = STRATEGIES[method]
    result = dict(method=method, size=size, device=device_name)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        try:
            grads = fn(net, X, y)
            torch.cuda.synchronize()
        except torch.cuda.OutOfMemoryError as error:
            result.update(out_of_memory=True, error=str(error).split("\n")[0])
            return result
        result["seconds"] = time.perf_counter() - t0
        result["peak_bytes"] = torch.cuda.max_memory_allocated() - base
        result["total_bytes"] = torch.cuda.get_device_properties(device).total_memory
    else:
        t0 = time.perf_counter()
        grads, peak = peak_memory(fn, net, X, y)
        result["seconds"] = time.perf_counter() - t0
        result["peak_bytes"] = peak
        result["note"] = "CPU: peak bytes of live tensors (lib.profiling.peak_memory)"
    torch.save({k: v.detach().cpu() for k, v in grads.items()}, save)
    return result


def memory(out: pathlib.Path, size: dict, device_name: str) -> list[dict]:
    prepare_imports()
    import torch
    from lib.gradients import relative_difference

    results = []
    for method in ("dto", "otd_partner", "checkpointed_dto"):
        report = out / f"memory_{method}.json"
        save = out / f"memory_{method}_grad.pt"
        report.unlink(missing_ok=True)
        if device_name == "cpu":  # the smoke test: no allocator to isolate, stay in-process
            results.append(run_memory(method, size, device_name, save))
            continue
        done = subprocess.run([sys.executable, __file__, "--run-memory", method,
                               "--device", device_name, "--report", str(report),
                               "--size", json.dumps(size), "--save", str(save)],
                              capture_output=True, text=True)
        if report.exists():
            result = json.loads(report.read_text())
        else:
            result = dict(method=method, error=(done.stdout + done.stderr)[-2000:])
        results.append(result)
    grads = {r["method"]: torch.load(out / f"memory_{r['method']}_grad.pt")
             for r in results if (out / f"memory_{r['method']}_grad.pt").exists()}
    if "dto" in grads:
        for r in results:
            if r["method"] in grads and r["method"] != "dto":
                r["relative_difference_to_dto"] = relative_difference(grads[r["method"]],
                                                                      grads["dto"])
    for method in grads:
        (out / f"memory_{method}_grad.pt").unlink()
    return results


# --- report ------------------------------------------------------------------------------------

def summary(info: dict, chapter_results, step, memory_results) -> str:
    lines = [f"# GPU run: {info['device_name']}", "",
             f"{info['when']}; torch {info['torch']} (CUDA {info['cuda']}), Python "
             f"{info['python']}, {info['platform']}; stubbed: {info['stubbed'] or 'nothing'}.", ""]
    if chapter_results is not None:
        lines += ["## Chapters executed as scripts", "",
                  "| chapter | device | seconds | cells run | skipped (Jupyter only) | claims "
                  "checked | peak GiB | result |", "|---|---|---:|---:|---|---:|---:|---|"]
        for r in chapter_results:
            failed = r.get("failed")
            status = "ok" if not failed else f"failed in cell {failed['cell']}: {failed['error']}"
            peak = r.get("peak_gib")
            lines.append(f"| {r['chapter']} | {r.get('device', '?')} | "
                         f"{r.get('seconds', float('nan')):.1f} | {r.get('cells', 0)} | "
                         f"{r.get('skipped') or ''} | {r.get('claims')} | "
                         f"{'' if peak is None else f'{peak:.2f}'} | "
                         f"{status[:200].replace('|', '/')} |")
        lines.append("")
    if step is not None:
        s = step["size"]
        lines += ["## One training step (forward, BCE, backward, Adam)", "",
                  f"d = {s['width']}, K = {s['depth']}, n = {s['n']}, {s['method']}, float32, "
                  f"h = 1, on {step['device']}.", "",
                  "| eager ms | one CUDA graph ms | speed-up | capture s | same losses |",
                  "|---:|---:|---:|---:|---|"]
        if step.get("graph_ms") is None:
            lines.append(f"| {step['eager_ms']:.2f} | n/a | n/a | n/a | n/a |")
        else:
            lines.append(f"| {step['eager_ms']:.2f} | {step['graph_ms']:.2f} | "
                         f"{step['speedup']:.1f} | {step['capture_seconds']:.2f} | "
                         f"{step['same_losses']} ({step['loss_relative_difference']:.1e}) |")
        lines.append("")
    if memory_results is not None:
        s = memory_results[0].get("size", {})
        lines += ["## Peak memory of one gradient", "",
                  f"d = {s.get('width')}, K = {s.get('depth')}, n = {s.get('n')}, "
                  f"{s.get('method')}, float32, T = 1.", "",
                  "| method | peak GiB | seconds | rel. diff. to DTO |", "|---|---:|---:|---:|"]
        for r in memory_results:
            if r.get("out_of_memory"):
                lines.append(f"| {r['method']} | out of memory | | |")
            elif "peak_bytes" not in r:
                lines.append(f"| {r['method']} | error (see results.json) | | |")
            else:
                diff = r.get("relative_difference_to_dto")
                lines.append(f"| {r['method']} | {r['peak_bytes'] / 2**30:.2f} | "
                             f"{r['seconds']:.2f} | {'' if diff is None else f'{diff:.1e}'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny sizes, CPU allowed, chapters only with --chapters")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["chapters", "step", "memory"], help="leave out a part")
    parser.add_argument("--chapters", help="only chapters whose file name matches this regex")
    parser.add_argument("--chapter-timeout", type=float, default=600,
                        help="seconds after which a chapter is stopped (default 600)")
    parser.add_argument("--out", type=pathlib.Path, default=os.environ.get("OUT"))
    # internal: one chapter or one gradient in a child process
    parser.add_argument("--run-chapter", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-memory", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--save", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run_chapter:
        result = run_chapter(args.run_chapter)
        args.report.write_text(json.dumps(result, indent=1))
        return 0
    if args.run_memory:
        result = run_memory(args.run_memory, json.loads(args.size), args.device, args.save)
        args.report.write_text(json.dumps(result, indent=1))
        return 0

    if args.out is None:
        parser.error("name the output folder: OUT=/path/to/results (or --out)")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stubbed = prepare_imports()
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        parser.error("no CUDA device: run with --cpu-smoke to try the script on a CPU")
    device = torch.device("cuda" if cuda else "cpu")
    info = dict(when=time.strftime("%Y-%m-%d %H:%M:%S %Z"), torch=torch.__version__,
                cuda=torch.version.cuda, python=platform.python_version(),
                platform=platform.platform(), stubbed=stubbed,
                device_name=torch.cuda.get_device_name(0) if cuda else "CPU (smoke test)")
    print(f"GPU run on {info['device_name']}, torch {info['torch']}; results in {out}",
          flush=True)
    results: dict = dict(info=info)
    chapter_results = step = memory_results = None
    t0 = time.perf_counter()

    def write():  # after each part, so that a run cut short keeps what it measured
        results["seconds"] = time.perf_counter() - t0
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        text = summary(info, chapter_results, step, memory_results)
        (out / "summary.md").write_text(text)
        return text

    if "step" not in args.skip:
        print("(b) training step", flush=True)
        step = results["step"] = step_benchmark(SMOKE_STEP if args.cpu_smoke else STEP, device)
        print(f"  eager {step['eager_ms']:.2f} ms, graph {step.get('graph_ms')}", flush=True)
        write()
    if "memory" not in args.skip:
        print("(c) memory", flush=True)
        memory_results = results["memory"] = memory(
            out, SMOKE_MEMORY if args.cpu_smoke else MEMORY, device.type)
        for r in memory_results:
            print(f"  {r['method']}: {r.get('peak_bytes', 0) / 2**30:.3f} GiB", flush=True)
        write()
    if "chapters" not in args.skip and (not args.cpu_smoke or args.chapters):
        print("(a) chapters", flush=True)
        chapter_results = results["chapters"] = []
        chapters(out, args.chapters, args.chapter_timeout, chapter_results, write)
    print(write())
    failed = [r["chapter"] for r in chapter_results or [] if r.get("failed")]
    bad_step = step is not None and step.get("same_losses") is False
    return 1 if failed or bad_step else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
