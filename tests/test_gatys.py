from __future__ import annotations

import pytest
import torch

from stylecore.gatys import AUTHORS_CODE, PAPER, PRESETS, GatysLoss, coarse_to_fine, initial_image
from stylecore.losses import gram_matrix
from stylecore.nets.vgg import vgg19_features


@pytest.fixture(scope="module")
def extractor():
    return vgg19_features(PAPER.layers, "avg", weights="random", seed=0)


def test_presets_have_sources_and_paper_ratio() -> None:
    assert set(PRESETS) == {"paper", "authors_code"}
    assert PAPER.alpha / PAPER.beta == pytest.approx(1e-3)
    assert PAPER.pooling == "avg" and AUTHORS_CODE.pooling == "max"
    assert AUTHORS_CODE.iterations == 500 and AUTHORS_CODE.init == "content"
    for hp in PRESETS.values():
        assert {"content_layers", "style_layers", "pooling", "optimizer", "init"} <= set(hp.source)


def test_gatys_loss_equals_eq7_written_out(extractor) -> None:
    g = torch.Generator().manual_seed(0)
    content, style, x = (torch.rand(1, 3, 32, 32, generator=g) for _ in range(3))
    hp = PAPER.with_(tv_weight=0.5)
    terms = GatysLoss(extractor, hp, content, style)(x)
    fx, fc, fs = extractor(x), extractor(content), extractor(style)
    l_content = 0.5 * ((fx["relu4_2"] - fc["relu4_2"]) ** 2).sum()
    l_style = 0.0
    for layer in PAPER.style_layers:
        _, n, h, w = fx[layer].shape
        l_style += 0.2 * ((gram_matrix(fx[layer]) - gram_matrix(fs[layer])) ** 2).sum() / (4 * n**2 * (h * w) ** 2)
    tv = ((x[..., :-1, 1:] - x[..., :-1, :-1]) ** 2 + (x[..., 1:, :-1] - x[..., :-1, :-1]) ** 2).sum()
    assert torch.allclose(terms["content"], hp.alpha * l_content)
    assert torch.allclose(terms["style"], hp.beta * l_style, rtol=1e-4)
    assert torch.allclose(terms["tv"], 0.5 * tv)


def test_authors_preset_matches_their_formula(extractor) -> None:
    """Their loss: Σ_l 1e3/n² · mean((G/M − A/M)²) + mean((F − P)²)."""
    ex = vgg19_features(AUTHORS_CODE.layers, "max", weights="random", seed=0)
    g = torch.Generator().manual_seed(1)
    content, style, x = (torch.rand(1, 3, 32, 32, generator=g) for _ in range(3))
    terms = GatysLoss(ex, AUTHORS_CODE, content, style)(x)
    fx, fc, fs = ex(x), ex(content), ex(style)
    theirs = sum(1e3 / n**2 * torch.nn.functional.mse_loss(gram_matrix(fx[l], True), gram_matrix(fs[l], True)) for l, n in zip(AUTHORS_CODE.style_layers, (64, 128, 256, 512, 512)))
    assert torch.allclose(terms["style"], theirs, rtol=1e-4)
    assert torch.allclose(terms["content"], torch.nn.functional.mse_loss(fx["relu4_2"], fc["relu4_2"]))


def test_content_only_and_style_only(extractor) -> None:
    x = torch.rand(1, 3, 32, 32)
    assert set(GatysLoss(extractor, PAPER, x, None)(x)) == {"content"}
    assert set(GatysLoss(extractor, PAPER, None, x)(x)) == {"style"}
    assert float(GatysLoss(extractor, PAPER, x, x)(x)["style"]) == 0.0
    with pytest.raises(ValueError, match="nothing to optimise"):
        GatysLoss(extractor, PAPER, None, None)(x)


def test_extractor_must_compute_the_layers() -> None:
    small = vgg19_features(["relu1_1"], weights="random")
    with pytest.raises(ValueError, match="does not compute layers"):
        GatysLoss(small, PAPER, torch.rand(1, 3, 16, 16), None)


def test_initial_images() -> None:
    c, s = torch.rand(1, 3, 20, 30), torch.rand(1, 3, 40, 40)
    assert torch.equal(initial_image("content", c, s), c)
    assert initial_image("style", c, s).shape == c.shape
    n1, n2 = initial_image("noise", c, s, seed=5), initial_image("noise", c, s, seed=5)
    assert torch.equal(n1, n2) and 0.45 < n1.mean() < 0.55
    with pytest.raises(ValueError, match="init"):
        initial_image("zeros", c, s)


@pytest.mark.parametrize("preset", ["paper", "authors_code"])
def test_style_loss_at_unequal_image_sizes(preset: str) -> None:
    """Style = the output tiled twice (same statistics, twice the positions) is near zero style loss.

    Through VGG the tile seam and zero padding change a few border positions, so the loss is
    small rather than exactly zero; before the per-position comparison it was 1.2× that of a
    flat grey style image.
    """
    hp = PRESETS[preset]
    ext = vgg19_features(hp.layers, hp.pooling, weights="random", seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=g)
    tiled = torch.cat([x, x], dim=-1)
    grey = torch.full((1, 3, 64, 128), 0.5)
    hp = hp.with_(content_layers={})
    same = float(GatysLoss(ext, hp, None, tiled)(x)["style"])
    flat = float(GatysLoss(ext, hp, None, grey)(x)["style"])
    assert same < 0.05 * flat


def test_carry_over_gives_the_same_losses_on_a_scaled_network() -> None:
    """Bias-free VGG is positively homogeneous: conv1_1 × 3 makes every activation × 3; carry_over undoes it exactly."""
    import copy

    from stylecore.gatys import carry_over
    from stylecore.nets.vgg import VGGFeatures, feature_scales

    base = vgg19_features(PAPER.layers, "avg", weights="random", seed=0)
    scaled = copy.deepcopy(base)
    for a, b in zip(base.body, scaled.body):
        if isinstance(a, torch.nn.Conv2d):
            torch.nn.init.zeros_(a.bias), torch.nn.init.zeros_(b.bias)
    with torch.no_grad():
        scaled.body[0].weight.mul_(3.0)
    g = torch.Generator().manual_seed(0)
    content, style, x = (torch.rand(1, 3, 32, 32, generator=g) for _ in range(3))
    scales = feature_scales(scaled, base, [content, style], PAPER.layers)
    assert all(v == pytest.approx(3.0, rel=1e-4) for v in scales.values())
    want = GatysLoss(base, PAPER, content, style)(x)
    got = GatysLoss(scaled, carry_over(PAPER, scales), content, style)(x)
    unchanged = GatysLoss(scaled, PAPER, content, style)(x)
    for term in ("content", "style"):
        assert float(got[term]) == pytest.approx(float(want[term]), rel=1e-3)
    assert float(unchanged["style"]) == pytest.approx(81 * float(want["style"]), rel=1e-3)


def test_coarse_to_fine_stages_and_the_full_size_loss() -> None:
    """Each stage starts from the previous result upsampled; the last stage's history is the paper's loss at full size."""
    hp = PAPER.with_(content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 0.5, "relu2_1": 0.5})
    ex = vgg19_features(hp.layers, "avg", weights="random", seed=0)
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 32, 24, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    stages = coarse_to_fine(ex, hp, content, style, sizes=[16, 32], steps=[6, 8], progress=False)
    assert [r.image.shape[-2:] for r in stages] == [(16, 12), (32, 24)] and [r.steps for r in stages] == [6, 8]
    start = torch.nn.functional.interpolate(stages[0].image, size=(32, 24), mode="bilinear", align_corners=False)
    terms = GatysLoss(ex, hp, content, style)(start)
    assert stages[1].history["total"][0] == pytest.approx(float(sum(terms.values())), rel=1e-5)
    assert stages[1].history["total"][-1] < stages[1].history["total"][0]
    totals = stages[1].history["total"]
    goal = min(totals[1:-1])
    reached = next(i for i, v in enumerate(totals) if v <= goal)
    again = coarse_to_fine(ex, hp, content, style, sizes=[16, 32], steps=[6, 50], progress=False, target_loss=goal)
    assert again[1].steps == reached + 1 and again[1].history["total"][: reached + 1] == totals[: reached + 1]  # deterministic, stops early
    with pytest.raises(ValueError, match="ascend to the content's longest side 32"):
        coarse_to_fine(ex, hp, content, style, sizes=[16, 24], steps=[1, 1])
    with pytest.raises(ValueError, match="one step count per size"):
        coarse_to_fine(ex, hp, content, style, sizes=[16, 32], steps=[1])
