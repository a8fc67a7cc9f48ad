"""What the quick-mode run of notebook 03 (Dumoulin et al. 2017) wrote: figures, losses, artefact measure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STEM = "03_dumoulin_2017_conditional_instance_norm"
FIGURES = [
    "fig5_n_style_vs_single_losses",
    "fig5_n_style_vs_single_images",
    "fig6_new_style_losses",
    "fig6_new_style_images",
    "fig7_interpolation_grid",
    "fig7_interpolation_style_loss",
    "checkerboard_ablation",
]


@pytest.fixture(scope="module")
def summary(executed_notebook) -> tuple[Path, dict]:
    out = executed_notebook(STEM)
    return out, json.loads((out / "summary.json").read_text())


def test_figures_written_and_listed(summary) -> None:
    out, s = summary
    for name in FIGURES:
        path = out / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 5_000, name
        assert f"{name}.png" in s["files"]


def test_weights_recorded_and_labelled(summary) -> None:
    _, s = summary
    vgg = s["weights"]["vgg19_loss_network"]
    assert ("RANDOM" in vgg["label"]) != vgg["pretrained"]
    assert vgg["label"] in s["weights"]["cin_networks"]["label"]


def test_training_lowered_the_style_loss(summary) -> None:
    _, s = summary
    fig5 = s["experiments"]["fig5_n_style_vs_single"]
    assert fig5["steps_multi"] == len(s["parameters"]["styles"]) * s["parameters"]["steps_per_style"]
    for style, rec in fig5["final_smoothed"].items():
        assert rec["n_style"]["style"] < rec["first_style_loss"], style
    fig6 = s["experiments"]["fig6_new_style"]
    assert fig6["final"]["gamma_beta_only"]["style"] < fig6["first_style_loss"]["gamma_beta_only"]
    assert fig6["trained_parameters"]["gamma_beta_only"] < 0.01 * fig6["trained_parameters"]["from_scratch"]


def test_interpolation_moves_from_first_style_to_second(summary) -> None:
    _, s = summary
    for pair, d in s["experiments"]["fig7_interpolation"]["style_losses"].items():
        assert d["to_first"][0] < d["to_first"][-1], pair
        assert d["to_second"][-1] < d["to_second"][0], pair


def test_transposed_convolutions_make_checkerboards(summary) -> None:
    _, s = summary
    e = s["experiments"]["checkerboard_ablation"]["energy"]
    assert set(e) == {"reflect/nearest", "reflect/transposed", "zeros/nearest", "zeros/transposed"}
    assert e["reflect/transposed"] > 10 * e["reflect/nearest"]
    assert e["zeros/transposed"] > 10 * e["zeros/nearest"]
