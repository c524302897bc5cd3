"""The stored runs of chapter 7 (book/data/ch7_training_dynamics.json) are what
book/data/make_training_dynamics_data.py produces: the same settings, and a sample of runs
trained again gives the stored objective.  On the machine that wrote the file the retrained
runs agree bit for bit; elsewhere round-off, amplified by training, changes later digits, so
only the first iterations are compared, to a relative 1e-6."""
import importlib.util
import json
import pathlib

import pytest
import torch

DATA = pathlib.Path(__file__).resolve().parents[1] / "book" / "data"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "make_training_dynamics_data", DATA / "make_training_dynamics_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored():
    return json.loads((DATA / "ch7_training_dynamics.json").read_text())


def test_stored_settings_are_the_scripts(script, stored):
    assert stored["seeds"] == list(script.SEEDS)
    assert stored["sin_settings"] == script.SIN
    assert stored["sin_methods"] == json.loads(json.dumps(script.SIN_METHODS))
    assert stored["binary_settings"] == script.BINARY
    assert stored["binary_methods"] == script.BINARY_METHODS
    assert list(stored["sin"]) == list(script.SIN_METHODS)
    assert all(len(runs) == len(script.SEEDS) for runs in stored["sin"].values())
    assert all(r["binary"] for runs in stored["binary"].values() for r in runs)


@pytest.mark.parametrize("method, seed", [("E-MSA", 3), ("GD", 1)])
def test_sin_runs_train_again(script, stored, method, seed):
    again = script.sin_run(method, seed, iterations=15)
    first = torch.tensor(stored["sin"][method][seed]["loss"][:15])
    assert torch.allclose(torch.tensor(again["loss"][:15]), first, rtol=1e-6, atol=0)


@pytest.mark.parametrize("method", ["MSA sign rule", "straight-through"])
def test_binary_runs_train_again(script, stored, method):
    again = script.binary_run(method, 2, iterations=15)
    first = torch.tensor(stored["binary"][method][2]["loss"][:15])
    assert torch.allclose(torch.tensor(again["loss"]), first, rtol=1e-6, atol=0)
