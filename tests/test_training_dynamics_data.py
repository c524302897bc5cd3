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

from lib.experiments import load_records

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
    return load_records(DATA / "ch7_training_dynamics.json")


def test_stored_settings_are_the_scripts(script, stored):
    metadata, stored = stored
    assert metadata["seeds"] == list(script.SEEDS)
    assert metadata["sin_settings"] == script.SIN
    assert metadata["sin_methods"] == json.loads(json.dumps(script.SIN_METHODS))
    assert metadata["binary_settings"] == script.BINARY
    assert metadata["binary_methods"] == script.BINARY_METHODS
    assert list(stored["sin"]) == list(script.SIN_METHODS)
    assert all(len(runs) == len(script.SEEDS) for runs in stored["sin"].values())
    assert all(r["binary"] for runs in stored["binary"].values() for r in runs)


@pytest.mark.parametrize("method, seed", [("E-MSA", 3), ("GD", 1)])
def test_sin_runs_train_again(script, stored, method, seed):
    again = script.sin_run(method, seed, iterations=15)
    first = torch.tensor(stored[1]["sin"][method][seed]["loss"][:15])
    assert torch.allclose(torch.tensor(again["loss"][:15]), first, rtol=1e-6, atol=0)


@pytest.mark.parametrize("method", ["MSA sign rule", "straight-through"])
def test_binary_runs_train_again(script, stored, method):
    again = script.binary_run(method, 2, iterations=15)
    first = torch.tensor(stored[1]["binary"][method][2]["loss"][:15])
    assert torch.allclose(torch.tensor(again["loss"]), first, rtol=1e-6, atol=0)
