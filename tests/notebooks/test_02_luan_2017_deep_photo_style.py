"""What the quick run of notebook 02 (Deep Photo Style Transfer) wrote."""

import json

import pytest

from .margins import check

STEM = "02_luan_2017_deep_photo_style"


@pytest.fixture(scope="module")
def summary(executed_notebook):
    folder = executed_notebook(STEM)
    return folder, json.loads((folder / "summary.json").read_text())


def test_figures_written(summary):
    folder, s = summary
    for name in ["fig3_lambda_sweep", "fig3_lambda_numbers", "fig4_gatys_vs_deep_photo_masks", "fig5_baselines",
                 "failure_case", "masks_main_pair", "automatic_masks", "stage2_losses", "main_stage1", "main_final",
                 "postprocess_main", "colour_transfer"]:
        assert (folder / f"{name}.png").stat().st_size > 1000, name
    for n in s["parameters"]["paper_pairs"]:
        assert (folder / f"paper_pair{n}.png").exists()
    assert set(s["files"]) == {p.name for p in folder.glob("*.png")}


def test_lambda_sweep_is_monotone(summary):
    # issue 20: pr[0] > 100 pr[-1] failed at 99.34 on another CPU. The quick sweep is λ = 0, 1, 100 (steps of 100x: λ = 0.01
    # moved L_m by 3-6 %, λ = 1e4 by 5-23 % after 8 L-BFGS steps), the trend asserted step by step, and the overall fall
    # asserted at 10^0.5 (measured 50-99x; ranges beside the thresholds: tests/notebooks/margins.py, scripts/margins.py)
    _, s = summary
    sweep = s["experiments"]["fig3_lambda_sweep"]
    pr, ss = sweep["photorealism_per_pixel"], sweep["structure_ssim"]
    assert sweep["lambdas"] == sorted(sweep["lambdas"]) and len(pr) == len(sweep["lambdas"]) >= 3
    check(STEM, "λ sweep: photorealism min log10 step", s)  # photorealism term per pixel falls with λ
    check(STEM, "λ sweep: structure SSIM min step", s)  # structure score rises with λ
    check(STEM, "λ sweep: photorealism log10(first/last)", s)  # not a rounding-level trend
    assert sweep["photorealism_decreasing"] and sweep["structure_increasing"]


def test_matting_term_lowers_photorealism_cost_vs_stage1_and_gatys(summary):
    _, s = summary
    e = s["experiments"]
    check(STEM, "deep photo / stage 1 photorealism", s)
    check(STEM, "paper pairs: max ours/stage1 photorealism", s)
    for n in s["parameters"]["paper_pairs"]:
        assert e["paper_pairs"][f"pair{n}"]["labels"], f"pair {n}: no shared mask label"
    assert set(e["fig5_baselines"]) == {"Reinhard 2001", "Pitié 2007", "Gatys 2016", "Deep Photo (ours)", "Deep Photo (ours) + post-process"}


def test_quick_run_moves_colours_most_of_the_way_to_the_style_per_region(summary):
    # issue 8: quick mode must visibly stylise. Every label covering >= 10 % of the content: its Lab mean/std moved
    # at least halfway from the content region's to the style region's (dpst.colour_transfer_progress)
    _, s = summary
    c = s["experiments"]["colour_transfer"]
    big = [n for n, f in c["area_fraction"].items() if f >= 0.1 and n in c["postprocessed"]]
    assert big, c
    check(STEM, "colour transfer: min progress (stage 2, post)", s)
    check(STEM, "paper pairs: min mean colour progress", s)


def test_post_process_makes_the_output_locally_affine(summary):
    # SmoothLocalAffine's output is a smoothed affine map of the content in every window: lower L_m per pixel and
    # content edges kept better than the stage-2 output it started from (quick run: 31 % and 43 % lower L_m)
    _, s = summary
    check(STEM, "post-process: max post/ours photorealism", s)
    check(STEM, "post-process: min SSIM gain", s)
    assert s["parameters"]["label_weighting"] == "area"


def test_weights_and_memory_recorded(summary):
    _, s = summary
    assert s["weights"]["vgg19"]["pretrained"] is False and "RANDOM" in s["weights"]["vgg19"]["label"]
    speed = s["experiments"]["memory_and_speed"]
    assert speed["laplacian_nnz"] > 0 and speed["step_with_Lm_s"] > 0 and speed["step_without_Lm_s"] > 0
    # the quick parameters ask for more than the memory budget allows: the cap must kick in and say so
    assert s["size_cap"]["used"] < s["size_cap"]["requested"] and "capped" in s["size_cap"]["message"]
    assert max(speed["size"]) == s["size_cap"]["used"]
    assert speed["estimated_memory_mb"] <= s["parameters"]["memory_budget_mb"]
