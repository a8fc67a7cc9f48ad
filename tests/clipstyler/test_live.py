"""stylecore.clipstyler.live: notebook 05's run setup, live-view lookup, ablation evidence and verdicts."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from stylecore.clipstyler import live
from stylecore.clipstyler.training import ABLATIONS, AUTHORS_CODE, PAPER, REVIEW_VALUES, authors_postprocess


def test_with_lambdas_replaces_only_non_negative_values() -> None:
    hp = live.with_lambdas(REVIEW_VALUES, lambda_dir=7.0, lambda_c=0.0)
    assert (hp.lambda_dir, hp.lambda_patch, hp.lambda_c, hp.lambda_tv) == (7.0, 0.5, 0.0, 0.01)
    assert live.with_lambdas(PAPER) == PAPER  # all negative: the preset itself


@pytest.fixture
def image_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (50, 75, 3), dtype=np.uint8)).save(path)  # (H, W) = (50, 75)
    return str(path)


def test_load_content_square_and_longest(image_file) -> None:
    square = live.load_content(image_file, 40, "square")
    assert square.shape == (1, 3, 40, 40) and 0 <= float(square.min()) and float(square.max()) <= 1
    longest = live.load_content(image_file, 60, "longest")
    h, w = longest.shape[-2:]
    assert w <= 60 and w > 50 and h % 8 == 0 and w % 8 == 0  # aspect kept (60 × 40 before cropping), multiples of 8
    with pytest.raises(ValueError, match="resize"):
        live.load_content(image_file, 40, "crop")


def test_shown_is_the_authors_postprocess_and_raw_at_contrast_one() -> None:
    x = torch.rand(1, 3, 8, 8) * 1.2 - 0.1
    assert torch.equal(live.shown(x, 1.5), authors_postprocess(x, 1.5, minmax=True))
    assert torch.equal(live.shown(x, 1.0), authors_postprocess(x, 1.0, minmax=False))
    y = live.shown(x, 1.5)
    assert float(y.min()) == pytest.approx(0.0) and float(y.max()) == pytest.approx(1.0)


def test_nearest_cached_prefers_the_setting_then_tau_then_n() -> None:
    img = torch.zeros(1, 3, 4, 4)
    cache = {("a", 0.0, 4, 1.0, 1.0, 1.0): img, ("a", 0.7, 8, 1.0, 1.0, 1.0): img, ("c", 0.7, 4, 1.0, 1.0, 1.0): img}
    assert live.nearest_cached(cache, ("a", 0.7, 8, 1.0, 1.0, 1.0)) == ("a", 0.7, 8, 1.0, 1.0, 1.0)  # exact
    assert live.nearest_cached(cache, ("a", 0.6, 4, 1.0, 1.0, 1.0)) == ("a", 0.7, 8, 1.0, 1.0, 1.0)  # τ before n
    assert live.nearest_cached(cache, ("c", 0.0, 8, 9.0, 9.0, 9.0)) == ("c", 0.7, 4, 1.0, 1.0, 1.0)  # setting first
    assert live.cache_key("d", AUTHORS_CODE) == ("d", 0.7, 64, 500.0, 9000.0, 150.0)
    with pytest.raises(ValueError, match="experiments"):
        live.nearest_cached({}, ("a", 0.7, 8, 1.0, 1.0, 1.0))


def test_render_cached_labels_a_nearest_hit() -> None:
    content = torch.rand(1, 3, 8, 8)
    cache = {("a", 0.7, 8, 1.0, 1.0, 1.0): torch.rand(1, 3, 8, 8)}
    fig = live.render_cached(cache, ("b", 0.0, 4, 1.0, 1.0, 1.0), content, "RANDOM test")
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "nearest cached: (a) full" in titles and "(b) no L_dir" in titles
    plt.close(fig)


def test_retrain_button_trains_with_the_sliders_and_caches_the_result() -> None:
    controls = live.live_controls(AUTHORS_CODE, [0.0, 0.7, 0.9], [4, 8])
    assert set(controls) == {"setting", "tau_", "n_", "lambda_d", "lambda_p", "lambda_c_"}
    assert (controls["tau_"].value, controls["n_"].value) == (0.7, 8)  # the nearest offered to the preset's τ 0.7, n 64
    controls["setting"].value, controls["tau_"].value = "c", 0.9
    calls, cache = [], {}

    def train(hp, ablation, callback):
        calls.append((hp.tau, hp.n_patches, ablation.title))
        callback(3)
        return torch.ones(1, 3, 2, 2)

    box = live.retrain_button(controls, AUTHORS_CODE, train, cache, iterations=3)
    button, bar = box.children[0].children
    assert calls == []  # nothing trains until the click
    button.click()
    assert calls == [(0.9, 8, "(c) no rejection")] and bar.value == 3
    assert list(cache) == [("c", 0.9, 8, 500.0, 9000.0, 150.0)]


def _record(ab, rejected=2, gaps=(-0.5, 0.0), change=0.1) -> dict:
    terms = {"total", "content", "tv"} | ({"dir"} if ab.use_dir else set()) | ({"patch"} if ab.use_patch else set())
    if not ab.use_patch:
        return {"final": {k: 1.0 for k in terms}, "rejected_total": None, "aug_change_mean": None, "patch_minus_unrejected": None}
    return {"final": {k: 1.0 for k in terms}, "rejected_total": rejected if ab.rejection else 0,
            "aug_change_mean": 0.0 if ab.augmentation == "none" else change,
            "patch_minus_unrejected": list(gaps) if ab.rejection else [0.0, 0.0]}  # fmt: skip


@pytest.mark.parametrize("letter", list(ABLATIONS))
def test_ablation_evidence_holds_for_records_that_match_the_definition(letter) -> None:
    ev = live.ablation_evidence(ABLATIONS[letter], _record(ABLATIONS[letter]), tol=1e-2)
    assert ev["acts_as_defined"] and all(ev["checks"].values()) and ev["title"] == ABLATIONS[letter].title


@pytest.mark.parametrize(
    ("letter", "change", "failed"),
    [
        ("a", {"patch_minus_unrejected": [0.0, 0.5]}, "R never raises L_patch"),  # R made the term larger
        ("c", {"rejected_total": 3}, "nothing rejected"),
        ("c", {"patch_minus_unrejected": [0.0, -0.5]}, "nothing rejected"),
        ("d", {"aug_change_mean": 0.1}, "crops unwarped"),
        ("e", {"aug_change_mean": 0.0}, "crops warped (affine)"),
        ("b", {"final": {"total": 1.0, "dir": 1.0, "patch": 1.0}}, "L_dir absent"),
        ("f", {"rejected_total": 0}, "no crops recorded"),
    ],
)
def test_ablation_evidence_fails_when_a_defining_property_is_violated(letter, change, failed) -> None:
    ev = live.ablation_evidence(ABLATIONS[letter], {**_record(ABLATIONS[letter]), **change}, tol=1e-2)
    assert not ev["acts_as_defined"] and [k for k, ok in ev["checks"].items() if not ok] == [failed]


def test_verdict_words_and_record(capsys) -> None:
    summary: dict = {}
    assert live.verdict(summary, "x", "claim", True, "1 < 2") == "reproduced"
    assert live.verdict(summary, "y", "claim", False, "3 > 2") == "not reproduced"
    assert live.verdict(summary, "z", "claim", True, "1 < 2", why_not="random CLIP") == "not evaluable"
    assert live.verdict(summary, "w", "claim", None, "-") == "not evaluable"
    assert summary["verdicts"]["z"] == {"claim": "claim", "verdict": "not evaluable", "holds": True, "evidence": "1 < 2", "why_not": "random CLIP"}
    assert "NOT EVALUABLE (random CLIP)" in capsys.readouterr().out
