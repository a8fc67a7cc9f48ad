"""preset "authors_code" = the objective of the authors' deepmatting_seg.lua, term for term.

The Lua formulas are written out here naively (luanfujun/deep-photo-styletransfer, deepmatting_seg.lua):
ContentLoss (w · nn.MSECriterion), StyleLossWithSeg (Gram/(C·H·W·m̄), loss_j · m̄, gram:backward on the
masked features), TVLoss:updateGradInput on the ×256 image, MattingLaplacian (λ · 2 M V01 / 256).
The masks at each layer are the project's reduce_mask (the mask resizing is not under test here).
"""

import warnings

import numpy as np
import pytest
import torch

from stylecore.deep_photo.loss import AUTHORS_CODE, DeepPhotoLoss, authors_style_loss
from stylecore.deep_photo.masks import SegmentationMasks, reduce_mask, style_grams_per_label
from stylecore.deep_photo.matting import matting_laplacian
from stylecore.nets.vgg import vgg19_features

HP = AUTHORS_CODE.with_(style_layers={"relu1_1": 1.0, "relu2_1": 1.0}, content_layers={"relu2_1": 5.0})
LAM = 1e4


@pytest.fixture(scope="module")
def setup():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = vgg19_features(HP.layers, pooling="max", weights="random", seed=0, variant="caffe_x256")
    g = torch.Generator().manual_seed(0)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(24, 32), mode="bilinear")
    style = torch.rand(1, 3, 20, 28, generator=g)
    lc = torch.zeros(24, 32)
    lc[:, :13] = 1  # two labels, split off the pooling grid: soft masks at relu2_1
    ls = torch.zeros(20, 28)
    ls[:9] = 1
    masks = SegmentationMasks(("a", "b"), torch.stack([lc, 1 - lc]), torch.stack([ls, 1 - ls]))
    lap = matting_laplacian(content)
    return vgg, content, style, masks, lap


def lua_style_layer(f, fs, mc, ms, strength):
    """StyleLossWithSeg for one layer: loss and the gradient updateGradInput returns (f: (C, H, W))."""
    c = f.shape[0]
    loss, grad = 0.0, torch.zeros_like(f)
    for j in range(mc.shape[0]):
        tmask, tmean = ms[j], ms[j].mean()
        tf = (tmask * fs).reshape(c, -1)
        target = tf @ tf.T
        if tmean > 0:
            target = target / (fs.numel() * tmean)
        cmask, cmean = mc[j], mc[j].mean()
        x = (cmask * f).reshape(c, -1)
        gram = x @ x.T
        if cmean > 0:
            gram = gram / (f.numel() * cmean)
        loss = loss + ((gram - target) ** 2).sum() / gram.numel() * strength * cmean  # MSECriterion · strength · m̄
        dg = 2 * (gram - target) / gram.numel() / f.numel()
        grad += ((dg + dg.T) @ x).reshape(f.shape)  # nn.MM backward on the masked features
    return loss, grad * strength


def lua_tv_grad(xc, strength):
    c, h, w = xc.shape
    grad = torch.zeros_like(xc)
    for k in range(c):
        for i in range(h - 1):
            for j in range(w - 1):
                dx = xc[k, i, j] - xc[k, i, j + 1]
                dy = xc[k, i, j] - xc[k, i + 1, j]
                grad[k, i, j] += dx + dy
                grad[k, i, j + 1] -= dx
                grad[k, i + 1, j] -= dy
    return grad * strength


def test_authors_code_terms_equal_the_lua_formulas(setup):
    vgg, content, style, masks, lap = setup
    loss = DeepPhotoLoss(vgg, HP, content, style, masks, lap, lam=LAM)
    x = torch.rand_like(content).requires_grad_(True)
    terms = loss(x)
    fx, fc, fs = vgg(x), vgg(content), vgg(style)
    # content: ContentLoss(content_weight, target) = w · mean (F − P)²
    p, f = fc["relu2_1"], fx["relu2_1"]
    assert torch.allclose(terms["content"], 5.0 * ((f - p) ** 2).sum() / f.numel(), rtol=1e-5)
    desired = sum(lua_style_layer(fx[k][0], fs[k][0], reduce_mask(masks.content, k), reduce_mask(masks.style, k), HP.gamma)[0] for k in HP.style_layers)
    assert torch.allclose(terms["style"], desired, rtol=1e-4)
    # TV: the Lua adds tv · ∂/∂x_c ½Σ(Δx_c)², x_c = 256·BGR(x) − mean; its objective and gradient in x (= 256 · ∂/∂x_c)
    xc = (256.0 * x.detach()[0].flip(0) - torch.tensor([103.939, 116.779, 123.68])[:, None, None]).double()
    dx, dy = xc[:, :-1, 1:] - xc[:, :-1, :-1], xc[:, 1:, :-1] - xc[:, :-1, :-1]
    assert np.isclose(float(terms["tv"].detach()), float(1e-3 * 0.5 * (dx**2 + dy**2).sum()), rtol=1e-5)
    (g_tv,) = torch.autograd.grad(terms["tv"], x, retain_graph=True)
    assert torch.allclose(g_tv[0].flip(0).double(), 256.0 * lua_tv_grad(xc, 1e-3), rtol=1e-4, atol=1e-6)
    # matting: gradient_LocalAffine = λ · 2 M V01 / 256 in x_c, i.e. λ · 2 M V in x; objective λ Σ_c V_cᵀ M V_c
    v = x.detach()[0].reshape(3, -1).double().numpy()
    assert np.isclose(float(terms["photorealism"].detach()), LAM * float((v * (lap @ v.T).T).sum()), rtol=1e-5)
    (g_m,) = torch.autograd.grad(terms["photorealism"], x, retain_graph=True)
    lua_grad_xc = LAM * 2 * (lap @ v.T).T / 256.0
    assert np.allclose(g_m[0].reshape(3, -1).double().numpy(), 256.0 * lua_grad_xc, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("style_gradient", ["authors_m", "exact"])
def test_style_gradient_is_the_lua_backward_or_the_exact_one(setup, style_gradient):
    vgg, content, style, masks, lap = setup
    fs = vgg(style)
    grams = style_grams_per_label(fs, masks.style, HP.style_layers)
    mc = {k: reduce_mask(masks.content, k) for k in HP.style_layers}
    fx = {k: v.detach().requires_grad_(True) for k, v in vgg(torch.rand_like(content)).items()}
    loss = HP.gamma * authors_style_loss(fx, grams, HP.style_layers, mc, "area", style_gradient)
    grads = torch.autograd.grad(loss, [fx[k] for k in HP.style_layers])
    for k, got in zip(HP.style_layers, grads):
        ms = reduce_mask(masks.style, k)
        value, lua = lua_style_layer(fx[k][0].detach(), fs[k][0], mc[k], ms, HP.gamma)
        if style_gradient == "authors_m":
            assert torch.allclose(got[0], lua, rtol=1e-4, atol=1e-6 * float(lua.abs().max()))
        else:  # exact: one more factor of the mask per label; differs from the Lua's where masks are soft
            exact = torch.zeros_like(lua)
            for j in range(mc[k].shape[0]):
                one = mc[k].clone()
                one[1 - j] = 0  # only label j
                exact += lua_style_layer(fx[k][0].detach(), fs[k][0], one, ms, HP.gamma)[1] * mc[k][j]
            assert torch.allclose(got[0], exact, rtol=1e-4, atol=1e-6 * float(exact.abs().max()))
            soft = ((mc[k] > 0) & (mc[k] < 1)).any()
            assert not soft or not torch.allclose(got[0], lua, rtol=1e-3)


def test_ceil_pooling_gives_loadcaffe_sizes_and_must_match_the_extractor(setup):
    _, content, style, masks, _ = setup
    x = torch.rand(1, 3, 25, 31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        floor = vgg19_features(HP.layers, pooling="max", weights="random", seed=0, variant="caffe_x256")
        ceil = vgg19_features(HP.layers, pooling="max", weights="random", seed=0, variant="caffe_x256", ceil_mode=True)
    assert floor(x)["relu2_1"].shape[-2:] == (12, 15) and ceil(x)["relu2_1"].shape[-2:] == (13, 16)
    assert reduce_mask(torch.ones(1, 25, 31), "relu2_1", ceil_mode=True).shape[-2:] == (13, 16)
    c = torch.nn.functional.interpolate(content, size=(25, 31))
    m = SegmentationMasks(masks.labels, torch.nn.functional.interpolate(masks.content[None], size=(25, 31))[0], masks.style)
    terms = DeepPhotoLoss(ceil, HP.with_(ceil_pooling=True), c, style, m)(c)
    assert float(terms["content"]) == 0.0 and float(terms["style"]) > 0
    with pytest.raises(ValueError, match="ceil_mode"):
        DeepPhotoLoss(floor, HP.with_(ceil_pooling=True), c, style, m)
    with pytest.raises(ValueError, match="reduction"):
        DeepPhotoLoss(floor, HP.with_(reduction="sum"), c, style, m)
    with pytest.raises(ValueError, match="authors_m"):
        DeepPhotoLoss(floor, HP.with_(reduction="project", style_gradient="authors_m"), c, style, m)
