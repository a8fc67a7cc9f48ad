"""What the quick-mode run of notebook 06 (StyO) wrote: prompts and token ids, IDL losses, FCC effects, the grid."""

from __future__ import annotations

import pytest
from transformers import CLIPTokenizer

from stylecore.nets.ldm import write_clip_tokenizer

from .conftest import quick_parameters
from .margins import check

STEM = "06_li_2023_styo"


def test_offline_run_is_labelled_and_says_so_on_screen(out, summary) -> None:
    assert summary["weights"]["ldm"]["pretrained"] is False and "RANDOM" in summary["weights"]["ldm"]["label"]
    text = (out.parent / f"{STEM}.ipynb").read_text()
    assert "checks the wiring of StyO" in text and "not the paper's pictures" in text
    assert "Stand-in auxiliary set" in text


def test_prompts_and_token_ids_are_clips(summary, tmp_path) -> None:
    tok = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path))
    prompts = summary["prompts"]
    assert prompts["stylised"]["text"] == "a drawing with aug not ak47 style of sks not m4a1 portrait"
    for kind, rec in prompts.items():
        assert rec["token_ids"] == tok(rec["text"], add_special_tokens=False).input_ids, kind
    sty = prompts["stylised"]
    assert sty["content_indices"] == list(range(11, 18))
    assert [sty["token_ids"][i - 1] for i in sty["content_indices"]] == [48136, 783, 332, 275, 320, 272, 5352]  # sks not m 4 a 1 portrait
    assert prompts["aux"]["content_indices"] == [11]


def test_training_prompts_are_augmented_and_the_branches_line_up(summary) -> None:
    """The review of arXiv v2: the source image is trained on the augmented prompt (n_s, n_c), the target's reversed."""
    quick = quick_parameters(STEM)
    n_s, n_c = quick["n_s"], quick["n_c"]
    assert summary["parameters"]["augment_training"] is True
    train = summary["training_prompts"]
    assert train["source"] == "a drawing with " + " ".join(["ak47 not aug"] * n_s) + " style of " + " ".join(["sks not m4a1"] * n_c) + " portrait"
    assert train["target"] == "a drawing with " + " ".join(["aug not ak47"] * n_s) + " style of " + " ".join(["m4a1 not sks"] * n_c) + " portrait"
    assert train["aux"] == "a drawing with ak47 not aug style of portrait"
    fig2 = summary["experiments"]["fig2"]
    assert fig2["source_prompt"] == train["source"]  # the source branch is the prompt the source image was trained on
    ids = fig2["content_token_ids"]
    assert ids["source"] == ids["stylised"] and len(ids["source"]) == 6 * n_c + 1  # FCC copies columns of the same words
    assert fig2["content_indices"]["source"] == fig2["content_indices"]["stylised"]  # negator pairs: same lengths, same positions
    src = summary["settings_sources"]
    assert "2303.03231v2" in src["lr"]["source"] and src["lr"]["value"] == 1e-6
    assert src["inject_fraction"]["source"].startswith("not stated in any reachable source")


def test_idl_loss_is_the_triple_sum_and_the_fit_improves(summary) -> None:
    quick = quick_parameters(STEM)
    rec = summary["experiments"]["idl"]
    hist = rec["history"]
    assert len(hist["total"]) == quick["idl_steps"]
    for i in (0, len(hist["total"]) - 1):
        assert hist["total"][i] == pytest.approx(hist["source"][i] + hist["target"][i] + hist["aux"][i], rel=1e-5)
    assert set(rec["fit_after"]) >= {"source", "target"}
    check(STEM, "IDL fit after/before: max (source, target)", summary)


def test_fig4_ablations_train_what_they_say(summary) -> None:
    exps = summary["experiments"]
    assert exps["fig4 w/o auxiliary set"]["terms"] == ["source", "target", "total"]
    assert exps["fig4 StyO"]["terms"] == ["aux", "source", "target", "total"]
    assert " not " not in exps["fig4 positive-only prompts"]["prompt"]
    assert exps["fig4 StyO"]["prompt"].count("aug not ak47") == quick_parameters(STEM)["n_s"]


def test_fcc_injects_source_maps_and_the_fraction_switches_it(summary) -> None:
    exps = summary["experiments"]
    maps = exps["attention maps"]
    assert maps["inject_fraction"] == 1.0 and maps["max_diff_to_source_with_fcc"] == 0.0  # injected at every step
    check(STEM, "attention: log10 max diff without FCC", summary)
    frac = exps["injection fraction"]
    assert frac["distances"]["0.0"] == frac["distance_fcc_off"]  # no step injected = FCC off
    assert frac["distances"]["1.0"] == exps["fig2"]["distance_with_fcc"] != exps["fig2"]["distance_without_fcc"]
    assert exps["fig5 FCC on"]["seeds"] == quick_parameters(STEM)["n_seeds"] and exps["fig5 FCC off"]["diversity"] > 0


def test_grid_prompt_lengths_follow_n_s_and_n_c(summary) -> None:
    for n_s in quick_parameters(STEM)["grid_values"]:
        for n_c in quick_parameters(STEM)["grid_values"]:
            rec = summary["experiments"][f"grid n_s={n_s} n_c={n_c}"]
            # "a drawing with" 3 + style pair 5 per repetition + "style of" 2 + content pair 6 per repetition + "portrait" 1
            assert rec["n_tokens"] == 6 + 5 * n_s + 6 * n_c
            assert rec["n_content_indices"] == 6 * n_c + 1


def test_figures_checkpoints_and_timing_written(out, summary) -> None:
    for name in ("inputs", "idl_loss", "fig2_fcc", "fig4_prompt_ablation", "fig4_losses", "fig5_fcc_seeds", "grid_ns_nc", "attention_maps"):
        assert (out / f"{name}.png").stat().st_size > 5_000, name
        assert f"{name}.png" in summary["files"]
    assert len(list((out / "checkpoints").glob("idl-*.pt"))) == 3  # StyO + two ablations, each resumable
    t = summary["experiments"]["time per style"]
    assert t["idl_seconds"] > 0 and t["sample_seconds"] > 0 and t["paper"] == "about 10 minutes on one GPU"


def test_the_fcc_source_branch_starts_from_the_photo_by_default(summary) -> None:
    """DDIM inversion of the source photo (issue 22); the generated branch's numbers stay beside as before."""
    quick = quick_parameters(STEM)
    assert "source_branch" not in quick and summary["parameters"]["source_branch"] == "inversion"
    rec = summary["experiments"]["source reconstruction"]
    errs = [rec["inversion_latent_errors"][k] for k in sorted(rec["inversion_latent_errors"], key=int)]
    assert [int(k) for k in sorted(rec["inversion_latent_errors"], key=int)] == [2, 4, 8] == sorted({quick["sample_steps"] // 4, quick["sample_steps"] // 2, quick["sample_steps"]})
    # Relative latent error of inversion then sampling back, 2, 4, 8 steps (OMP_NUM_THREADS=1 and 2 / seed 1):
    # 7.64 / 10.1, 2.83 / 3.60, 1.81 / 2.32; ratios 0.370 / 0.357 and 0.642 / 0.645 (spread 0.013): each below 0.8.
    assert all(b < 0.8 * a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 4.0, errs  # 1.81 / 2.32 (spread 0.51)
    # FCC and the stylised prompt leave the source branch alone: Fig. 2's source branch is that unguided reconstruction
    assert rec["latent_error"] == pytest.approx(rec["inversion_latent_errors"][str(quick["sample_steps"])], rel=1e-3)
    # Offline the random VAE dominates any distance to the photo: the branch sits at the VAE's own floor |D(E(x)) - x|
    # (0.2911 vs 0.2944 / 0.2834 vs 0.2809 at seed 1; differences 0.0033 / 0.0025)
    assert abs(rec["source_to_photo"] - rec["vae_floor"]) < 0.015, rec


def test_distances_to_the_photo_are_reported_beside_the_earlier_numbers(summary) -> None:
    exps = summary["experiments"]
    quick = quick_parameters(STEM)
    fig2 = exps["fig2"]
    grid_cell = exps[f"grid n_s={quick['n_s']} n_c={quick['n_c']}"]
    assert fig2["with_fcc"]["to_photo"] == grid_cell["to_photo"] == exps["fig5 FCC on"]["photo_branch"]["to_photo"]  # the same inputs, bit for bit
    assert fig2["without_fcc"]["to_photo"] == exps["fig5 FCC off"]["photo_branch"]["to_photo"]
    for k in ("off", "on"):
        photo = exps[f"fig5 FCC {k}"]["photo_branch"]
        assert photo["runs"] == 1 and photo["diversity"] == 0.0  # DDIM inversion is deterministic: the seed plays no part
        assert exps[f"fig5 FCC {k}"]["diversity"] > 0 and "fidelity_distance" in exps[f"fig5 FCC {k}"]  # the generated branch, as before
    cells = [exps[f"grid n_s={a} n_c={b}"] for a in quick["grid_values"] for b in quick["grid_values"]]
    for rec in [fig2["with_fcc"], fig2["without_fcc"], *cells]:
        # measured 0.275-0.294 over OMP_NUM_THREADS=1, 2 and seed 1 (spread 0.019); structure 0.060-0.085 (spread 0.025)
        assert 0.21 < rec["to_photo"] < 0.35, rec
        assert rec["structure_to_photo"] < 0.16, rec  # offline the outputs keep none of the photo's edges (random VAE)
    assert all({"distance", "to_photo"} <= set(c["generated"]) for c in cells)
    src = summary["settings_sources"]
    assert src["augment_training"]["value"] is True and src["augment_training_other_reading"]["source"].startswith("arXiv 2303.03231 abstract")


def test_verdicts_follow_from_the_numbers_by_the_stated_rules(out, summary) -> None:
    """Each claim's printed verdict is the rule stated in the notebook, recomputed here from the numbers it wrote."""
    exps, verdicts = summary["experiments"], summary["verdicts"]
    pretrained = summary["weights"]["ldm"]["pretrained"]
    quick = quick_parameters(STEM)

    def expected(evaluable: bool, holds: bool) -> str:
        return ("reproduced" if holds else "not reproduced") if evaluable else "not evaluable"

    # Fig. 2: with FCC closer to the photo on both measures; evaluable with real weights and a source branch that keeps S >= 0.5
    on, off = exps["fig2"]["with_fcc"], exps["fig2"]["without_fcc"]
    closer = on["to_photo"] < off["to_photo"] and on["structure_to_photo"] > off["structure_to_photo"]
    v = verdicts["fig2"]
    assert v["s_min"] == 0.5 and v["holds"] == closer and v["reference"] == "photo"
    assert v["verdict"].startswith(expected(pretrained and on["source_structure_to_photo"] >= v["s_min"], closer)), v
    # Fig. 5: diversity larger with FCC off and fidelity distance smaller with FCC on (generated branch, over seeds)
    f_on, f_off = exps["fig5 FCC on"], exps["fig5 FCC off"]
    holds5 = f_off["diversity"] > f_on["diversity"] and f_on["fidelity_distance"] < f_off["fidelity_distance"]
    assert verdicts["fig5"]["holds"] == holds5 and verdicts["fig5"]["verdict"].startswith(expected(pretrained, holds5))
    # the grid: mean d_photo rises strictly with n_s and falls strictly with n_c
    g = quick["grid_values"]
    for axis, name, sign in ((0, "n_s", 1), (1, "n_c", -1)):
        means = [sum(exps[f"grid n_s={a} n_c={b}"]["to_photo"] for a in g for b in g if (a, b)[axis] == val) / len(g) for val in g]
        holds = all(sign * (b - a) > 0 for a, b in zip(means, means[1:]))
        rec = verdicts[f"grid {name}"]
        assert rec["means"] == pytest.approx(means, rel=1e-12) and rec["holds"] == holds
        assert rec["verdict"].startswith(expected(pretrained and len(g) >= 2, holds)), rec
    assert verdicts["fig4"]["verdict"].startswith("not evaluable") and verdicts["fig4"]["evaluable"] is False
    # offline (random weights) nothing is "reproduced"
    assert not pretrained and all(not r["verdict"].startswith(("reproduced", "not reproduced")) for k, r in verdicts.items() if k != "m_star_equals_source")
    # M* = M_src: exact at full injection, and the maps differ without FCC
    maps = exps["attention maps"]
    assert verdicts["m_star_equals_source"]["holds"] == (maps["max_diff_at_full_injection"] == 0.0 and maps["max_diff_to_source_without_fcc"] > 0)
    assert verdicts["m_star_equals_source"]["verdict"] == "holds"
    # on screen, not only in summary.json
    text = (out.parent / f"{STEM}.ipynb").read_text()
    for label in ("Verdict (Fig. 2)", "Verdict (Fig. 4)", "Verdict (Fig. 5)", "Verdict (grid, n_s)", "Verdict (grid, n_c)", "M* = M_src on the content indices"):
        assert label in text, label

