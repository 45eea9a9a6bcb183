"""The committed reference report (reports/demo) regenerates from its config: the demo benchmark run again with the
same seed gives the same numbers. Exact on the machine that made it; elsewhere another CPU's kernels (x264, oneDNN)
may move a decoded pixel or a float's last digits, so the comparison allows what such changes can do to a
score, not what a changed method would."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import run

from fakebench.report.reference import key_numbers

REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "demo"

pytestmark = pytest.mark.slow  # the whole demo benchmark: several minutes


def _close(a, b, *, abs_tol: float, rel_tol: float = 0.0) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, abs_tol=abs_tol, rel_tol=rel_tol)


def test_the_committed_report_matches_its_own_numbers():
    numbers = json.loads((REFERENCE / "numbers.json").read_text())
    html = (REFERENCE / "index.html").read_text()
    assert "SYNTHETIC REFERENCE" in html
    for key, row in numbers["evaluation"].items():
        detector, generator, perturbation = key.split("/")
        if detector != "shortcut" and perturbation == "none" and row["auc"] is not None:
            assert f"{row['auc']:.2f}" in html, key
    assert all((REFERENCE / "figures").glob("*.png"))


def test_the_demo_config_regenerates_the_committed_numbers(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "-o", tmp_path / "demo", "--config", REFERENCE / "config.yaml")
    assert code == 0, err[-2000:]
    got, want = key_numbers(tmp_path / "demo" / "run"), json.loads((REFERENCE / "numbers.json").read_text())
    assert got["evaluation"].keys() == want["evaluation"].keys()
    for key, row in want["evaluation"].items():
        for name in ("n_real", "n_fake", "n_identities"):
            assert got["evaluation"][key][name] == row[name], (key, name)
        for name in ("auc", "eer", "ap"):
            assert _close(got["evaluation"][key][name], row[name], abs_tol=0.05), (key, name)
    assert got.get("per_emotion", {}).keys() == want.get("per_emotion", {}).keys()
    for key, row in want.get("per_emotion", {}).items():
        for name in ("n_real", "n_fake"):
            assert got["per_emotion"][key][name] == row[name], (key, name)
        assert _close(got["per_emotion"][key]["auc"], row["auc"], abs_tol=0.05), key
    for key, value in want.get("cross_generator", {}).items():
        assert _close(got["cross_generator"][key], value, abs_tol=0.05), key
    for key, value in want["metrics_mean"].items():
        assert _close(got["metrics_mean"][key], value, abs_tol=0.05, rel_tol=0.05), key
    for key, value in want["compare"].items():
        assert _close(got["compare"][key], value, abs_tol=0.01, rel_tol=0.1), key
    assert got["shortcut"]["found"] == want["shortcut"]["found"]
