"""The committed runs of chapter 8 (book/data/ch8_*.json, .pt) are what
book/data/make_robustness_data.py produces: the same configurations, stored networks that give
the stored outcomes, and a sample of the depth sweep trained and evaluated again.

On another CPU or BLAS path 100 Adam steps amplify round-off, so the retrained runs are compared
by what the chapter uses (accuracies to a few test points, the bound's side of 1)."""
import json
import pathlib
import runpy
from types import SimpleNamespace

import pytest
import torch

import lib
from lib import robustness as rb
from lib.lipschitz import network_bound
from lib.losses import accuracy

DATA = pathlib.Path(__file__).resolve().parents[1] / "book" / "data"


@pytest.fixture(scope="module")
def script():
    """The regeneration script's names (run as a module, not as ``__main__``)."""
    return SimpleNamespace(**runpy.run_path(str(DATA / "make_robustness_data.py")))


@pytest.fixture(scope="module")
def stored():
    return json.loads((DATA / "ch8_robustness.json").read_text())


def test_stored_configurations_are_the_scripts(script, stored):
    assert list(stored["records"]) == list(script.CONFIGS)
    for name, config in script.CONFIGS.items():
        assert stored["records"][name]["config"] == config, name
    assert stored["metadata"]["radii"] == list(script.RADII)
    assert (DATA / "ch8_networks.pt").stat().st_size < 2 ** 20


def test_stored_networks_give_the_stored_outcomes(script, stored):
    networks = torch.load(DATA / "ch8_networks.pt")
    for name in script.MAIN:
        record = stored["records"][name]
        net = rb.build(record["config"]).float()
        net.load_state_dict(networks[name])
        X, y = lib.data.digits("test", torch.float32)
        evaluation = record["evaluation"]
        torch.testing.assert_close(accuracy(net, X, y).double(),
                                   torch.tensor(evaluation["clean"], dtype=torch.float64),
                                   rtol=0, atol=1.5 / len(y))
        bound = network_bound(net)
        torch.testing.assert_close(bound.double(), torch.tensor(evaluation["bound"],
                                                                dtype=torch.float64),
                                   rtol=1e-5, atol=0)
        with torch.no_grad():
            certified = rb.certified_accuracy(net(X), y, bound, script.RADII)
        torch.testing.assert_close(certified.double(), torch.tensor(
            evaluation["certified"], dtype=torch.float64), rtol=0, atol=1.5 / len(y))


@pytest.mark.parametrize("name", ["depth/resnet/K=8", "depth/nonexpansive/K=8"])
def test_a_sample_trains_again_to_the_stored_run(script, stored, name):
    lib.setup_notebook(seed=0)
    again, _ = script.make(name)
    before = stored["records"][name]
    for key in ("clean", "bound", "estimate"):
        new = torch.tensor(again["evaluation"][key], dtype=torch.float64)
        old = torch.tensor(before["evaluation"][key], dtype=torch.float64)
        if key == "clean":
            torch.testing.assert_close(new, old, rtol=0, atol=0.03)
        else:
            torch.testing.assert_close(new, old, rtol=0.1, atol=1e-3)
    if "nonexpansive" in name:
        assert max(again["evaluation"]["bound"]) <= 1 + 1e-3
