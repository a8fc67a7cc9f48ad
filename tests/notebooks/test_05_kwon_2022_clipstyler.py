"""What the quick-mode run of notebook 05 (CLIPstyler) wrote: summary, figures, ablation sweep, fast variant."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from stylecore.clipstyler import ABLATIONS

from .conftest import quick_parameters

STEM = "05_kwon_2022_clipstyler"


@pytest.fixture(scope="module")
def out(executed_notebook):
    return executed_notebook(STEM)


@pytest.fixture(scope="module")
def summary(out) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_summary_records_parameters_and_labelled_weights(summary) -> None:
    quick = quick_parameters(STEM)
    for k in ("image_size", "n_patches", "iterations", "clip_model"):
        assert summary["parameters"][k] == quick[k]
    assert set(summary["weights"]) == {"clip", "vgg19"}
    assert all("RANDOM" in w["label"] for w in summary["weights"].values())  # quick mode runs offline with random weights
    hp = summary["hyper_parameters"]
    assert (hp["lambda_dir"], hp["lambda_patch"], hp["lambda_c"], hp["lambda_tv"]) == (500.0, 9000.0, 150.0, 2e-3)


def test_figures_written(out, summary) -> None:
    for name in ("patches_augmentation", "fig3_prompts", "loss_curves", "fig6_ablation_grid", "ablation_loss_curves", "fig8_fast_variant", "fast_loss_curves"):
        assert (out / f"{name}.png").stat().st_size > 5_000, name
        assert f"{name}.png" in summary["files"]


def test_prompt_runs_decrease_total_loss_and_halve_lr(summary) -> None:
    quick = quick_parameters(STEM)
    for text in quick["prompts"]:
        rec = summary["experiments"][f"prompt: {text}"]
        assert rec["final"]["total"] < rec["first_total"], text
        assert rec["lr_first"] == 5e-4 and rec["lr_last"] == 2.5e-4  # StepLR halved the rate once


def test_ablation_sweep_produces_its_grid(out, summary) -> None:
    quick = quick_parameters(STEM)
    letters = quick.get("ablations", list(ABLATIONS))
    for letter in letters:
        ab = ABLATIONS[letter]
        rec = summary["experiments"][f"ablation {ab.title}"]
        assert ("dir" in rec["final"]) == ab.use_dir and ("patch" in rec["final"]) == ab.use_patch
        assert (out / f"ablation_{letter}.png").exists()
    assert summary["ablation_grid"] == {x: "this run" for x in letters}
    grid = Image.open(out / "fig6_ablation_grid.png")
    assert grid.width > grid.height * 2  # one row: content + one column per setting


def test_fast_variant_stylises_a_high_resolution_image(out, summary) -> None:
    rec = summary["experiments"]["fast variant"]
    quick = quick_parameters(STEM)
    assert max(rec["hires_shape"][-2:]) > quick["image_size"] * 2
    img = Image.open(out / "fast_hires.png")
    assert (img.height, img.width) == tuple(rec["hires_shape"][-2:])
    assert set(rec["final"]) == {"total", "content", "patch", "dir", "tv"}
