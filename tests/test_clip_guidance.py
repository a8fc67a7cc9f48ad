"""CLIP losses against naive formulas; loading an open_clip state dict through the real code path."""

from __future__ import annotations

import math

import pytest
import torch

from stylecore.clip_guidance import (
    TINY_CLIP,
    augment_patches,
    clip_direction,
    clip_preprocess,
    directional_clip_loss,
    global_clip_loss,
    load_clip,
    patch_clip_loss,
    perspective_corners,
    random_patches,
    random_perspective,
    resize_crops,
    text_embedding,
    threshold_rejection,
)
from stylecore.weights import WeightsUnavailableError


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _naive_dir_loss(img: list[float], src: list[float], txt_dir: list[float]) -> float:
    img, src = _unit(img), _unit(src)
    d = _unit([a - b for a, b in zip(img, src)])
    t = _unit(txt_dir)
    return 1.0 - sum(a * b for a, b in zip(d, t))


@pytest.fixture(scope="module")
def tiny() -> object:
    return load_clip(TINY_CLIP, weights="random", seed=0)


def test_global_clip_loss_matches_naive() -> None:
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    desired = sum(1 - sum(a * b for a, b in zip(_unit(row.tolist()), _unit(txt.tolist()))) for row in img) / 5
    assert global_clip_loss(img, txt).item() == pytest.approx(desired, abs=1e-12)


def test_directional_clip_loss_matches_naive() -> None:
    g = torch.Generator().manual_seed(1)
    img, src = torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(1, 8, generator=g, dtype=torch.float64)
    t_sty, t_src = torch.randn(8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    t_dir = clip_direction(t_sty, t_src)
    naive_t = [a - b for a, b in zip(_unit(t_sty.tolist()), _unit(t_src.tolist()))]
    desired = [_naive_dir_loss(row.tolist(), src[0].tolist(), naive_t) for row in img]
    actual = directional_clip_loss(img, src, t_dir, reduction="none")
    assert torch.allclose(actual, torch.tensor(desired, dtype=torch.float64), atol=1e-12)
    assert directional_clip_loss(img, src, t_dir).item() == pytest.approx(sum(desired) / 6, abs=1e-12)


def test_directional_loss_is_zero_along_the_text_direction() -> None:
    src = torch.tensor([[1.0, 0.0, 0.0]])
    t_dir = torch.tensor([0.0, 1.0, 0.0])
    moved = torch.tensor([[1.0, 1.0, 0.0]])  # ΔI ∝ (−0.29, 0.71, 0) after normalisation: not parallel
    along = torch.tensor([[0.0, 1.0, 0.0]])  # ΔI ∝ (−1, 1, 0)
    assert directional_clip_loss(moved, src, t_dir) > 0
    assert directional_clip_loss(along, src, t_dir).item() == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_threshold_rejection_zeroes_exactly_patches_at_or_below_tau() -> None:
    s = torch.tensor([0.1, 0.69, 0.7, 0.7000001, 0.95, 1.3])
    out = threshold_rejection(s, 0.7)
    for before, after in zip(s.tolist(), out.tolist()):
        assert after == (0.0 if before <= 0.7 else before)
    assert out[2].item() == 0.0 and out[3].item() == s[3].item()
    strict = threshold_rejection(s, s[2].item(), strict=True)  # the official code: loss_temp[loss_temp < thresh] = 0
    assert strict.tolist() == [0.0, 0.0, *s[2:].tolist()]


def test_patch_clip_loss_is_mean_of_rejected_directional_losses() -> None:
    g = torch.Generator().manual_seed(2)
    img, src, t_dir = torch.randn(16, 8, generator=g, dtype=torch.float64), torch.randn(1, 8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    per = [_naive_dir_loss(row.tolist(), src[0].tolist(), t_dir.tolist()) for row in img]
    tau = sorted(per)[8]  # about half the patches rejected, one exactly at τ
    desired = sum(p for p in per if p > tau) / 16
    assert patch_clip_loss(img, src, F_normalize(t_dir), tau).item() == pytest.approx(desired, abs=1e-12)
    assert patch_clip_loss(img, src, F_normalize(t_dir), None).item() == pytest.approx(sum(per) / 16, abs=1e-12)


def F_normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def test_text_embedding_ensembles_as_the_authors_or_as_clip(tiny) -> None:
    from stylecore.clip_guidance import AUTHORS_TEMPLATES

    templates = [lambda c: f"a photo of {c}.", lambda c: f"a painting of {c}, a long description of it.", lambda c: f"{c}"]
    raw = []
    for t in templates:
        tokens = tiny.tokenizer([t("fire")])
        raw.append(tiny.model.encode_text(tokens)[0].detach())
    mean_raw = torch.stack(raw).mean(0)  # train_CLIPstyler.py: encode_text(tokens).mean(axis=0), then normalise
    mean_unit = torch.stack([e / e.norm() for e in raw]).mean(0)  # Radford et al. 2021: normalise, average, normalise
    authors = text_embedding(tiny, "fire", templates)
    clip_way = text_embedding(tiny, "fire", templates, ensemble="normalised_mean")
    assert authors.shape == (64,)
    assert torch.allclose(authors, mean_raw / mean_raw.norm(), atol=1e-6)
    assert torch.allclose(clip_way, mean_unit / mean_unit.norm(), atol=1e-6)
    assert not torch.allclose(authors, clip_way, atol=1e-4)  # the choice matters when the norms differ
    assert len(AUTHORS_TEMPLATES) == 79 and "a photo of many {}." not in [t("{}") for t in AUTHORS_TEMPLATES]
    assert [t("x") for t in AUTHORS_TEMPLATES][:3] == ["a bad photo of a x.", "a sculpture of a x.", "a photo of the hard to see x."]  # template.py order
    assert torch.allclose(text_embedding(tiny, "fire"), text_embedding(tiny, "fire", AUTHORS_TEMPLATES), atol=1e-7)
    assert ("fire", "unnormalised_mean") in tiny.text_cache and text_embedding(tiny, "fire") is tiny.text_cache[("fire", "unnormalised_mean")]
    assert not torch.allclose(text_embedding(tiny, "fire", ensemble="normalised_mean"), tiny.text_cache[("fire", "unnormalised_mean")], atol=1e-4)
    with pytest.raises(ValueError, match="non-empty"):
        text_embedding(tiny, "  ")
    with pytest.raises(ValueError, match="ensemble"):
        text_embedding(tiny, "fire", ensemble="median")  # type: ignore[arg-type]


def test_clip_preprocess_normalises_and_resizes(tiny) -> None:
    x = torch.rand(2, 3, 64, 64)
    desired = (x - torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)) / torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    assert torch.allclose(clip_preprocess(x, 64, tiny.mean, tiny.std), desired, atol=1e-6)
    assert clip_preprocess(torch.rand(1, 3, 40, 50), 64, tiny.mean, tiny.std).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="B, 3, H, W"):
        clip_preprocess(torch.rand(3, 64, 64), 64, tiny.mean, tiny.std)


def test_image_embeddings_pass_gradients_to_pixels(tiny) -> None:
    x = torch.rand(1, 3, 80, 80, requires_grad=True)
    e = tiny.encode_images(augment_patches(random_patches(x, 4, 48), "perspective"))
    assert e.shape == (4, 64) and torch.allclose(e.norm(dim=-1), torch.ones(4), atol=1e-5)
    e.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["perspective", "affine"])
def test_augmentation_keeps_gradients_gradcheck(kind: str) -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)

    def f(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)  # the same random warp on every call
        return augment_patches(inp, kind)

    assert not torch.equal(f(x), x)
    assert torch.autograd.gradcheck(f, (x,), atol=1e-6)


def test_augmentation_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="perspective"):
        augment_patches(torch.rand(1, 3, 8, 8), "flip")  # type: ignore[arg-type]


def test_random_patches_are_windows_of_the_image() -> None:
    img = torch.arange(3 * 10 * 12, dtype=torch.float32).view(1, 3, 10, 12)
    patches = random_patches(img, 5, 4)
    assert patches.shape == (5, 3, 4, 4)
    for p in patches:
        top, left = divmod(int(p[0, 0, 0].item()), 12)
        assert torch.equal(p, img[0, :, top : top + 4, left : left + 4])
    with pytest.raises(ValueError, match="patch size"):
        random_patches(img, 1, 11)


def test_local_open_clip_state_dict_loads_through_create_model(tmp_path, tiny) -> None:
    import open_clip

    with torch.random.fork_rng():
        torch.manual_seed(123)
        source = open_clip.create_model(TINY_CLIP)
    path = tmp_path / "open_clip_pytorch_model.bin"  # the file name open_clip's hub checkpoints use
    torch.save(source.state_dict(), path)
    guide = load_clip(TINY_CLIP, weights="pretrained", local_file=path)
    assert guide.weights_info.source == "local file" and guide.weights_info.pretrained
    loaded = guide.model.state_dict()
    assert loaded.keys() == source.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items())
    assert not torch.equal(loaded["visual.conv1.weight"], tiny.model.state_dict()["visual.conv1.weight"])
    # a training checkpoint ({"state_dict": {"module." + key: …}}) goes through the same open_clip loader
    wrapped = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in source.state_dict().items()}}, wrapped)
    again = load_clip(TINY_CLIP, weights="auto", local_file=wrapped).model.state_dict()
    assert all(torch.equal(again[k], v) for k, v in source.state_dict().items())


def test_state_dict_of_another_architecture_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "wrong.bin"
    torch.save({"visual.conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        load_clip(TINY_CLIP, weights="pretrained", local_file=path)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load_clip(TINY_CLIP, weights="pretrained", local_file=tmp_path / "missing.bin")


def test_pretrained_offline_says_how_to_get_weights(monkeypatch) -> None:
    monkeypatch.setenv("STYLECORE_OFFLINE", "1")
    monkeypatch.delenv("STYLECORE_CLIP_WEIGHTS", raising=False)
    with pytest.raises(WeightsUnavailableError, match="STYLECORE_CLIP_WEIGHTS"):
        load_clip("ViT-B-32", "openai", weights="pretrained")
    with pytest.raises(WeightsUnavailableError, match="no published weights"):
        load_clip(TINY_CLIP, weights="pretrained")
    with pytest.raises(ValueError, match="unknown open_clip architecture"):
        load_clip("ViT-Nope", weights="random")
    with pytest.raises(WeightsUnavailableError, match="no pretrained tag"):
        load_clip("ViT-B-32", "no-such-tag", weights="pretrained")


def test_random_weights_are_seeded_and_labelled() -> None:
    a, b = load_clip(TINY_CLIP, weights="random", seed=5), load_clip(TINY_CLIP, weights="random", seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
    assert "RANDOM" in a.weights_info.label and "tiny" in a.weights_info.label


def test_perspective_corners_are_torchvision_draws_for_the_same_seed() -> None:
    from torchvision.transforms import RandomPerspective

    for h, w in [(128, 128), (37, 50), (9, 8)]:
        torch.manual_seed(11)
        ours = perspective_corners(40, h, w, 0.5)
        after_ours = torch.rand(1)
        torch.manual_seed(11)
        desired = []
        for _ in range(40):
            torch.rand(1)  # RandomPerspective.forward's p test, drawn before the corner points
            desired.append(RandomPerspective.get_params(w, h, 0.5)[1])
        assert torch.equal(ours, torch.tensor(desired)) and torch.equal(torch.rand(1), after_ours)  # same draws, same stream after
        assert ours[:, [0, 3], 0].max() <= int(0.5 * (w // 2)) and ours[:, [1, 2], 0].min() >= w - int(0.5 * (w // 2)) - 1


@pytest.mark.parametrize("shape", [(16, 3, 128, 128), (5, 3, 37, 50)])
def test_batched_perspective_equals_torchvision_transform_crop_by_crop(shape: tuple[int, ...]) -> None:
    from torchvision.transforms import v2

    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    warp = v2.RandomPerspective(distortion_scale=0.5, p=1.0, fill=None)  # type: ignore[arg-type]
    torch.manual_seed(4)
    desired = torch.cat([warp(p.unsqueeze(0)) for p in x])
    torch.manual_seed(4)
    got = random_perspective(x)
    assert torch.allclose(got, desired, atol=1e-5) and not torch.allclose(got, x, atol=0.05)
    # given corner points: torchvision's functional perspective with the same start and end points
    corners = perspective_corners(len(x), shape[2], shape[3])
    start = [[0, 0], [shape[3] - 1, 0], [shape[3] - 1, shape[2] - 1], [0, shape[2] - 1]]
    each = torch.cat([v2.functional.perspective(p.unsqueeze(0), start, c.tolist(), fill=None) for p, c in zip(x, corners)])  # type: ignore[arg-type]
    assert torch.allclose(random_perspective(x, corners=corners), each, atol=1e-5)


@pytest.mark.parametrize("shape", [(16, 3, 128, 128), (5, 3, 37, 50)])
def test_mask_fill_equals_v1_random_perspective_fill_0_crop_by_crop(shape: tuple[int, ...]) -> None:
    """fill="mask" is torchvision v1 RandomPerspective(fill=0) (torchvision ≥ 0.9), as train_CLIPstyler.py calls it per crop."""
    from torchvision.transforms import RandomPerspective

    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    warp = RandomPerspective(fill=0, p=1, distortion_scale=0.5)
    torch.manual_seed(4)
    desired = torch.cat([warp(p.unsqueeze(0)) for p in x])
    torch.manual_seed(4)
    got = random_perspective(x, fill="mask")
    assert torch.allclose(got, desired, atol=1e-5)
    torch.manual_seed(4)
    zeros = random_perspective(x)  # torchvision 0.8.2's tensor perspective (fill ignored): zero padding, no mask blend
    inside = (got - zeros).abs() < 1e-6
    assert 0.5 < inside.float().mean() < 1 and (got <= zeros + 1e-6).all()  # they differ only where pixels blend with the outside
    with pytest.raises(ValueError, match="fill"):
        random_perspective(x, fill="white")  # type: ignore[arg-type]


def test_mask_fill_back_propagates_as_v1_does() -> None:
    from torchvision.transforms import RandomPerspective

    x = torch.rand(6, 3, 20, 24, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(6, 3, 20, 24, dtype=torch.float64)
    warp = RandomPerspective(fill=0, p=1, distortion_scale=0.5)
    torch.manual_seed(2)
    (g_desired,) = torch.autograd.grad((torch.cat([warp(p.unsqueeze(0)) for p in x]) * weights).sum(), x)
    torch.manual_seed(2)
    (g_got,) = torch.autograd.grad((random_perspective(x, fill="mask") * weights).sum(), x)
    torch.manual_seed(2)
    (g_zeros,) = torch.autograd.grad((random_perspective(x) * weights).sum(), x)
    assert torch.allclose(g_got, g_desired, atol=1e-10) and g_got.abs().sum() > 0 and not torch.allclose(g_got, g_zeros, atol=1e-6)
    corners = perspective_corners(2, 12, 12)
    assert torch.autograd.gradcheck(lambda y: random_perspective(y, corners=corners, fill="mask"), torch.rand(2, 3, 12, 12, dtype=torch.float64, requires_grad=True))


def test_crop_resize_is_the_official_resize_224() -> None:
    """bilinear = transforms.Resize(224) of train_CLIPstyler.py: torchvision 0.8.2's F.interpolate(bilinear, align_corners=False);
    today's antialiased default gives the same values when enlarging a 128-px crop."""
    from torchvision.transforms import Resize

    crops = torch.rand(3, 3, 128, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = resize_crops(crops, 224)
    assert torch.allclose(got, Resize(224)(crops), atol=1e-12)  # antialias=True (today's default)
    assert torch.allclose(got, Resize(224, antialias=False)(crops), atol=1e-12)
    assert torch.equal(got, torch.nn.functional.interpolate(crops, size=(224, 224), mode="bilinear", align_corners=False))
    bicubic = resize_crops(crops, 224, "bicubic")
    assert torch.allclose(bicubic, torch.nn.functional.interpolate(crops, size=(224, 224), mode="bicubic", align_corners=False), atol=1e-10)
    assert (bicubic - got).abs().max() > 1e-2  # the two resizes are different inputs to CLIP
    assert resize_crops(crops, 128) is crops
    x = crops[:1].clone().requires_grad_(True)
    resize_crops(x, 224).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="bilinear"):
        resize_crops(crops, 224, "nearest")  # type: ignore[arg-type]


def test_batched_perspective_gradients_equal_the_per_crop_transform() -> None:
    from torchvision.transforms import v2

    x = torch.rand(6, 3, 20, 24, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(6, 3, 20, 24, dtype=torch.float64)
    warp = v2.RandomPerspective(distortion_scale=0.5, p=1.0, fill=None)  # type: ignore[arg-type]
    torch.manual_seed(2)
    (g_desired,) = torch.autograd.grad((torch.cat([warp(p.unsqueeze(0)) for p in x]) * weights).sum(), x)
    torch.manual_seed(2)
    (g_got,) = torch.autograd.grad((random_perspective(x) * weights).sum(), x)
    assert torch.allclose(g_got, g_desired, atol=1e-10) and g_got.abs().sum() > 0


def test_random_patches_gradient_counts_the_crops_covering_each_pixel() -> None:
    img = torch.rand(1, 3, 30, 26, requires_grad=True)
    torch.manual_seed(5)
    tops, lefts = torch.randint(0, 30 - 8 + 1, (7,)), torch.randint(0, 26 - 8 + 1, (7,))
    torch.manual_seed(5)
    random_patches(img, 7, 8).sum().backward()
    cover = torch.zeros(30, 26)
    for t, s in zip(tops.tolist(), lefts.tolist()):
        cover[t : t + 8, s : s + 8] += 1
    assert torch.equal(img.grad, cover.expand(1, 3, 30, 26)) and cover.max() >= 1


@pytest.mark.parametrize("size_in", [(48, 48), (40, 56), (100, 90)])
def test_clip_preprocess_resize_equals_bicubic_interpolate(tiny, size_in: tuple[int, int]) -> None:
    x = torch.rand(3, 3, *size_in, requires_grad=True)
    w = torch.rand(3, 3, 64, 64)
    desired = (torch.nn.functional.interpolate(x, size=(64, 64), mode="bicubic", align_corners=False) - tiny.mean) / tiny.std
    got = clip_preprocess(x, 64, tiny.mean, tiny.std)
    assert torch.allclose(got, desired, atol=1e-5)
    (g_desired,) = torch.autograd.grad((desired * w).sum(), x)
    (g_got,) = torch.autograd.grad((got * w).sum(), x)
    assert torch.allclose(g_got, g_desired, atol=1e-4)


def test_clip_preprocess_first_under_inference_mode_then_with_gradients(tiny) -> None:
    with torch.inference_mode():
        clip_preprocess(torch.rand(1, 3, 33, 35), 64, tiny.mean, tiny.std)  # builds (and caches) the resize matrices
    x = torch.rand(1, 3, 33, 35, requires_grad=True)
    clip_preprocess(x, 64, tiny.mean, tiny.std).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_encode_image_groups_equals_one_call_per_group(tiny) -> None:
    crops, whole = torch.rand(5, 3, 48, 48), torch.rand(1, 3, 80, 96)
    calls = []
    handle = tiny.model.visual.register_forward_hook(lambda *_: calls.append(1))
    try:
        a, b = tiny.encode_image_groups(crops, whole)
    finally:
        handle.remove()
    assert len(calls) == 1 and a.shape == (5, 64) and b.shape == (1, 64)
    assert torch.allclose(a, tiny.encode_images(crops), atol=1e-5) and torch.allclose(b, tiny.encode_images(whole), atol=1e-5)
