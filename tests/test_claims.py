"""The claims helper: a claim that holds returns its machine-independent tolerance text and is
recorded; one that fails raises ClaimError naming the claim, the value and the tolerance."""
import math

import pytest
import torch

from lib import claims

EPS = torch.finfo(torch.float64).eps


@pytest.fixture(autouse=True)
def fresh_record():
    claims.checked(clear=True)
    yield
    claims.checked(clear=True)


def test_roundoff_is_shown_as_a_bound_in_units_of_eps():
    assert claims.roundoff("two sums agree", 3 * EPS, 4) == "≤ 4 ε"
    assert claims.roundoff("float32 sums agree", torch.tensor(1e-7), 2, torch.float32) == \
        "≤ 2 ε (float32)"
    with pytest.raises(claims.ClaimError, match=r"claim failed: two sums agree: got 1\.110e-15 = 5 ε, "
                                                r"expected ≤ 4 ε"):
        claims.roundoff("two sums agree", 5 * EPS, 4)
    assert claims.epsilon(torch.float32) == 2.0 ** -23


@pytest.mark.parametrize("check, args, text", [
    (claims.at_most, (0.5, 1), "≤ 1"),
    (claims.at_least, (0.95, 0.9), "≥ 0.9"),
    (claims.between, (0.3, 0, 1), "in [0, 1]"),
    (claims.near, (2.01, 2, 0.1), "2 ± 0.1"),
    (claims.exactly, (7, 7), "exactly"),
    (claims.holds, (True,), "holds"),
])
def test_each_check_passes_and_records(check, args, text):
    assert check("the claim", *args) == text
    assert claims.checked() == [f"the claim ({'exactly 7' if check is claims.exactly else text})"]


@pytest.mark.parametrize("check, args, message", [
    (claims.at_most, (1.5, 1), "got 1.5, expected ≤ 1"),
    (claims.at_least, (0.85, 0.9), "got 0.85, expected ≥ 0.9"),
    (claims.between, (-0.1, 0, 1), r"got -0.1, expected in \[0, 1\]"),
    (claims.near, (2.2, 2, 0.1), "got 2.2, expected 2 ± 0.1"),
    (claims.near, (math.nan, 2, 0.1), "got nan"),
    (claims.exactly, (6, 7), "got 6, expected exactly 7"),
    (claims.exactly, (torch.zeros(2), torch.ones(2)), "got a tensor that differs"),
    (claims.holds, (False, "ResNet 0.91 < gradient 0.93"), "got ResNet 0.91 < gradient 0.93"),
])
def test_a_failed_claim_names_itself_the_value_and_the_tolerance(check, args, message):
    with pytest.raises(claims.ClaimError, match=f"claim failed: the claim: {message}"):
        check("the claim", *args)
    assert claims.checked() == []


def test_tensors_and_bad_arguments():
    assert claims.at_most("a tensor", torch.tensor([0.5]), 1) == "≤ 1"
    with pytest.raises(ValueError, match="single number"):
        claims.at_most("a tensor", torch.ones(2), 1)
    with pytest.raises(TypeError, match="non-empty sentence"):
        claims.at_most("", 0.5, 1)
    with pytest.raises(TypeError, match="number"):
        claims.at_most("a string", "0.5", 1)
    with pytest.raises(ValueError, match="low = 1 must not exceed high = 0"):
        claims.between("reversed", 0.5, 1, 0)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        claims.near("negative tolerance", 1, 1, -1)
    with pytest.raises(TypeError, match="floating-point"):
        claims.epsilon(torch.int64)
    with pytest.raises(TypeError, match="ok must be a bool"):
        claims.holds("not a bool", 1)


def test_report_shows_kind_measured_value_and_tolerance():
    claims.roundoff("two sums agree", 3 * EPS, 64)
    claims.at_least("an accuracy", 0.93456, 0.9, digits=2)
    claims.exactly("a count", 7, 7, identity=True)
    claims.roundoff("exactly zero", 0.0, 4)
    assert claims.report().split("\n") == [
        "4 claims checked: 3 evidence, 1 identity (hold by algebra)",
        "✓ evidence: two sums agree", "    measured ‹≤ 4 ε›, tolerance ≤ 64 ε",
        "✓ evidence: an accuracy", "    measured ‹0.93›, tolerance ≥ 0.9",
        "✓ identity: a count", "    measured ‹7›, tolerance exactly 7",
        "✓ evidence: exactly zero", "    measured ‹0›, tolerance ≤ 4 ε",
    ]


def test_identity_and_digits_are_checked_arguments():
    with pytest.raises(TypeError, match="identity must be a bool"):
        claims.at_most("x", 0.5, 1, identity="yes")
    with pytest.raises(ValueError, match="digits must be a positive int"):
        claims.at_most("x", 0.5, 1, digits=0)
    assert claims.holds("an order", True, measured="0.91 < 0.93") == "holds"
    assert "measured ‹0.91 < 0.93›" in claims.report()


def test_shown_prints_round_off_as_a_bound_in_eps():
    assert claims.shown(0.93456) == "0.93"
    assert claims.shown(3 * EPS) == "≈ 0 (≤ 4 ε)"
    assert claims.shown(-3 * EPS) == "≈ 0 (≤ 4 ε)"
    assert claims.shown(0.0) == "0"
    assert claims.shown(2.4e-7, dtype=torch.float32) == "≈ 0 (≤ 4 ε)"
    assert claims.shown(4.6e-10) == "4.6e-10"      # 2e6 eps: an error that grew, not round-off
    claims.at_most("a tiny value", 1e-15, 1e-6)
    assert "measured ‹≈ 0 (≤ 8 ε)›" in claims.report()
