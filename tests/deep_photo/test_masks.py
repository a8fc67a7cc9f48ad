"""Semantic masks and the augmented style loss (Luan et al. 2017, Sec. 3.2, Eq. 3)."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylecore.losses import gram_matrix, style_loss
from stylecore.deep_photo.masks import (
    MASK_COLORS,
    SegmentationMasks,
    augmented_style_loss,
    automatic_masks,
    label_weights,
    masked_gram,
    no_masks,
    parse_color_mask,
    reduce_mask,
    resize_labels,
    style_grams_per_label,
)
from stylecore.nets.vgg import vgg19_features


@pytest.fixture(scope="module")
def vgg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vgg19_features(["relu1_1", "relu2_1", "relu3_1"], weights="random", seed=0)


def test_parse_color_mask_with_tolerance():
    names = list(MASK_COLORS)
    img = torch.zeros(1, 3, 3, len(names))
    for j, n in enumerate(names):
        img[0, :, 0, j] = torch.tensor(MASK_COLORS[n])
        img[0, :, 1, j] = (torch.tensor(MASK_COLORS[n]) + 0.08 * (1 - 2 * torch.tensor(MASK_COLORS[n]))).clamp(0, 1)
    img[0, :, 2, :] = torch.tensor([0.25, 0.75, 0.25]).view(3, 1)  # far from every palette colour
    labels, got = parse_color_mask(img, tolerance=0.1)
    assert got == tuple(names)
    assert (labels[0] == np.arange(len(names))).all() and (labels[1] == np.arange(len(names))).all()
    assert (labels[2] == -1).all()
    with pytest.raises(ValueError, match="tolerance"):
        parse_color_mask(img, tolerance=0.5)


def test_reduce_mask_shapes_match_vgg_features_and_conv1_is_3x3_average(vgg):
    masks = (torch.rand(2, 23, 30) > 0.5).float()
    feats = vgg(torch.rand(1, 3, 23, 30))
    for layer, f in feats.items():
        assert reduce_mask(masks, layer).shape[-2:] == f.shape[-2:]
        assert (reduce_mask(torch.ones(1, 23, 30), layer) == 1).all()  # all-ones stays all-ones
    padded = F.pad(masks, (1, 1, 1, 1))
    count = F.pad(torch.ones(1, 23, 30), (1, 1, 1, 1))
    win = [(dy, dx) for dy in range(3) for dx in range(3)]
    naive = sum(padded[:, dy : dy + 23, dx : dx + 30] for dy, dx in win) / sum(count[:, dy : dy + 23, dx : dx + 30] for dy, dx in win)
    assert torch.allclose(reduce_mask(masks, "conv1_1"), naive)
    assert torch.allclose(reduce_mask(masks, "relu1_1"), naive)


def test_masked_gram_against_loop():
    f = torch.randn(1, 4, 5, 6, dtype=torch.float64)
    m = torch.rand(5, 6, dtype=torch.float64)
    desired = torch.zeros(4, 4, dtype=torch.float64)
    for i in range(4):
        for j in range(4):
            desired[i, j] = sum(f[0, i, y, x] * m[y, x] * f[0, j, y, x] * m[y, x] for y in range(5) for x in range(6)) / m.sum()
    assert torch.allclose(masked_gram(f, m)[0], desired)
    assert torch.allclose(masked_gram(f, torch.ones(5, 6, dtype=torch.float64)), gram_matrix(f) / 30)


def test_single_full_mask_equals_gatys_style_loss(vgg):
    content, style = torch.rand(1, 3, 24, 32), torch.rand(1, 3, 24, 32)
    weights = {"relu1_1": 0.5, "relu2_1": 2.0, "relu3_1": 1.0}
    fs, fo = vgg(style), vgg(content)
    m = no_masks(content, style)
    grams = style_grams_per_label(fs, m.style, weights)
    masks = {k: reduce_mask(m.content, k) for k in weights}
    desired = style_loss(fo, {k: gram_matrix(v) for k, v in fs.items()}, weights)
    assert torch.allclose(augmented_style_loss(fo, grams, weights, masks), desired, rtol=1e-4)


def test_augmented_loss_is_sum_over_labels_and_ignores_other_regions(vgg):
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    lab = np.zeros((32, 32), dtype=np.int64)
    lab[16:] = 1
    m = SegmentationMasks.from_label_maps(lab, lab, ("sky", "ground"))
    weights = {"relu1_1": 1.0}
    grams = style_grams_per_label(vgg(style), m.style, weights)
    masks = {"relu1_1": reduce_mask(m.content, "relu1_1")}
    out = augmented_style_loss(vgg(content), grams, weights, masks, "equal")  # Eq. 3 as printed: labels weigh alike
    desired = sum(
        ((masked_gram(vgg(content)["relu1_1"], masks["relu1_1"][k]) - grams["relu1_1"][k]) ** 2).sum() / (4 * 64**2) for k in range(2)
    )
    assert torch.allclose(out, desired)


def test_orphans_dropped_merge_map_and_errors():
    names = ("blue", "green", "red")
    c = np.zeros((10, 10), dtype=np.int64)
    c[5:] = 1
    s = np.zeros((10, 10), dtype=np.int64)
    s[5:] = 2  # style has red where content has green
    with pytest.warns(UserWarning, match="orphans"):
        m = SegmentationMasks.from_label_maps(c, s, names)
    assert m.labels == ("blue",) and set(m.dropped) == {"green", "red"}
    m = SegmentationMasks.from_label_maps(c, s, names, merge={"red": "green"})
    assert m.labels == ("blue", "green") and m.content[1].sum() == 50 and m.style[1].sum() == 50
    with pytest.raises(ValueError, match="share no label"):
        SegmentationMasks.from_label_maps(np.zeros_like(c), np.full_like(s, 1), names)
    with pytest.raises(ValueError, match="not labels"):
        SegmentationMasks.from_label_maps(c, s, names, merge={"red": "pink"})


def test_resize_labels_keeps_label_values():
    lab = np.random.default_rng(0).integers(-1, 4, (40, 50))
    small = resize_labels(lab, (13, 17))
    assert small.shape == (13, 17) and set(np.unique(small)) <= set(np.unique(lab))


def test_automatic_masks_match_regions_across_images():
    def two_regions(h, w, split, top, bottom, seed):
        g = torch.Generator().manual_seed(seed)
        img = 0.03 * torch.rand(1, 3, h, w, generator=g)
        img[0, :, :split] += torch.tensor(top).view(3, 1, 1)
        img[0, :, split:] += torch.tensor(bottom).view(3, 1, 1)
        return img.clamp(0, 1)

    content = two_regions(40, 60, 15, (0.5, 0.7, 0.95), (0.1, 0.4, 0.1), 0)  # blue sky over grass
    style = two_regions(50, 50, 30, (0.9, 0.4, 0.3), (0.3, 0.1, 0.05), 1)  # red sunset sky over dark ground: other colours
    m = automatic_masks(content, style, n_labels=2, n_segments=40, seed=0)
    assert len(m.labels) == 2
    k_sky = int(m.content[:, 5, 30].argmax())
    assert m.content[k_sky, :15].mean() > 0.95 and m.content[k_sky, 15:].mean() < 0.05
    assert m.style[k_sky, :30].mean() > 0.95 and m.style[k_sky, 30:].mean() < 0.05
    assert m.content.shape == (2, 40, 60) and m.style.shape == (2, 50, 50)


def test_masks_for_pair_modes_and_errors():
    from stylecore.deep_photo.masks import masks_for_pair

    content, style = torch.rand(1, 3, 20, 30), torch.rand(1, 3, 24, 24)
    assert masks_for_pair("none", "none", content, style).labels == ("all",)
    seg_c = torch.zeros(1, 3, 40, 60)
    seg_c[0, 2, :20] = 1  # blue sky over black
    seg_s = torch.zeros(1, 3, 12, 12)
    seg_s[0, 2, :4] = 1
    m = masks_for_pair(seg_c, seg_s, content, style)
    assert m.labels == ("blue", "black") and m.content.shape == (2, 20, 30) and m.style.shape == (2, 24, 24)
    assert m.content[0, :10].all() and not m.content[0, 10:].any()
    with pytest.raises(ValueError, match="both be 'none', both 'auto'"):
        masks_for_pair("auto", seg_s, content, style)


def test_label_weights_are_area_fractions_or_ones():
    m = torch.zeros(3, 4, 5)
    m[0, :1] = 1  # 5 of 20 pixels
    m[1, 1:] = 0.5  # soft mask: mean 0.375
    assert torch.allclose(label_weights(m, "area"), torch.tensor([0.25, 0.375, 0.0]))
    assert torch.equal(label_weights(m, "equal"), torch.ones(3))
    with pytest.raises(ValueError, match="label weighting"):
        label_weights(m, "size")


def test_area_weighting_multiplies_each_label_term_by_its_content_area(vgg):
    # deepmatting_seg.lua, StyleLossWithSeg: loss_j * l_content_mean, l_content_mean = mean of the layer's content mask
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 28, 36)
    lc = np.zeros((32, 32), dtype=np.int64)
    lc[8:] = 1  # a quarter "sky", three quarters "ground"
    ls = np.zeros((28, 36), dtype=np.int64)
    ls[14:] = 1
    m = SegmentationMasks.from_label_maps(lc, ls, ("sky", "ground"))
    weights = {"relu1_1": 1.0, "relu2_1": 0.5}
    fo = vgg(content)
    grams = style_grams_per_label(vgg(style), m.style, weights)
    masks = {k: reduce_mask(m.content, k) for k in weights}
    per_label = {k: [((masked_gram(fo[k], masks[k][c]) - grams[k][c]) ** 2).sum() / (4 * fo[k].shape[1] ** 2) for c in range(2)] for k in weights}
    area = sum(w * sum(masks[k][c].mean() * per_label[k][c] for c in range(2)) for k, w in weights.items())
    equal = sum(w * sum(per_label[k]) for k, w in weights.items())
    assert torch.allclose(augmented_style_loss(fo, grams, weights, masks), area)
    assert torch.allclose(augmented_style_loss(fo, grams, weights, masks, "equal"), equal)
    assert abs(float(masks["relu1_1"][0].mean()) - 0.25) < 0.02  # the sky's share, softened at its border only
    # the gradient follows the weighted loss too (the Lua code scales dG the same way)
    x = content.clone().requires_grad_(True)
    augmented_style_loss(vgg(x), grams, {"relu1_1": 1.0}, masks).backward()
    y = content.clone().requires_grad_(True)
    f = vgg(y)["relu1_1"]
    sum(masks["relu1_1"][c].mean() * ((masked_gram(f, masks["relu1_1"][c]) - grams["relu1_1"][c]) ** 2).sum() / (4 * 64**2) for c in range(2)).backward()
    assert torch.allclose(x.grad, y.grad, rtol=1e-4, atol=1e-12)


def test_masked_grams_are_per_position_so_image_sizes_do_not_matter(vgg):
    # style = the output tiled twice side by side (same statistics per position, twice the positions): loss near 0
    g = torch.Generator().manual_seed(1)
    x = F.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(32, 32), mode="bilinear")
    tiled = torch.cat([x, x], dim=3)  # (1, 3, 32, 64)
    grey = torch.full_like(tiled, 0.5)
    lab = np.zeros((32, 32), dtype=np.int64)
    lab[16:] = 1
    weights = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}
    fo = vgg(x)
    for m in (no_masks(x, tiled), SegmentationMasks.from_label_maps(lab, np.concatenate([lab, lab], 1), ("top", "bottom"))):
        masks = {k: reduce_mask(m.content, k) for k in weights}
        same = augmented_style_loss(fo, style_grams_per_label(vgg(tiled), m.style, weights), weights, masks)
        flat = augmented_style_loss(fo, style_grams_per_label(vgg(grey), m.style, weights), weights, masks)
        assert same < 0.05 * flat, (m.labels, float(same), float(flat))
