"""The browser harness's own logic, checked without a browser: notebook discovery and the pixel measure."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .conftest import NOTEBOOKS, widget_notebooks
from .test_widgets import changed_fraction


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_changed_fraction_counts_pixels_that_moved_more_than_8_levels() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3))
    b = a.copy()
    b[:10, :5, 1] = (b[:10, :5, 1] + 100) % 256  # 50 pixels change in one channel by ≥ 100 levels
    b[20, :, :] = np.clip(a[20, :, :] + 8, 0, 255)  # a row nudged by ≤ 8 levels: below the threshold
    desired = sum(int(np.abs(a[i, j] - b[i, j]).max() > 8) for i in range(40) for j in range(50)) / (40 * 50)
    assert changed_fraction(_png(a), _png(b)) == desired == 50 / 2000
    assert changed_fraction(_png(a), _png(a)) == 0.0


def test_changed_fraction_pads_a_resized_image_with_white() -> None:
    white = np.full((10, 10, 3), 255)
    grown = np.full((10, 20, 3), 255)
    grown[:, 10:] = 0  # the new half is black: half of the padded comparison differs
    assert changed_fraction(_png(white), _png(grown)) == 0.5
    assert changed_fraction(_png(grown), _png(white)) == 0.5


def test_discovery_takes_notebooks_with_params_and_ipywidgets(tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    (tmp_path / "params").mkdir()
    for stem, code, has_params in [("a_widget", "import ipywidgets as w", True), ("b_plain", "x = 1", True),
                                   ("c_no_params", "import ipywidgets", False)]:
        nb = {"cells": [{"cell_type": "markdown", "source": ["ipywidgets in prose only"]},
                        {"cell_type": "code", "source": [code]}]}
        (tmp_path / "nb" / f"{stem}.ipynb").write_text(json.dumps(nb))
        if has_params:
            (tmp_path / "params" / f"{stem}.json").write_text("{}")
    assert widget_notebooks(tmp_path / "nb", tmp_path / "params") == ["a_widget"]


def test_every_committed_ablation_widget_is_browser_tested() -> None:
    found = widget_notebooks()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        if "ablation_view(" in code:
            assert path.stem in found, f"{path.name} builds an ablation widget but the browser tests would not open it"
