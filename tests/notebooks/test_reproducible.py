"""Same seed, same machine, same thread count: the same numbers (the README's promise, tested on one notebook).

Notebook 04's quick run (about 35 s) is executed a second time into another folder and every number of its
summary.json, timings excepted, must equal the first run's bit for bit. Across thread counts and CPUs the
numbers differ by rounding (oneDNN/BLAS reduction orders); how far is measured by ``scripts/margins.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import execute_quick

pytestmark = pytest.mark.notebook
STEM = "04_patashnik_2021_styleclip"


def _timing(key: str) -> bool:
    """A wall-clock measurement: seconds_total, edit_seconds, per_edit_s, step_with_Lm_s, duration…"""
    key = key.lower()
    return "second" in key or "duration" in key or key.endswith("_s")


def numbers(obj, path: str = "") -> dict[str, float]:
    """Every int/float/bool of a JSON tree by its path, timings and the environment left out."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if (path == "" and k in ("environment", "files")) or _timing(str(k)):
                continue
            out.update(numbers(v, f"{path}/{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(numbers(v, f"{path}[{i}]"))
    elif isinstance(obj, (int, float)):  # bool included
        out[path] = obj
    return out


def test_numbers_skips_timings_and_keeps_results() -> None:
    tree = {"seconds_total": 3.2, "environment": {"threads": 1}, "experiments": {"a": {"loss": [1.0, 0.5], "edit_seconds": 0.1, "ok": True}}}
    assert numbers(tree) == {"/experiments/a/loss[0]": 1.0, "/experiments/a/loss[1]": 0.5, "/experiments/a/ok": True}


def test_second_quick_run_gives_identical_numbers(executed_notebook, tmp_path: Path) -> None:
    first = json.loads((executed_notebook(STEM) / "summary.json").read_text())
    second = json.loads((execute_quick(STEM, tmp_path / "again") / "summary.json").read_text())
    assert first["environment"]["threads"] == second["environment"]["threads"]
    a, b = numbers(first), numbers(second)
    assert len(a) > 50 and a.keys() == b.keys()
    differ = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not differ, f"{len(differ)} of {len(a)} numbers differ between two runs with the same seed: {dict(list(differ.items())[:5])}"
