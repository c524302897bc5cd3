"""The Colab path without Colab: what a reader gets who runs a chapter outside this repository.

1. Build the package (a wheel, from a copy of ``pyproject.toml``, the licences and ``lib/``).
2. Install it into a fresh virtual environment outside the repository, with the current
   (unpinned) releases of its dependencies (matplotlib, ipywidgets, torchdiffeq, tqdm) and of
   the kernel stack (ipykernel, nbclient).  torch is the one pin: ``torch==2.13.0``, the CPU
   build on this project's machines (an unpinned torch would download a multi-GB CUDA build).
3. Copy every chapter notebook of ``_toc.yml`` to a folder outside the repository, with the
   stored runs under ``data/`` that chapter 6 and the appendix would download there on Colab
   (CI has no network), and execute each top to bottom in that environment's kernel.  The chapters' own claims
   (``lib.claims``) must hold; outputs are not compared.  The set-up cell finds the installed
   version and installs nothing.

Usage (``.ci/run`` runs it):  python .ci/colab_path.py [--jobs 2] [--keep] [--torch SPEC]
Prints one line per chapter (seconds, result) and exits 1 if any chapter fails.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNEL = "book-colab-path"

EXECUTE = textwrap.dedent("""
    import sys, nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    path = sys.argv[1]
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name=sys.argv[2],
                            resources={"metadata": {"path": sys.argv[3]}})
    try:
        client.execute()
    except CellExecutionError as error:
        print(str(error)[-4000:])
        sys.exit(1)
    finally:
        nbformat.write(nb, path)
""")

CHECK = textwrap.dedent("""
    import importlib.metadata as md, pathlib, sys
    import lib
    where = pathlib.Path(lib.__file__).resolve()
    assert pathlib.Path(sys.prefix).resolve() in where.parents, f"lib imported from {where}"
    names = ["structure-preserving-deep-learning", "torch", "torchdiffeq", "matplotlib",
             "ipywidgets", "tqdm", "numpy", "scikit-learn", "ipykernel", "nbclient"]
    print("  " + ", ".join(f"{n} {md.version(n)}" for n in names))
    print(f"  lib from {where.parent}")
""")


def chapters() -> list[pathlib.Path]:
    """Every notebook of the table of contents, in its order (chapters added later included)."""
    entries = re.findall(r"file:\s*([\w./-]+)", (ROOT / "_toc.yml").read_text())
    return [ROOT / (e + ".ipynb") for e in entries if (ROOT / (e + ".ipynb")).exists()]


def run(cmd, quiet=False, **kwargs):
    """Run a command; with ``quiet``, show its output only if it fails (pip warns about the
    local package index on every call)."""
    if not quiet:
        return subprocess.run([str(c) for c in cmd], check=True, **kwargs)
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise subprocess.CalledProcessError(done.returncode, cmd)
    return done


def build_wheel(work: pathlib.Path) -> pathlib.Path:
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "LICENSE", "LICENSE-text"):  # the licences are package data
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "lib", source / "lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
         "-w", work / "dist", source], quiet=True)
    (wheel,) = (work / "dist").glob("*.whl")
    return wheel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once")
    parser.add_argument("--torch", default="torch==2.13.0",
                        help="the torch requirement (default: the local CPU build)")
    parser.add_argument("--keep", action="store_true", help="keep the environment and copies")
    parser.add_argument("--work", type=pathlib.Path, help="folder to work in (default: a temp)")
    args = parser.parse_args()
    work = args.work or pathlib.Path(tempfile.mkdtemp(prefix="colab-path-"))
    work.mkdir(parents=True, exist_ok=True)
    if ROOT in work.resolve().parents or work.resolve() == ROOT:
        parser.error("the work folder must lie outside the repository")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.setdefault("OMP_NUM_THREADS", "1")
    start = time.monotonic()
    try:
        wheel = build_wheel(work)
        venv = work / "venv"
        python = venv / "bin" / "python"
        run([sys.executable, "-m", "venv", venv])
        run([python, "-m", "pip", "install", "-q", wheel, args.torch, "ipykernel", "nbclient"],
            quiet=True, env=env)
        run([python, "-m", "ipykernel", "install", "--prefix", venv, "--name", KERNEL],
            quiet=True, env=env)
        notebooks = work / "notebooks"
        notebooks.mkdir()
        print(f"Colab path: {wheel.name} in a fresh environment "
              f"({time.monotonic() - start:.0f} s to build and install):")
        run([python, "-c", CHECK], env=env, cwd=notebooks)
        copies = [pathlib.Path(shutil.copy(nb, notebooks)) for nb in chapters()]
        # On Colab chapter 6 and the appendix download their stored runs from the book's tagged
        # repository into data/; CI has no network, so the files are put where the download
        # would put them (the download itself: tests/test_regularisation.py, with a file URL).
        shutil.copytree(ROOT / "book" / "data", notebooks / "data",
                        ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        if not copies:
            print("no chapter notebooks in _toc.yml")
            return 1

        def execute(copy: pathlib.Path):
            t0 = time.monotonic()
            done = subprocess.run([str(python), "-c", EXECUTE, str(copy), KERNEL,
                                   str(notebooks)], env=env, cwd=notebooks,
                                  capture_output=True, text=True)
            return copy.name, time.monotonic() - t0, done

        failed = 0
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for name, seconds, done in pool.map(execute, copies):
                ok = done.returncode == 0
                failed += not ok
                print(f"  {name:<40} {seconds:6.1f} s  {'ok' if ok else 'FAILED'}")
                if not ok:
                    print(textwrap.indent((done.stdout + done.stderr)[-4000:], "    | "))
        print(f"Colab path: {len(copies) - failed} of {len(copies)} chapters executed outside "
              f"the repository in {time.monotonic() - start:.0f} s")
        return 1 if failed else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
