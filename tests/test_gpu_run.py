"""benchmarks/gpu_run.py executes a chapter as a plain script, as it will on the GPU machine:
the set-up cell installs nothing, cells that need Jupyter widgets are skipped, a failed claim
fails the chapter and names its cell."""
import json
import pathlib
import subprocess
import sys

import nbformat

from test_notebooks import SETUP_CELL

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_run.py"


def run_chapter(tmp_path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    # ipywidgets and IPython are missing on the GPU machine: hide them here too
    hidden = tmp_path / "hide"
    for module in ("ipywidgets", "IPython"):
        (hidden / module).mkdir(parents=True)
        (hidden / module / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{module}'\", name='{module}')\n")
    report = tmp_path / "report.json"
    env = {"PYTHONPATH": str(hidden), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
           "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--run-chapter", str(path),
                           "--report", str(report)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert report.exists(), done.stdout + done.stderr
    return json.loads(report.read_text()), done.stdout


def test_a_chapter_runs_as_a_script_until_a_claim_fails(tmp_path):
    result, output = run_chapter(tmp_path, [
        SETUP_CELL,
        "%matplotlib inline\nfrom IPython.display import display\nfrom lib import claims",
        "from lib.interactive import explorer, explorer_figure\nexplorer()",
        "fig = explorer_figure('spiral', depth=2, iterations=3, n=20)\ndisplay(fig)\n"
        "import matplotlib.pyplot as plt\nplt.show()\nprint('drawn')",
        "print(claims.at_most('a small number', 1.0, 2.0))",
        "claims.at_most('a smaller number', 3.0, 2.0)",
        "print('never')",
    ])
    assert result["skipped"] == [2] and result["cells"] == 4
    assert result["failed"]["cell"] == 5 and result["failed"]["error"].startswith("ClaimError")
    assert result["claims"] == 1 and result["device"] == "cpu"
    assert "drawn" in output and "skipped: needs ipywidgets" in output and "never" not in output


def test_the_cpu_smoke_run_writes_its_tables(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "One training step" in summary
    assert "| otd_partner |" in summary and "| dto |" in summary
    results = json.loads((tmp_path / "results.json").read_text())["memory"]
    otd = next(r for r in results if r["method"] == "otd_partner")
    assert otd["relative_difference_to_dto"] < 1e-5  # float32; equal in exact arithmetic
