"""CLIPstyler network, total loss, ablations, training schedule, checkpoint/resume, fast variant."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from stylecore.clip_guidance import TINY_CLIP, load_clip
from stylecore.clipstyler.training import (
    ABLATIONS,
    AUTHORS_CODE,
    PAPER,
    PRESETS,
    REVIEW_VALUES,
    ClipStylerLoss,
    StyleNet,
    ablation_titles,
    image_prior_loss,
    train_clipstyler,
    with_overrides,
)
from stylecore.nets.vgg import imagenet_normalize, vgg19_features

HP = with_overrides(AUTHORS_CODE, patch_size=24, n_patches=4, lr_step=3, lr_offset=0)


@pytest.fixture(scope="module")
def parts() -> tuple:
    clip = load_clip(TINY_CLIP, weights="random")
    vgg = vgg19_features(HP.content_layers, pooling=HP.pooling, weights="random")
    content = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    return clip, vgg, content


def test_image_prior_loss_matches_naive_loop() -> None:
    x = torch.rand(1, 2, 4, 5, dtype=torch.float64)
    sums = [0.0, 0.0, 0.0, 0.0]
    for c in range(2):
        for i in range(4):
            for j in range(5):
                if j + 1 < 5:
                    sums[0] += (x[0, c, i, j] - x[0, c, i, j + 1]).item() ** 2
                if i + 1 < 4:
                    sums[1] += (x[0, c, i, j] - x[0, c, i + 1, j]).item() ** 2
                if i + 1 < 4 and j + 1 < 5:
                    sums[2] += (x[0, c, i + 1, j] - x[0, c, i, j + 1]).item() ** 2
                    sums[3] += (x[0, c, i, j] - x[0, c, i + 1, j + 1]).item() ** 2
    assert image_prior_loss(x).item() == pytest.approx(sum(s**0.5 for s in sums), rel=1e-12)


def test_style_net_shape_range_and_errors() -> None:
    net = StyleNet()
    y = net(torch.rand(2, 3, 24, 32))
    assert y.shape == (2, 3, 24, 32) and 0 < y.min() and y.max() < 1
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 30, 32))


def test_paper_preset_holds_the_values_of_sec_4_1_eq_3_and_sec_3_2() -> None:
    # arXiv 2112.00374v3 Sec. 4.1: "we set λ_d, λ_p, λ_c, and λ_tv as 5×10², 9×10³, 150, and 2×10⁻³"; 512×512; Adam 5×10⁻⁴;
    # "the total training iteration is set as 200, and we decreased the learning rate to half at the iteration of 100";
    # "patch size of 128", "n = 64", "τ as 0.7". Eq. 3: R(s, τ) = 0 if s ≤ τ. Sec. 3.2: t_src "is simply set as 'Photo'".
    assert (PAPER.lambda_dir, PAPER.lambda_patch, PAPER.lambda_c, PAPER.lambda_tv) == (5e2, 9e3, 150, 2e-3)
    assert (PAPER.image_size, PAPER.lr, PAPER.steps, PAPER.lr_step, PAPER.lr_gamma, PAPER.lr_offset) == (512, 5e-4, 200, 100, 0.5, 0)
    assert (PAPER.patch_size, PAPER.n_patches, PAPER.tau, PAPER.strict_rejection, PAPER.source_text) == (128, 64, 0.7, False, "Photo")
    for cite in ("Sec. 4.1", "Eq. 3", "Sec. 3.2", "'Photo'", "conv4_2"):
        assert cite in PAPER.source, cite


def test_authors_code_preset_holds_the_argparse_defaults_and_its_differences() -> None:
    # train_CLIPstyler.py: --lambda_dir 500 --lambda_patch 9000 --lambda_c 150 --lambda_tv 2e-3 --crop_size 128 --num_crops 64
    # --img_width/--img_height 512 --max_step 200 --lr 5e-4 --thresh 0.7; StepLR(100, 0.5); source = "a Photo"; loss < thresh.
    hp = AUTHORS_CODE
    assert (hp.lambda_dir, hp.lambda_patch, hp.lambda_c, hp.lambda_tv) == (500, 9000, 150, 2e-3)
    assert (hp.image_size, hp.lr, hp.lr_step, hp.lr_gamma, hp.patch_size, hp.n_patches, hp.tau) == (512, 5e-4, 100, 0.5, 128, 64, 0.7)
    assert (hp.steps, hp.lr_offset, hp.strict_rejection, hp.source_text) == (200, 1, True, "a Photo")
    assert hp.content_layers == PAPER.content_layers == ("relu4_2", "relu5_2") and hp.pooling == PAPER.pooling == "max"
    assert hp.ensemble == PAPER.ensemble == "unnormalised_mean"
    assert "train_CLIPstyler.py" in hp.source and "range(0, 201)" in hp.source and "a Photo" in hp.source
    differing = {k for k in PAPER.__dataclass_fields__ if getattr(PAPER, k) != getattr(hp, k)}
    assert differing == {"lr_offset", "strict_rejection", "source_text", "source"}  # everything else: paper = code


def test_review_values_are_labelled_as_the_review_and_match_no_paper_or_code_setting() -> None:
    from stylecore.clipstyler.fast import FAST_AUTHORS_CODE, FAST_PAPER

    lambdas = (REVIEW_VALUES.lambda_dir, REVIEW_VALUES.lambda_patch, REVIEW_VALUES.lambda_c, REVIEW_VALUES.lambda_tv)
    assert lambdas == (1, 0.5, 5, 0.01)
    known = [(p.lambda_dir, p.lambda_patch, p.lambda_c, p.lambda_tv) for p in (PAPER, AUTHORS_CODE, FAST_PAPER, FAST_AUTHORS_CODE)]
    assert lambdas not in known
    assert REVIEW_VALUES.source.startswith("REVIEW VALUES: the λs of the review this collection was built from") and set(PRESETS) == {"paper", "authors_code", "review_values"}


def test_source_text_of_the_preset_sets_the_text_direction(parts) -> None:
    from stylecore.clip_guidance import clip_direction, text_embedding

    clip, vgg, content = parts
    paper, code = (ClipStylerLoss(clip, vgg, content, "fire", with_overrides(h, patch_size=24, n_patches=4)) for h in (PAPER, AUTHORS_CODE))
    with torch.no_grad():
        for loss, t_src in ((paper, "Photo"), (code, "a Photo")):
            assert torch.allclose(loss.text_direction, clip_direction(text_embedding(clip, "fire"), text_embedding(clip, t_src)), atol=1e-6)
    assert not torch.allclose(paper.text_direction, code.text_direction, atol=1e-4)  # "Photo" and "a Photo" give different ΔT


def _official_features(features: nn.Sequential, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """train_CLIPstyler.py's ``utils.get_features(img_normalize(x), VGG)``: every module in turn, indices 21 and 31 recorded."""
    names = {"21": "conv4_2", "31": "conv5_2"}
    out, x = {}, imagenet_normalize(image)
    for name, layer in features._modules.items():
        x = layer(x)
        if name in names:
            out[names[name]] = x
    return out


def test_authors_code_content_features_equal_the_official_extraction() -> None:
    ours = vgg19_features(AUTHORS_CODE.content_layers, pooling=AUTHORS_CODE.pooling, weights="random", seed=3)
    torch.manual_seed(3)  # the same random weights: vgg19_features builds torchvision's vgg19 under this seed
    official = copy.deepcopy(torchvision.models.vgg19(weights=None).features).eval()
    assert all(m.inplace for m in official if isinstance(m, nn.ReLU))  # torchvision's default, as in the official script
    assert [i for i, m in enumerate(official) if isinstance(m, nn.MaxPool2d)] == [4, 9, 18, 27, 36]
    x = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = _official_features(official, x)
        got = ours(x)
    for layer, official_name in zip(AUTHORS_CODE.content_layers, ("conv4_2", "conv5_2")):
        assert torch.allclose(got[layer], want[official_name], rtol=1e-5, atol=1e-6), (layer, official_name)
    assert (want["conv4_2"] >= 0).all()  # the in-place ReLU at index 22 rectified the tensor recorded at index 21
    pre_relu = vgg19_features(["conv4_2"], pooling="max", weights="random", seed=3)(x)["conv4_2"]
    assert (pre_relu < 0).any() and not torch.allclose(pre_relu, want["conv4_2"])
    avg = vgg19_features(["relu4_2"], pooling="avg", weights="random", seed=3)(x)["relu4_2"]
    assert not torch.allclose(avg, want["conv4_2"], atol=1e-3)  # average pooling would not reproduce the official features


def test_loss_refuses_an_extractor_with_other_pooling(parts) -> None:
    clip, _, content = parts
    with pytest.raises(ValueError, match="pooling"):
        ClipStylerLoss(clip, vgg19_features(HP.content_layers, pooling="avg", weights="random"), content, "fire", HP)


@pytest.mark.parametrize("letter", sorted(ABLATIONS))
def test_ablation_terms(parts, letter: str) -> None:
    clip, vgg, content = parts
    ab = ABLATIONS[letter]
    terms = ClipStylerLoss(clip, vgg, content, "fire", HP, ab)(content.clone())
    assert ("dir" in terms) == ab.use_dir and ("patch" in terms) == ab.use_patch
    assert {"content", "tv"} <= terms.keys()
    assert terms["content"].item() == 0.0  # f(I_c) = I_c has no content loss
    if ab.use_dir:  # ΔI = 0 -> normalise(0) = 0 -> cos = 0 -> loss 1
        assert terms["dir"].item() == pytest.approx(HP.lambda_dir, rel=1e-5)
    with pytest.raises(ValueError, match="unknown ablation"):
        ablation_titles(["z"])


def test_batched_and_per_crop_clip_calls_agree(parts) -> None:
    clip, vgg, content = parts
    out = torch.rand_like(content)
    losses = [ClipStylerLoss(clip, vgg, content, "fire", HP, ABLATIONS["c"], batched=b) for b in (True, False)]
    torch.manual_seed(7)
    a = losses[0](out)
    torch.manual_seed(7)
    b = losses[1](out)
    assert torch.allclose(a["patch"], b["patch"], rtol=1e-4)


def test_content_layers_must_be_in_the_extractor(parts) -> None:
    clip, _, content = parts
    with pytest.raises(ValueError, match="content layers"):
        ClipStylerLoss(clip, vgg19_features(["relu1_1"], weights="random"), content, "fire", HP)


def test_lr_offset_reproduces_the_official_scheduler_first_order() -> None:
    import warnings

    from stylecore.clipstyler.training import step_decay

    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5)
    official = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns about this order: it is the official script's
        for _ in range(201):  # train_CLIPstyler.py: for epoch in range(0, max_step + 1): scheduler.step(); ...; optimizer.step()
            sched.step()
            official.append(opt.param_groups[0]["lr"])
    loop = with_overrides(AUTHORS_CODE, steps=201)
    assert [loop.lr * step_decay(loop)(i) for i in range(loop.steps)] == pytest.approx(official, rel=1e-12)
    assert official.index(2.5e-4) == 99 and official[199:] == [1.25e-4, 1.25e-4]
    assert [PAPER.lr * step_decay(PAPER)(i) for i in (0, 99, 100, 199)] == pytest.approx([5e-4, 5e-4, 2.5e-4, 2.5e-4])


def test_authors_code_steps_reproduce_the_image_the_official_loop_saves(parts) -> None:
    """The official loop runs max_step + 1 iterations but saves f computed at the top of the last one: f after max_step updates."""
    import warnings

    clip, vgg, content = parts
    steps = 5
    hp = with_overrides(AUTHORS_CODE, patch_size=24, n_patches=4, lr_step=2, steps=steps)
    loss = ClipStylerLoss(clip, vgg, content, "fire", hp)
    torch.manual_seed(0)
    net = StyleNet(ngf=8)
    init = copy.deepcopy(net.state_dict())
    torch.manual_seed(1)
    opt = torch.optim.Adam(net.parameters(), lr=hp.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=hp.lr_step, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(0, steps + 1):  # as train_CLIPstyler.py
            sched.step()
            target = net(content)
            total = sum(loss(target).values())
            if epoch == steps:  # epoch % 50 == 0 at epoch == max_step: the last saved image
                saved = target.detach().clone()
            opt.zero_grad()
            total.backward()
            opt.step()
    ours = StyleNet(ngf=8)
    ours.load_state_dict(init)
    result = train_clipstyler(ours, content, loss, progress=False, seed=1)
    assert result.steps_done == steps and torch.allclose(result.output, saved, atol=1e-5)
    assert not torch.allclose(net(content).detach(), saved, atol=1e-5)  # the 201st-style update moved f, but it is never saved


def test_training_halves_lr_after_optimizer_and_resumes(parts, tmp_path) -> None:
    clip, vgg, content = parts
    loss = ClipStylerLoss(clip, vgg, content, "fire", HP)
    torch.manual_seed(0)
    net_a = StyleNet(ngf=8)
    init = {k: v.clone() for k, v in net_a.state_dict().items()}
    full = train_clipstyler(net_a, content, loss, steps=6, progress=False, seed=1)
    assert full.lr == [5e-4] * 3 + [2.5e-4] * 3  # StepLR(3, 0.5) stepped after each optimiser step
    assert set(full.history) == {"total", "content", "patch", "dir", "tv"} and all(len(v) == 6 for v in full.history.values())

    ckpt = tmp_path / "clipstyler.pt"
    net_b = StyleNet(ngf=8)
    net_b.load_state_dict(init)
    part = train_clipstyler(net_b, content, loss, steps=4, checkpoint=ckpt, checkpoint_every=2, progress=False, seed=1)
    assert part.steps_done == 4 and ckpt.exists()
    net_c = StyleNet(ngf=8)
    net_c.load_state_dict(init)
    resumed = train_clipstyler(net_c, content, loss, steps=6, checkpoint=ckpt, checkpoint_every=2, progress=False, seed=1)
    assert resumed.lr == full.lr
    assert resumed.history["total"] == pytest.approx(full.history["total"], rel=1e-4)
    assert torch.allclose(resumed.output, full.output, atol=1e-5)
    with pytest.raises(ValueError, match="positive int"):
        train_clipstyler(net_c, content, loss, steps=0)


def _probe(loss: ClipStylerLoss, output: torch.Tensor, seed: int = 7) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    with torch.no_grad():
        return loss(output)


def test_rejection_changes_the_patch_term_exactly_on_patches_at_or_below_tau(parts) -> None:
    clip, vgg, content = parts
    out = torch.rand_like(content)
    hp = with_overrides(HP, n_patches=8, strict_rejection=False)
    no_rej = ClipStylerLoss(clip, vgg, content, "fire", hp, ABLATIONS["c"])
    t_c = _probe(no_rej, out)
    per = no_rej.last["per_patch"]
    tau = float(per.median())  # about half the crops at or below τ, one exactly at it
    full = ClipStylerLoss(clip, vgg, content, "fire", with_overrides(hp, tau=tau), ABLATIONS["a"])
    t_a = _probe(full, out)
    assert torch.equal(full.last["per_patch"], per)  # same seed: the same crops and warps
    low = per <= tau
    assert 0 < int(low.sum()) < len(per)
    assert t_c["patch"].item() == pytest.approx(hp.lambda_patch * per.mean().item(), rel=1e-5)
    assert t_a["patch"].item() == pytest.approx(hp.lambda_patch * per[~low].sum().item() / len(per), rel=1e-5)
    assert (t_c["patch"] - t_a["patch"]).item() == pytest.approx(hp.lambda_patch * per[low].sum().item() / len(per), rel=1e-4)
    assert full.records[-1]["rejected"] == int(low.sum()) and no_rej.records[-1]["rejected"] == 0
    strict = ClipStylerLoss(clip, vgg, content, "fire", with_overrides(hp, tau=tau, strict_rejection=True), ABLATIONS["a"])
    assert strict.records == [] and (_probe(strict, out)["patch"] - t_a["patch"]).item() == pytest.approx(hp.lambda_patch * tau / len(per), rel=1e-4)  # s = τ kept


def test_patch_term_equals_patch_clip_loss_on_the_same_crops(parts) -> None:
    from stylecore.clip_guidance import patch_clip_loss

    clip, vgg, content = parts
    loss = ClipStylerLoss(clip, vgg, content, "fire", with_overrides(HP, tau=0.5))
    terms = _probe(loss, torch.rand_like(content))
    with torch.no_grad():
        desired = HP.lambda_patch * patch_clip_loss(clip.encode_images(loss.last["clip_crops"]), loss.source_emb, loss.text_direction, 0.5, strict=True)
    assert terms["patch"].item() == pytest.approx(desired.item(), rel=1e-5)


def test_two_clip_calls_per_step_give_the_terms_of_per_crop_calls(parts) -> None:
    clip, vgg, content = parts
    out = torch.rand_like(content)
    batched, separate = ClipStylerLoss(clip, vgg, content, "fire", HP), ClipStylerLoss(clip, vgg, content, "fire", HP, batched=False)
    calls = []
    handle = clip.model.visual.register_forward_hook(lambda *_: calls.append(1))
    try:
        together = _probe(batched, out)
        n_together, calls[:] = len(calls), []
        apart = _probe(separate, out)
        n_apart = len(calls)
    finally:
        handle.remove()
    assert n_together == 2 and n_apart == HP.n_patches + 1  # the crops in one call, the output in its own; else one per crop
    for k in together:
        assert together[k].item() == pytest.approx(apart[k].item(), rel=1e-4, abs=1e-5)


def _ramp(h: int, w: int) -> torch.Tensor:
    """A linear image a·x + b·y + c (bilinear sampling reproduces it exactly; affine warps keep it linear)."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([0.2 + 0.6 * xs / w, 0.2 + 0.6 * ys / h, 0.2 + 0.3 * (xs + ys) / (h + w)]).unsqueeze(0)


def _max_second_difference_inside(crops: torch.Tensor) -> float:
    """Largest |second difference| over pixels 3 px or more from any fill (the warps pad with 0) and from the crop's edge."""
    valid = torch.nn.functional.pad((crops.min(dim=1, keepdim=True).values > 0.15).float(), (3, 3, 3, 3))  # outside the crop: invalid
    inner = -torch.nn.functional.max_pool2d(-valid, 7, 1, 0) > 0.5  # eroded by 3 px: no stencil pixel blends with the fill
    assert inner.sum() > 20 * len(crops)
    dxx = crops[..., :, 2:] - 2 * crops[..., :, 1:-1] + crops[..., :, :-2]
    dyy = crops[..., 2:, :] - 2 * crops[..., 1:-1, :] + crops[..., :-2, :]
    m = inner[..., 1:-1, 1:-1].expand(-1, 3, -1, -1)
    return max(dxx[..., 1:-1, :][m].abs().max().item(), dyy[..., :, 1:-1][m].abs().max().item())


def test_crops_fed_to_clip_follow_the_augmentation_setting(parts) -> None:
    clip, vgg, content = parts
    ramp = _ramp(*content.shape[-2:])
    seen = {}
    for letter in ("a", "d", "e"):
        loss = ClipStylerLoss(clip, vgg, content, "fire", with_overrides(HP, n_patches=6), ABLATIONS[letter])
        _probe(loss, ramp)
        seen[letter] = loss.last
    raw = seen["d"]["crops_raw"]
    assert torch.equal(seen["d"]["crops"], raw)  # (d): CLIP sees the raw crops
    for crop in raw:  # ... and they are windows of the output
        top = round((crop[1, 0, 0].item() - 0.2) / 0.6 * ramp.shape[-2])
        left = round((crop[0, 0, 0].item() - 0.2) / 0.6 * ramp.shape[-1])
        assert torch.allclose(crop, ramp[0, :, top : top + crop.shape[-2], left : left + crop.shape[-1]], atol=1e-6)
    for letter in ("a", "e"):
        assert torch.equal(seen[letter]["crops_raw"], raw) and not torch.allclose(seen[letter]["crops"], raw)
    assert _max_second_difference_inside(seen["e"]["crops"]) < 1e-4  # (e): an affine warp keeps the ramp linear
    assert _max_second_difference_inside(seen["a"]["crops"]) > 1e-3  # (a): a perspective warp bends it


def test_global_objective_uses_eq1(parts) -> None:
    from stylecore.clip_guidance import global_clip_loss
    from stylecore.clipstyler.training import GLOBAL_LOSS

    clip, vgg, content = parts
    out = torch.rand_like(content)
    loss = ClipStylerLoss(clip, vgg, content, "fire", HP, GLOBAL_LOSS)
    terms = _probe(loss, out)
    with torch.no_grad():
        assert terms["dir"].item() == pytest.approx(HP.lambda_dir * global_clip_loss(clip.encode_images(out), loss.text_emb).item(), rel=1e-5)
        per = 1 - torch.nn.functional.cosine_similarity(clip.encode_images(loss.last["clip_crops"]), loss.text_emb.unsqueeze(0))
    assert torch.allclose(loss.last["per_patch"], per, atol=1e-5)


def test_style_net_is_the_official_unet_and_lite_is_an_option() -> None:
    from stylecore.clipstyler.stylenet import LiteUNet, style_network

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + cout

    def residual(cin: int, cout: int) -> int:  # StyleNet.py EncodingBlock / the body of Down- and UpBlock
        return conv(cin, cout, 3) + conv(cout, cout, 3) + conv(cin, cout, 1)

    g = 16  # official UNet(ngf=16), layer by layer as listed in StyleNet.py
    desired = (conv(3, g, 1) + residual(g, g) + residual(g, g) + conv(g, g, 4) + residual(g, 2 * g) + conv(2 * g, 2 * g, 4)
               + residual(2 * g, 4 * g) + conv(4 * g, 4 * g, 4) + residual(4 * g, 8 * g) + residual(8 * g + 4 * g, 4 * g)
               + residual(4 * g + 2 * g, 2 * g) + residual(2 * g + g, g) + residual(2 * g, g) + conv(g, 3, 1))  # fmt: skip
    net = style_network("official")
    assert isinstance(net, StyleNet) and sum(p.numel() for p in net.parameters()) == desired
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and not any(m.affine for m in norms)  # non-affine instance norm
    assert not any(isinstance(m, nn.LeakyReLU) for m in net.modules()) and any(isinstance(m, nn.ReLU) for m in net.modules())
    assert [(m.kernel_size, m.stride) for m in (net.down1.downsample, net.down2.downsample, net.down3.downsample)] == [((4, 4), (2, 2))] * 3
    x = torch.rand(1, 3, 24, 40)
    assert net(x).shape == x.shape and isinstance(style_network("lite"), LiteUNet) and style_network("lite")(x).shape == x.shape
    assert sum(p.numel() for p in LiteUNet().parameters()) < desired / 2
    with pytest.raises(ValueError, match="official"):
        style_network("resnet")


# The key names and shapes of the official StyleNet.UNet(ngf=16) state dict, as its definition in cyclomon/CLIPstyler
# StyleNet.py (commit 4843cec) produces them: Down/UpBlock and EncodingBlock each hold `conv` (Sequential conv, IN, ReLU,
# conv, IN, ReLU: indices 0 and 3) and `skip`; DownBlock also `downsample`; non-affine IN and Upsample carry no keys.
def _official_keys(g: int = 16) -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = {"conv_init.weight": (g, 3, 1, 1), "conv_init.bias": (g,)}

    def block(name: str, cin: int, cout: int) -> None:
        keys.update({f"{name}.conv.0.weight": (cout, cin, 3, 3), f"{name}.conv.0.bias": (cout,), f"{name}.conv.3.weight": (cout, cout, 3, 3),
                     f"{name}.conv.3.bias": (cout,), f"{name}.skip.weight": (cout, cin, 1, 1), f"{name}.skip.bias": (cout,)})  # fmt: skip

    block("init", g, g)
    for name, cin, cout in (("down1", g, g), ("down2", g, 2 * g), ("down3", 2 * g, 4 * g)):
        block(name, cin, cout)
        keys.update({f"{name}.downsample.weight": (cout, cout, 4, 4), f"{name}.downsample.bias": (cout,)})
    block("encoding", 4 * g, 8 * g)
    for name, cin, cout in (("up3", 8 * g, 4 * g), ("up2", 4 * g, 2 * g), ("up1", 2 * g, g)):
        block(name, cin + cout, cout)
    block("out", 2 * g, g)
    keys.update({"conv_fin.weight": (3, g, 1, 1), "conv_fin.bias": (3,)})
    return keys


def test_official_layout_state_dict_loads_into_stylenet_with_the_same_output() -> None:
    from torch.nn import functional as F

    from stylecore.clipstyler.stylenet import load_official_stylenet, official_state_dict_to_stylenet

    g = torch.Generator().manual_seed(3)
    official = {k: torch.randn(shape, generator=g) * 0.2 for k, shape in _official_keys().items()}  # an official-layout checkpoint

    def res(x: torch.Tensor, name: str) -> torch.Tensor:  # the official blocks' forward: conv(x) + skip(x)
        h = F.relu(F.instance_norm(F.conv2d(x, official[f"{name}.conv.0.weight"], official[f"{name}.conv.0.bias"], padding=1)))
        h = F.relu(F.instance_norm(F.conv2d(h, official[f"{name}.conv.3.weight"], official[f"{name}.conv.3.bias"], padding=1)))
        return h + F.conv2d(x, official[f"{name}.skip.weight"], official[f"{name}.skip.bias"])

    def naive_unet(x: torch.Tensor) -> torch.Tensor:  # UNet.forward of StyleNet.py, written out
        x = res(F.conv2d(x, official["conv_init.weight"], official["conv_init.bias"]), "init")
        skips, d = [], x
        for name in ("down1", "down2", "down3"):
            full = res(d, name)
            skips.append(full)
            d = F.conv2d(full, official[f"{name}.downsample.weight"], official[f"{name}.downsample.bias"], stride=2, padding=1)
        h = res(d, "encoding")
        for name in ("up3", "up2", "up1"):
            h = res(torch.cat([F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False), skips.pop()], dim=1), name)
        h = res(torch.cat([h, x], dim=1), "out")
        return torch.sigmoid(F.conv2d(h, official["conv_fin.weight"], official["conv_fin.bias"]))

    net = load_official_stylenet(official)
    x = torch.rand(2, 3, 32, 24, generator=g)
    with torch.no_grad():
        assert torch.allclose(net(x), naive_unet(x), atol=1e-5)
    assert set(official_state_dict_to_stylenet(official)) == set(StyleNet().state_dict())  # every key maps, none left over
    renamed = official_state_dict_to_stylenet({f"module.{k}": v for k, v in official.items()})  # DataParallel prefix
    assert renamed["down1.body.conv.0.weight"] is official["down1.conv.0.weight"] and renamed["up3.body.skip.bias"] is official["up3.skip.bias"]
    with pytest.raises(ValueError, match="missing"):
        load_official_stylenet({k: v for k, v in official.items() if k != "up1.skip.bias"})
    with pytest.raises(ValueError, match="ngf"):
        load_official_stylenet(official, ngf=8)


def test_presets_feed_clip_the_official_crops_and_the_other_conventions_are_options(parts) -> None:
    # train_CLIPstyler.py augment: RandomPerspective(fill=0, p=1, distortion_scale=0.5) then Resize(224) (bilinear);
    # torchvision 0.8.2 (the code's pin) ignores fill on tensors: zero padding.
    assert all((p.crop_resize, p.perspective_fill) == ("bilinear", "zeros") for p in PRESETS.values())
    clip, vgg, content = parts
    out = torch.rand_like(content)
    seen = {}
    for name, changes in {"official": {}, "bicubic": {"crop_resize": "bicubic"}, "mask": {"perspective_fill": "mask"}}.items():
        loss = ClipStylerLoss(clip, vgg, content, "fire", with_overrides(HP, **changes))
        _probe(loss, out)
        seen[name] = loss.last
    for name in seen:
        assert seen[name]["clip_crops"].shape[-1] == clip.image_size and torch.equal(seen[name]["crops_raw"], seen["official"]["crops_raw"])
    up = torch.nn.functional.interpolate(seen["official"]["crops"], size=clip.image_size, mode="bilinear", align_corners=False)
    assert torch.equal(seen["official"]["clip_crops"], up)
    assert not torch.allclose(seen["bicubic"]["clip_crops"], up, atol=1e-3) and torch.equal(seen["bicubic"]["crops"], seen["official"]["crops"])
    assert not torch.allclose(seen["mask"]["crops"], seen["official"]["crops"], atol=1e-4)


def test_compile_option_falls_back_once_restores_the_loss_and_equals_eager(parts, monkeypatch) -> None:
    import warnings

    from stylecore import compiling

    clip, vgg, content = parts
    monkeypatch.setattr(compiling, "_warned", False)
    monkeypatch.setattr(compiling, "compile_unavailable_reason", lambda: "Windows (simulated)")
    loss = ClipStylerLoss(clip, vgg, content, "fire", HP)
    torch.manual_seed(0)
    net = StyleNet(ngf=8)
    init = copy.deepcopy(net.state_dict())
    eager = train_clipstyler(net, content, loss, steps=3, progress=False, seed=1, compile=False)
    net.load_state_dict(init)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forced = train_clipstyler(net, content, loss, steps=3, progress=False, seed=1, compile=True)
    assert [str(w.message) for w in caught if issubclass(w.category, compiling.CompileFallbackWarning)] == [
        "torch.compile unavailable (Windows (simulated)); running eagerly — results are the same, only slower"]
    assert loss.vgg is vgg and "encode_images" not in vars(loss.clip)  # the stand-ins are removed after the call
    assert forced.history == eager.history and torch.equal(forced.output, eager.output)


def test_clipstyler_auto_compile_stays_eager_at_quick_sizes_and_compiles_the_paper_run() -> None:
    from stylecore.clipstyler.training import CLIPSTYLER_BREAK_EVEN
    from stylecore.compiling import should_compile

    assert not should_compile("auto", 128 * 128, 100, CLIPSTYLER_BREAK_EVEN) and not should_compile("auto", 256 * 256, 100, CLIPSTYLER_BREAK_EVEN)
    assert should_compile("auto", 512 * 512, 200, CLIPSTYLER_BREAK_EVEN)  # Sec. 4.1: 512 px, 200 iterations
