from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from stylecore.nets.vgg import VGG19_LAYERS, VGGFeatures, imagenet_normalize, vgg19_features


@pytest.fixture(scope="module")
def tv_vgg() -> torchvision.models.VGG:
    torch.manual_seed(0)
    return torchvision.models.vgg19(weights=None).eval()


def test_layer_names_match_torchvision_modules(tv_vgg: torchvision.models.VGG) -> None:
    assert len(VGG19_LAYERS) == len(tv_vgg.features) == 37
    kinds = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}
    for name, module in zip(VGG19_LAYERS, tv_vgg.features):
        assert isinstance(module, kinds[name[:4]]), name
    assert VGG19_LAYERS.index("relu4_2") == 22 and VGG19_LAYERS.index("conv5_1") == 28


def test_truncated_at_deepest_layer_and_matches_torchvision(tv_vgg: torchvision.models.VGG) -> None:
    ex = VGGFeatures(tv_vgg, ["relu1_1", "relu3_1"], pooling="max")
    assert ex.depth == VGG19_LAYERS.index("relu3_1") + 1
    x = torch.rand(1, 3, 32, 40)
    out = ex(x)
    assert list(out) == ["relu1_1", "relu3_1"]
    with torch.no_grad():
        desired = tv_vgg.features[: ex.depth](imagenet_normalize(x))
    assert torch.allclose(out["relu3_1"], desired, atol=1e-5)
    assert out["relu3_1"].shape == (1, 256, 8, 10)


def test_conv_output_not_overwritten_by_inplace_relu(tv_vgg: torchvision.models.VGG) -> None:
    ex = VGGFeatures(tv_vgg, ["conv2_1", "relu2_1"])
    out = ex(torch.rand(1, 3, 16, 16))
    assert (out["conv2_1"] < 0).any()
    assert torch.equal(out["relu2_1"], out["conv2_1"].clamp_min(0))


def test_average_pooling_as_in_paper(tv_vgg: torchvision.models.VGG) -> None:
    ex = VGGFeatures(tv_vgg, ["pool1", "relu1_2"], pooling="avg")
    out = ex(torch.rand(1, 3, 8, 8))
    assert torch.allclose(out["pool1"], nn.functional.avg_pool2d(out["relu1_2"], 2))


def test_frozen_but_differentiable_wrt_image(tv_vgg: torchvision.models.VGG) -> None:
    ex = VGGFeatures(tv_vgg, ["relu2_1"])
    assert not any(p.requires_grad for p in ex.parameters())
    ex.train()
    assert not ex.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    ex(x)["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_arguments(tv_vgg: torchvision.models.VGG) -> None:
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        VGGFeatures(tv_vgg, ["conv6_1"])
    with pytest.raises(ValueError, match="pooling"):
        VGGFeatures(tv_vgg, ["relu1_1"], pooling="min")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        VGGFeatures(tv_vgg, [])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        VGGFeatures(tv_vgg, ["relu1_1"])(torch.rand(3, 8, 8))


def test_random_policy_is_seeded_and_labelled() -> None:
    a = vgg19_features(["relu1_1"], weights="random", seed=3)
    b = vgg19_features(["relu1_1"], weights="random", seed=3)
    c = vgg19_features(["relu1_1"], weights="random", seed=4)
    assert torch.equal(a.body[0].weight, b.body[0].weight) and not torch.equal(a.body[0].weight, c.body[0].weight)
    assert "RANDOM" in a.weights_info.label and "seed 3" in a.weights_info.label


def test_untruncated_runs_whole_network() -> None:
    ex = vgg19_features(["relu1_1"], weights="random", truncate=False)
    assert ex.depth == 37 and ex.layers == ("relu1_1",)


def test_image_too_small_for_deepest_layer(tv_vgg: torchvision.models.VGG) -> None:
    ex = VGGFeatures(tv_vgg, ["relu5_1"])
    with pytest.raises(ValueError, match=r"512×2 px is too small for layer relu5_1: .* 4 poolings, so each side needs at least 16 px"):
        ex(torch.rand(1, 3, 2, 512))
    assert ex(torch.rand(1, 3, 16, 16))["relu5_1"].shape[-2:] == (1, 1)
    assert VGGFeatures(tv_vgg, ["relu1_1"])(torch.rand(1, 3, 1, 5))["relu1_1"].shape[-2:] == (1, 5)


def test_random_weights_equal_torchvision_without_its_classifier() -> None:
    """The features-only build draws the same random numbers as torchvision's whole VGG19."""
    torch.manual_seed(3)
    reference = torchvision.models.vgg19(weights=None).features
    ex = vgg19_features(["relu5_4"], weights="random", seed=3)
    ours = dict(ex.body.named_parameters())
    theirs = {f"{i}.{k}": v for i, m in enumerate(reference) for k, v in m.named_parameters()}
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert sum(p.numel() for p in ex.parameters()) == sum(p.numel() for p in reference.parameters())  # 20 M, not 143 M


def test_whole_vgg19_file_loads_and_a_foreign_key_is_refused(tmp_path) -> None:
    from stylecore.weights import WeightsUnavailableError

    torch.manual_seed(5)
    state = torchvision.models.vgg19(weights=None).state_dict()  # features.* and classifier.*, as torchvision publishes it
    torch.save(state, tmp_path / "vgg19.pth")
    ex = vgg19_features(["relu1_1"], weights="pretrained", local_file=tmp_path / "vgg19.pth")
    assert torch.equal(ex.body[0].weight, state["features.0.weight"])
    torch.save({**state, "head.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        vgg19_features(["relu1_1"], weights="pretrained", local_file=tmp_path / "bad.pth")
