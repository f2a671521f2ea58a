"""The statistics of the tools evidence (benchmarks/tools_evidence.py): one value per generated
set, paired differences, t-test degrees of freedom, the choice on validation figures only."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tools_evidence as E  # noqa: E402


def figures(uar: float, val: float = 0.5) -> dict:
    return {"uar": uar, "val_uar": val, "macro_f1": uar, "accuracy": uar}


def test_seeds_are_averaged_within_a_set_before_any_statistic():
    per_set = {0: {0: {"a": figures(0.6)}, 1: {"a": figures(0.8)}},
               1: {0: {"a": figures(0.5)}, 1: {"a": figures(0.5)}}}
    assert E.set_means(per_set, "a") == pytest.approx([0.7, 0.5])


def test_paired_differences_hand_computed():
    out = E.paired([0.1, 0.2, 0.3])
    assert out["mean"] == pytest.approx(0.2) and out["sd"] == pytest.approx(0.1)
    assert out["df"] == 2 and out["t"] == pytest.approx(0.2 / (0.1 / 3**0.5))  # t = mean / (sd / sqrt(n))
    t = out["t"]  # two-sided p of t(2): the t(2) CDF is 1/2 + t / (2 sqrt(t^2 + 2))
    assert out["p"] == pytest.approx(1 - t / (t**2 + 2) ** 0.5)
    assert out["p"] == pytest.approx(0.0742, abs=1e-4)
    assert out["ahead"] == 3 and out["sets"] == 3


def test_comparisons_pick_the_better_single_modality_on_validation_not_test():
    arms = {"bio": figures(0.9, val=0.4), "body": figures(0.6, val=0.7), "early fusion": figures(0.7),
            "late fusion": figures(0.8), E.SSL_ARMS[0]: figures(0.5), E.SSL_ARMS[1]: figures(0.6)}
    per_set = {d: {0: arms} for d in range(3)}
    out = E.comparisons(per_set)
    better = out["late fusion - the better single modality (chosen on val)"]
    assert better["mean"] == pytest.approx(0.2)  # against body (val 0.7), although bio tests higher
    assert out["late fusion - bio"]["mean"] == pytest.approx(-0.1)
    assert out["SSL + fine-tuning - scratch (10 %)"]["mean"] == pytest.approx(0.1)


def test_choice_uses_validation_uar_and_never_the_transductive_reference():
    def unit(best: str) -> dict:
        arms = {c: figures(0.0, val=0.5) for c in (*E.CANDIDATES, *E.REFERENCE)}
        arms[best] = figures(0.0, val=0.7)
        arms[next(iter(E.REFERENCE))] = figures(1.0, val=0.99)  # the leak: best of all, not eligible
        return arms
    selection = {"frozen": {0: {0: unit("calibration")}}, "alt": {0: {0: unit("train + first differences")}}}
    chosen, choice = E.choose(selection)
    assert chosen == {"frozen": "calibration", "alt": "train + first differences"}
    assert choice["default_scaler"] == "calibration"
