"""Notebook 01 executed headless in quick mode: figures written, losses fell, weights recorded."""

from __future__ import annotations

import json

import pytest

from .conftest import quick_parameters
from .margins import check

STEM = "01_gatys_2016_neural_style"
FIGURES = [
    "fig1_content_reconstructions", "fig1_style_reconstructions", "fig3_paintings", "fig3_losses", "fig4_ratio_layer_grid",
    "fig5_content_layer", "fig6_initialisation", "fig7_photorealistic", "optimizers", "presets", "offline_balance",
]

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def summary(executed_notebook) -> dict:
    out = executed_notebook(STEM)
    return json.loads((out / "summary.json").read_text()) | {"_folder": out}


def test_every_figure_written(summary: dict) -> None:
    for name in FIGURES:
        path = summary["_folder"] / f"{name}.png"
        assert path.exists() and path.stat().st_size > 5_000, name
        assert f"{name}.png" in summary["files"]


def test_total_loss_fell_in_every_run(summary: dict) -> None:
    exps = summary["experiments"]
    assert len(exps) >= 15
    for name, rec in exps.items():
        if "initial" not in rec:  # not an optimisation run (e.g. offline_balance)
            continue
        assert rec["final"]["total"] < rec["initial"], f"{name}: total loss did not fall ({rec['initial']} -> {rec['final']['total']})"
    # Fig. 3 and the Fig. 6 noise start: the loss falls by a large factor, not a rounding error (thresholds and measured
    # ranges: tests/notebooks/margins.py, scripts/margins.py)
    check(STEM, "loss fell in every run: max final/initial", summary)
    check(STEM, "fig3 starry night: final/initial", summary)
    check(STEM, "fig6 noise start: final/initial", summary)


def test_ratio_grid_orders_content_loss(summary: dict) -> None:
    """A larger α/β must leave the result closer to the photo: the content term (weighted by α = 1) is lower at the grid's
    largest α/β than at its smallest, for each depth. Neighbouring ratios at the low end differ by < 1 % (the style term
    dominates both) and seed 1 reversed one such pair, so the trend is asserted over the grid's 100x range (margins.py)."""
    exps = summary["experiments"]
    for depth in (1, 5):
        assert len([k for k in exps if k.startswith(f"fig4_d{depth}_")]) == 3
    check(STEM, "fig4 content loss: log10 smallest/largest α/β", summary)


def test_weights_and_parameters_recorded(summary: dict) -> None:
    vgg = summary["weights"]["vgg19"]
    assert vgg["pretrained"] is False and "RANDOM" in vgg["label"] and vgg["seed"] == 0
    assert summary["parameters"]["image_size"] == quick_parameters(STEM)["image_size"]
    assert summary["seconds_total"] > 0


def test_quick_mode_visibly_stylises(summary: dict) -> None:
    """The colours arrive: the Fig. 3 results' colour statistics move most of the way to each painting's."""
    exps = summary["experiments"]
    moved = {k: rec["color_moved"] for k, rec in exps.items() if k.startswith("fig3_")}
    assert len(moved) == 3
    check(STEM, "fig3 colour moved: min", summary)
    check(STEM, "fig7 photoreal colour moved", summary)


def test_offline_balance_is_measured_and_supports_the_offline_default(summary: dict) -> None:
    """The departure α/β 1e-6 offline is justified by numbers the run wrote, not by eye."""
    rec = summary["experiments"]["offline_balance"]
    moved = rec["color_moved"]
    assert len(moved) == 3
    offline = next(v for k, v in moved.items() if k.startswith("raw random VGG, offline"))
    assert offline == max(moved.values()), moved
    check(STEM, "offline balance: offline colour moved", summary)
    # r_l, measured: the raw random network is not in the paper's scale (r = 1), and the gap shrinks with depth
    r = rec["r_l"]
    assert all(v > 0 for v in r.values()) and max(abs(v - 1) for v in r.values()) > 0.5
    assert r["relu5_1"] < r["relu3_1"] < r["relu1_1"]
