"""Deep Photo Style Transfer loss (Luan et al. 2017, Eq. 4), memory cap."""

import warnings

import numpy as np
import pytest
import torch

from stylecore.metrics import structure_score
from stylecore.deep_photo.loss import AUTHORS_CODE, PAPER, DeepPhotoLoss, colour_transfer_progress, estimate_memory_mb, region_colour_stats, size_for_memory_budget
from stylecore.nets.vgg import VGG19_VARIANTS
from stylecore.losses import content_loss, total_variation
from stylecore.deep_photo.masks import SegmentationMasks, no_masks
from stylecore.deep_photo.matting import matting_laplacian, photorealism_loss, photorealism_per_pixel
from stylecore.optim import optimize_pixels
from stylecore.nets.vgg import vgg19_features

HP = PAPER.with_(style_layers={"relu1_1": 1.0, "relu2_1": 1.0}, content_layers={"relu2_1": 1.0}, gamma=1e3)


@pytest.fixture(scope="module")
def vgg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vgg19_features(HP.layers, pooling="max", weights="random", seed=0)


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(24, 32), mode="bilinear")
    return content, torch.rand(1, 3, 20, 28, generator=g)


def test_presets_record_sources():
    assert PAPER.lam == 1e4 and PAPER.gamma == 1e2
    assert AUTHORS_CODE.content_layers == {"relu4_2": 5.0} and AUTHORS_CODE.gamma == 100 and AUTHORS_CODE.tv_weight == 1e-3
    assert AUTHORS_CODE.iterations == 1000 and set(AUTHORS_CODE.style_layers) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
    for hp in (PAPER, AUTHORS_CODE):
        assert {"lam", "gamma", "content_layers", "style_layers", "vgg_variant"} <= set(hp.source)
        # Γ and λ were tuned on the Caffe VGG19 with 0–255 BGR input: the preset must name that network
        assert hp.vgg_variant == "caffe_x256" and VGG19_VARIANTS[hp.vgg_variant].preprocessing == "caffe_x256"


def test_total_loss_is_eq4_written_out(vgg, pair):
    content, style = pair
    lap = matting_laplacian(content)
    hp = HP.with_(tv_weight=1e-2)
    loss = DeepPhotoLoss(vgg, hp, content, style, no_masks(content, style), lap, lam=3.0)
    x = torch.rand_like(content)
    terms = loss(x)
    fx, fc, fs = vgg(x), vgg(content), vgg(style)
    assert torch.allclose(terms["content"], content_loss(fx["relu2_1"], fc["relu2_1"]))
    # different sizes: per-position Grams F Fᵀ / M of each image, Eq. 4's 1/(4 N²) (written out, no library call)
    desired = 0.0
    for k, w in hp.style_layers.items():
        a, b = fx[k].flatten(2)[0], fs[k].flatten(2)[0]  # (N, M_x), (N, M_s)
        desired += w * ((a @ a.T / a.shape[1] - b @ b.T / b.shape[1]) ** 2).sum() / (4 * a.shape[0] ** 2)
    assert torch.allclose(terms["style"], hp.gamma * desired, rtol=1e-4)
    assert torch.allclose(terms["tv"], 1e-2 * total_variation(x))
    assert torch.allclose(terms["photorealism"], 3.0 * photorealism_loss(x, lap))


def test_label_weighting_changes_the_style_term_as_the_area_fractions_say(vgg, pair):
    content, style = pair
    def top_bottom(h, w, split):  # (2, H, W): rows above / below ``split``
        top = (torch.arange(h) < split).float().view(h, 1).expand(h, w)
        return torch.stack([top, 1 - top])

    masks = SegmentationMasks(("top", "bottom"), top_bottom(24, 32, 6), top_bottom(20, 28, 10))
    x = torch.rand_like(content)
    area = DeepPhotoLoss(vgg, HP, content, style, masks)(x)["style"]
    equal = DeepPhotoLoss(vgg, HP.with_(label_weighting="equal"), content, style, masks)(x)["style"]
    assert HP.label_weighting == "area" and area < equal  # fractions < 1 shrink every term
    with pytest.raises(ValueError, match="label_weighting"):
        DeepPhotoLoss(vgg, HP.with_(label_weighting="size"), content, style, masks)


def test_errors(vgg, pair):
    content, style = pair
    with pytest.raises(ValueError, match="needs the content's matting Laplacian"):
        DeepPhotoLoss(vgg, HP, content, style, no_masks(content, style), None, lam=1.0)
    with pytest.raises(ValueError, match="do not match"):
        DeepPhotoLoss(vgg, HP, content, style, no_masks(style, content))
    with pytest.raises(ValueError, match="lacks layers"):
        DeepPhotoLoss(vgg, PAPER, content, style, no_masks(content, style))


def test_lambda_sweep_is_monotone_on_a_small_deterministic_case(vgg, pair):
    content, style = pair
    lap = matting_laplacian(content)
    masks = no_masks(content, style)
    stage1 = optimize_pixels(content, DeepPhotoLoss(vgg, HP, content, style, masks), 15, progress=False).image
    lm, ss = [], []
    for lam in (0.0, 1e-2, 1e-1, 1.0):
        out = optimize_pixels(stage1, DeepPhotoLoss(vgg, HP, content, style, masks, lap, lam), 10, progress=False).image
        lm.append(photorealism_per_pixel(out, lap))
        ss.append(structure_score(out, content))
    assert all(a > b for a, b in zip(lm, lm[1:])), lm
    assert all(a < b for a, b in zip(ss, ss[1:])), ss


def test_memory_cap():
    assert estimate_memory_mb(256, 256) < estimate_memory_mb(512, 512) < estimate_memory_mb(1024, 1024)
    assert estimate_memory_mb(512, 512) == pytest.approx(4 * estimate_memory_mb(256, 256), rel=0.01)
    size, msg = size_for_memory_budget(768, 1024, budget_mb=500)
    assert size < 1024 and "capped" in msg and "500" in msg
    assert estimate_memory_mb(round(768 * size / 1024), size, "relu5_1") <= 500
    assert size_for_memory_budget(60, 96, budget_mb=500)[0] == 96
    with pytest.raises(ValueError, match="positive"):
        size_for_memory_budget(10, 10, 0)


def test_colour_transfer_progress_per_region():
    from skimage.color import rgb2lab

    def two_colours(h, w, split, top, bottom, noise, seed):  # (1, 3, H, W): ``top`` above row ``split``, ``bottom`` below
        img = torch.empty(1, 3, h, w)
        img[0, :, :split] = torch.tensor(top).view(3, 1, 1)
        img[0, :, split:] = torch.tensor(bottom).view(3, 1, 1)
        return (img + noise * torch.randn(img.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)

    def top_bottom(h, w, split):
        top = (torch.arange(h) < split).float().view(h, 1).expand(h, w)
        return torch.stack([top, 1 - top])

    content = two_colours(20, 30, 8, (0.5, 0.7, 0.95), (0.2, 0.5, 0.1), 0.02, 0)  # blue sky, green ground
    style = two_colours(24, 24, 12, (0.9, 0.4, 0.2), (0.3, 0.1, 0.05), 0.05, 1)  # orange sky, dark ground
    masks = SegmentationMasks(("sky", "ground"), top_bottom(20, 30, 8), top_bottom(24, 24, 12))
    # stats against a direct computation
    lab = rgb2lab(style[0].permute(1, 2, 0).double().numpy())[:12].reshape(-1, 3)
    assert np.allclose(region_colour_stats(style, masks.style[0]), np.concatenate([lab.mean(0), lab.std(0)]))
    same = colour_transfer_progress(content, content, style, masks)
    assert same == pytest.approx({"sky": 0.0, "ground": 0.0})
    arrived = two_colours(20, 30, 8, (0.9, 0.4, 0.2), (0.3, 0.1, 0.05), 0.05, 2)  # the style's colours, content's layout
    assert all(v > 0.9 for v in colour_transfer_progress(arrived, content, style, masks).values())
    half = two_colours(20, 30, 8, (0.9, 0.4, 0.2), (0.2, 0.5, 0.1), 0.02, 3)  # only the sky changed
    p = colour_transfer_progress(half, content, style, masks)
    assert p["sky"] > 0.8 and abs(p["ground"]) < 0.1
    with pytest.raises(ValueError, match="differ in size"):
        region_colour_stats(style, masks.content[0])
