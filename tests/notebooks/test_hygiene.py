"""Committed notebooks carry no outputs, have one `parameters` cell and quick-mode values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import NOTEBOOKS, PARAMS

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOK_FILES, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") for c in code), f"{path.name} has outputs; clear them before committing"
    assert all(c.get("execution_count") is None for c in code), f"{path.name} has execution counts"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_one_parameters_cell_first(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged 'parameters' (got {tagged})"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_quick_parameters_name_real_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    source = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    quick = json.loads((PARAMS / f"{path.stem}.json").read_text())
    for name in [*quick, "output_dir", "interactive"]:
        assert f"\n{name}:" in "\n" + source or f"\n{name} =" in "\n" + source, f"{path.name}: quick parameter {name!r} is not in its parameters cell"
