"""What the quick-mode run of notebook 05 (CLIPstyler) wrote: each experiment's numbers, as its definition says they must be."""

from __future__ import annotations

import pytest
from PIL import Image

from stylecore.clipstyler.training import ABLATIONS, AUTHORS_CODE, PRESETS, step_decay, with_overrides

from .conftest import quick_parameters
from .margins import check

STEM = "05_kwon_2022_clipstyler"


def _exp(summary: dict, name: str) -> dict:
    return summary["experiments"][name]


def test_summary_records_parameters_and_labelled_weights(summary) -> None:
    quick = quick_parameters(STEM)
    for k in ("image_size", "n_patches", "iterations", "clip_model", "widget_taus", "widget_ns"):
        assert summary["parameters"][k] == quick[k]
    assert set(summary["weights"]) == {"clip", "vgg19", "adain_vgg", "adain_decoder"}
    assert all("RANDOM" in w["label"] for w in summary["weights"].values())  # quick mode runs offline with random weights
    hp = summary["hyper_parameters"]
    assert (hp["lambda_dir"], hp["lambda_patch"], hp["lambda_c"], hp["lambda_tv"]) == (500.0, 9000.0, 150.0, 2e-3)
    assert hp["content_layers"] == ["relu4_2", "relu5_2"] and hp["pooling"] == "max" and hp["preset"] == "authors_code"
    assert (hp["lr_offset"], hp["strict_rejection"], hp["ensemble"]) == (1, True, "unnormalised_mean")
    assert summary["prompt_ensembling"]["templates"] == 79 and summary["prompt_ensembling"]["cos_authors_vs_clip_paper"] < 1
    assert hp["source_text"] == "a Photo"  # source_text="" keeps the preset's own t_src (official code)


def test_paper_and_code_differences_are_shown(summary) -> None:
    assert summary["paper_vs_code"] == {"lr_offset": [0, 1], "strict_rejection": [False, True], "source_text": ["Photo", "a Photo"]}
    t_src = summary["t_src"]
    assert (t_src["paper"], t_src["authors_code"]) == ("Photo", "a Photo") and t_src["cos_delta_T"] < 1 - 1e-6
    assert t_src["L_dir"]["paper 'Photo'"] != t_src["L_dir"]["code 'a Photo'"]
    rej = summary["rejection_at_tau"]  # τ set to one crop's own loss: Eq. 3 (≤) zeroes it, the code (<) keeps it
    assert rej["crops_at_tau"] >= 1 and rej["zeroed_paper_le"] - rej["zeroed_code_lt"] == rej["crops_at_tau"]
    # crops into CLIP as train_CLIPstyler.py's augment (issue 21): zero-padded warp (torchvision 0.8.2), bilinear Resize
    assert summary["crop_conventions"] == {name: {"crop_resize": "bilinear", "perspective_fill": "zeros"} for name in ("paper", "authors_code", "review_values")}


def test_figures_written(out, summary) -> None:
    names = ("patches_augmentation", "texts_one_content", "loss_curves", "global_vs_directional", "presets_grid", "fig6_ablation_grid",
             "ablation_loss_curves", "tau_n_grid", "fig7_alternatives", "fast_variant", "fast_loss_curves")  # fmt: skip
    for name in names:
        assert (out / f"{name}.png").stat().st_size > 5_000, name
        assert f"{name}.png" in summary["files"]


def test_prompt_runs_decrease_total_loss_with_the_official_lr_schedule(summary) -> None:
    quick = quick_parameters(STEM)
    hp = with_overrides(AUTHORS_CODE, lr_step=quick["lr_step"])
    for text in quick["prompts"]:
        rec = _exp(summary, f"prompt: {text}")
        assert rec["lr_first"] == 5e-4 and rec["lr_last"] == pytest.approx(hp.lr * step_decay(hp)(quick["iterations"] - 1))
        assert rec["lr_last"] == pytest.approx(5e-4 / 4)  # scheduler-first order: halved after 5 and 11 of 12 iterations


def test_prompt_runs_lower_the_loss(summary) -> None:
    check(STEM, "prompt runs: max final/first total", summary)


def test_global_and_directional_training_differ_only_by_the_objective(summary) -> None:
    glob, direc = _exp(summary, "training loss: global (Eq. 1)"), _exp(summary, "training loss: directional (Eq. 2-3)")
    assert glob["steps"] == direc["steps"] == quick_parameters(STEM)["ablation_iterations"]
    assert set(glob["final"]) == set(direc["final"]) == {"total", "content", "patch", "dir", "tv"}
    assert glob["first_total"] != direc["first_total"]  # same net, seed and crops: only the CLIP objective differs
    assert 0 <= glob["l_global_of_output"] <= 2 and 0 <= direc["l_dir_of_output"] <= 2


def test_presets_run_with_their_own_weights(summary) -> None:
    for name in quick_parameters(STEM)["compare_presets"]:
        p, rec = PRESETS[name], _exp(summary, f"preset {name}")
        assert rec["lambdas"] == [p.lambda_dir, p.lambda_patch, p.lambda_c, p.lambda_tv] and rec["source"] == p.source
        assert rec["final"]["content"] == pytest.approx(rec["content_of_output"] * p.lambda_c, rel=1e-6)
    review, paper = _exp(summary, "preset review_values"), _exp(summary, "preset paper")
    assert review["first_total"] > 0 and paper["first_total"] > 0
    check(STEM, "review/paper first total: log10", summary)  # λs ~1000× smaller: the same first step weighs far less


def test_each_ablation_acts_as_its_definition_says(out, summary) -> None:
    quick = quick_parameters(STEM)
    letters = quick.get("ablations", list(ABLATIONS))
    tol = 1e-2  # λ_p = 9000: float32 rounding of the weighted terms
    for letter in letters:
        ab = ABLATIONS[letter]
        rec = _exp(summary, f"ablation {ab.title}")
        assert ("dir" in rec["final"]) == ab.use_dir and ("patch" in rec["final"]) == ab.use_patch, letter
        assert (out / f"ablation_{letter}.png").exists()
        if not ab.use_patch:
            assert rec["rejected_total"] is None and rec["aug_change_mean"] is None
            continue
        gaps = rec["patch_minus_unrejected"]
        assert len(gaps) == quick["ablation_iterations"]
        if ab.rejection:  # R only removes crops: the term is never above the unrejected mean (all letters: margins.py)
            assert max(gaps) <= check(STEM, "rejection: max patch - unrejected", summary) <= tol, letter
        else:  # (c): nothing rejected, the term is the plain mean
            assert rec["rejected_total"] == 0 and all(abs(g) <= tol for g in gaps)
        if ab.augmentation == "none":  # (d): CLIP saw the raw crops
            assert rec["aug_change_mean"] == 0.0
        else:
            assert rec["aug_change_mean"] >= check(STEM, "augmentation: min change", summary), letter
    assert summary["ablation_grid"] == {x: "this run" for x in letters}
    grid = Image.open(out / "fig6_ablation_grid.png")
    assert grid.width > grid.height * 2  # one row: content + one column per setting


def test_widget_answers_from_precomputed_tau_n_runs(summary) -> None:
    quick = quick_parameters(STEM)
    w = summary["widget"]
    assert w["cached_runs"] >= len(quick["widget_taus"]) * len(quick["widget_ns"])
    assert w["render_seconds_max"] < 2.0  # one slider move
    for n in quick["widget_ns"]:
        zero = _exp(summary, f"widget tau=0 n={n}")
        assert zero["rejected_total"] == 0 and all(abs(g) <= 1e-2 for g in zero["patch_minus_unrejected"])  # τ = 0 rejects nothing (l ≥ 0)
    a, b = (_exp(summary, f"widget tau=0 n={n}") for n in quick["widget_ns"][:2])
    assert a["first_total"] != b["first_total"]  # n changes the crops


def test_fig7_alternatives_train_what_they_say(summary) -> None:
    pixels, code = _exp(summary, "fig7 pixel optimisation"), _exp(summary, "fig7 AdaIN code")
    assert code["trained"] == ["mean", "std"]
    for rec in (pixels, code):
        assert set(rec["final"]) == {"total", "content", "patch", "dir", "tv"} and rec["steps"] == quick_parameters(STEM)["ablation_iterations"]
    assert pixels["first_terms"]["content"] == 0.0  # pixel optimisation starts at I_c itself
    assert code["first_terms"]["content"] > 0  # the AdaIN code starts at D(E(I_c)), not at I_c


def test_fast_variant_loss_falls_with_the_official_schedule(out, summary) -> None:
    rec = _exp(summary, "fast variant")
    quick = quick_parameters(STEM)
    check(STEM, "fast variant: last/first third", summary)
    assert rec["lr_first"] == 1e-4 and rec["lr_last"] == pytest.approx(1e-4 / (1 + 5e-5 * (quick["fast_iterations"] - 1)))
    assert rec["clip_images_per_step"] == quick["fast_batch"] * (quick["fast_draws"] + 1)
    hp = rec["hyper_parameters"]
    assert (hp["lambda_c"], hp["lambda_patch"], hp["lambda_dir"], hp["lambda_tv"], hp["n_draws"]) == (1.0, 10.0, 1.0, 1e-4, 16)
    assert rec["preset"] == "authors_code" and (hp["strict_rejection"], hp["source_text"]) == (True, "a Photo")  # train_fast.py
    assert rec["paper_claims"]["forward_seconds_max"] == 0.5 and rec["forward_seconds"] > 0
    assert max(rec["hires_shape"][-2:]) > quick["image_size"] * 2
    img = Image.open(out / "fast_hires.png")
    assert (img.height, img.width) == tuple(rec["hires_shape"][-2:])
    assert set(rec["final"]) == {"total", "content", "patch", "dir", "tv"}


def test_quick_run_used_one_thread_as_a_sweep_worker_does(summary) -> None:
    # issue 25: the inline checks must hold with one thread (conftest.KERNEL_ENV), where a 2-worker sweep runs each run
    assert summary["environment"]["threads"] == 1


def test_ablation_evidence_column_is_recomputed_from_the_recorded_numbers(summary) -> None:
    # issue 24: the "acts as defined" column of section 8's table, recomputed here the obvious way from each run's record
    letters = quick_parameters(STEM).get("ablations", list(ABLATIONS))
    evidence = summary["ablation_evidence"]
    assert sorted(evidence) == sorted(letters)
    for letter, row in evidence.items():
        ab, rec = ABLATIONS[letter], _exp(summary, f"ablation {ABLATIONS[letter].title}")
        assert 0 < row["tol"] <= 1e-2 and row["title"] == ab.title and row["terms"] == sorted(rec["final"])
        ok = [("dir" in rec["final"]) == ab.use_dir, ("patch" in rec["final"]) == ab.use_patch]
        if not ab.use_patch:
            ok.append(rec["rejected_total"] is None and rec["aug_change_mean"] is None)
        else:
            gaps = rec["patch_minus_unrejected"]
            ok.append(max(gaps) <= row["tol"] if ab.rejection else rec["rejected_total"] == 0 and max(abs(g) for g in gaps) <= row["tol"])
            ok.append(rec["aug_change_mean"] == 0.0 if ab.augmentation == "none" else rec["aug_change_mean"] > 0.0)
        assert row["acts_as_defined"] == all(ok) == all(row["checks"].values()), letter
        assert row["acts_as_defined"], (letter, row["checks"])
    assert summary["verdicts"]["fig6_mechanics"]["verdict"] == "reproduced"


def _word(holds: bool) -> str:
    return "reproduced" if holds else "not reproduced"


def test_every_computed_claim_ends_in_a_verdict_from_its_numbers(summary) -> None:
    quick, v = quick_parameters(STEM), summary["verdicts"]
    first_last = [(_exp(summary, f"prompt: {t}")["first_total"], _exp(summary, f"prompt: {t}")["final"]["total"]) for t in quick["prompts"]]
    assert v["prompt runs"]["verdict"] == _word(all(last < first for first, last in first_last))
    lc = {n: _exp(summary, f"preset {n}")["content_of_output"] for n in ("paper", "review_values")}
    assert v["review_values"]["verdict"] == _word(lc["review_values"] < lc["paper"])
    fast = _exp(summary, "fast variant")
    assert v["fast_training"]["verdict"] == _word(fast["total_last_third"] < fast["total_first_third"])
    # offline (random CLIP, random AdaIN, CPU, few steps): the numbers cannot show these claims
    for name in ("global_vs_dir", "fig6_pictures", "fig7_pixels", "fig7_adain", "fast_inference"):
        assert v[name]["verdict"] == "not evaluable" and v[name]["why_not"], name
    glob, direc = _exp(summary, "training loss: global (Eq. 1)"), _exp(summary, "training loss: directional (Eq. 2-3)")
    assert v["global_vs_dir"]["holds"] == (direc["content_of_output"] < glob["content_of_output"])
