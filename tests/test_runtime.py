"""The notebooks' set-up: seeded, deterministic, fixed threads, the right device."""
import os

import pytest
import torch

import lib


def test_setup_notebook_seeds_and_makes_torch_deterministic():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        device = lib.setup_notebook(seed=7, threads=1)
        first = torch.rand(3)
        lib.setup_notebook(seed=7, threads=1)
        assert torch.equal(torch.rand(3), first)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.get_num_threads() == 1
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
        assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def test_show_source_refuses_code_wider_than_the_column(tmp_path, monkeypatch):
    from lib.runtime import show_source
    (tmp_path / "wide_module.py").write_text("def wide():\n    return '" + "x" * 90 + "'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from wide_module import wide
    with pytest.raises(ValueError, match=r"wide has lines longer than 88 characters \(lines \[2\]"):
        show_source(wide)


def test_show_source_shows_the_library_code_and_refuses_other_objects():
    from lib.integrators import _step
    from lib.runtime import show_source
    shown = show_source(_step)
    assert "def _step(" in getattr(shown, "data", shown)
    with pytest.raises(TypeError, match="function, method or class"):
        show_source(3)


def test_threads_default_to_omp_num_threads(monkeypatch):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        lib.setup_notebook()
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        lib.setup_notebook()
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            lib.setup_notebook(threads=0)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def test_import_lib_loads_no_matplotlib():
    """The library computes without matplotlib; only the modules that draw (lib.plotting and
    lib.interactive, which joins training to its figures) and setup_notebook load it.  Every
    other module is imported (a fresh interpreter), then lib.interactive as a negative
    control."""
    import subprocess
    import sys
    code = ("import importlib, pkgutil, sys, lib\n"
            "names = [m.name for m in pkgutil.walk_packages(lib.__path__, 'lib.')\n"
            "         if not m.name.startswith(('lib.plotting', 'lib.interactive'))]\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            "print(len(names), 'matplotlib' in sys.modules)\n"
            "import lib.interactive\n"
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, after = out.stdout.split("\n")[:2]
    count, loaded = imported.split()
    assert int(count) >= 30 and loaded == "False", out.stdout   # lib.training, lib.gradients...
    assert after == "True"
