"""VGG19 variants (torchvision / Caffe / Gatys's normalised file) and the paper's normalisation."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from stylecore.nets import vgg as V
from stylecore.weights import WeightsUnavailableError

RELUS = [n for n in V.VGG19_LAYERS if n.startswith("relu")]


@pytest.fixture(scope="module")
def net() -> torchvision.models.VGG:
    torch.manual_seed(0)
    return torchvision.models.vgg19(weights=None).eval()


@pytest.fixture(scope="module")
def images() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.rand(1, 3, 40, 48, generator=g), torch.rand(1, 3, 32, 32, generator=g), torch.rand(2, 3, 36, 36, generator=g)]


def _naive_means(extractor: V.VGGFeatures, images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean of each filter over every image and every position, the slow way: concatenate all positions."""
    per_layer: dict[str, list[torch.Tensor]] = {}
    for image in images:
        for b in range(image.shape[0]):
            for name, f in extractor(image[b : b + 1]).items():
                # each layer position stands for (H·W)/(H_l·W_l) input positions
                rep = image.shape[-2] * image.shape[-1] // (f.shape[-2] * f.shape[-1])
                per_layer.setdefault(name, []).append(f[0].flatten(1).double().repeat_interleave(rep, dim=1))
    return {n: torch.cat(v, dim=1).mean(dim=1) for n, v in per_layer.items()}


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_normalised_network_has_mean_activation_one(net, images, pooling) -> None:
    # float64: with random weights some filters' means are 1e-5 of their layer's largest
    net, images = copy.deepcopy(net).double(), [im.double() for im in images]
    means = V.normalization_means(net, images, "imagenet", pooling)
    original = V.VGGFeatures(net, RELUS, pooling)
    naive = _naive_means(original, images)
    for name in RELUS:
        assert torch.allclose(means[name].double(), naive[name], rtol=1e-4, atol=1e-7), name
    divisors = V.effective_means(means)
    normed = V.VGGFeatures(V.normalize_vgg_(copy.deepcopy(net), divisors), RELUS, pooling)
    after = _naive_means(normed, images)
    for name in RELUS:
        alive = means[name] >= 1e-3 * means[name].median()
        assert alive.float().mean() > 0.8, name  # random weights on tiny images: a few filters never fire
        assert torch.allclose(after[name][alive], torch.ones(int(alive.sum()), dtype=torch.float64), rtol=1e-4), name
        # (almost) silent filters are divided by the layer's median, not amplified: their mean stays below 1e-3
        assert bool((after[name][~alive] < 1e-3).all()), name


def test_normalised_features_equal_original_up_to_channel_factors(net, images) -> None:
    net, images = copy.deepcopy(net).double(), [im.double() for im in images]
    means = V.effective_means(V.normalization_means(net, images, "imagenet", "avg"))
    layers = [*RELUS, "pool3", "pool5"]
    original = V.VGGFeatures(net, layers, "avg")
    normed = V.VGGFeatures(V.normalize_vgg_(copy.deepcopy(net), means), layers, "avg")
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    fo, fn = original(x), normed(x)
    for name in layers:
        relu = name if name.startswith("relu") else {"pool3": "relu3_4", "pool5": "relu5_4"}[name]
        mu = means[relu]
        assert torch.allclose(fn[name] * mu.view(1, -1, 1, 1), fo[name], rtol=1e-9, atol=1e-12 * float(fo[name].abs().max())), name


def test_caffe_preprocessing_is_bgr_0_255_minus_mean() -> None:
    x = torch.rand(1, 3, 4, 5)
    got = V.caffe_preprocess(x)
    for c_out, c_in, mean in ((0, 2, 103.939), (1, 1, 116.779), (2, 0, 123.68)):
        assert torch.allclose(got[0, c_out], x[0, c_in] * 255 - mean)


def test_caffe_variant_loads_torchvision_layout_and_uses_caffe_input(net, tmp_path) -> None:
    path = tmp_path / "vgg19-d01eb7cb.pth"
    torch.save(net.state_dict(), path)
    ex = V.vgg19_features(["relu2_1"], "max", weights="pretrained", local_file=path, variant="caffe")
    assert ex.preprocessing == "caffe" and "Caffe" in ex.weights_info.label
    for (k, v), w in zip(net.features.state_dict().items(), ex.body.state_dict().values()):
        assert torch.equal(v, w), k
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        desired = net.features[: ex.depth](V.caffe_preprocess(x))
    assert torch.allclose(ex(x)["relu2_1"], desired, rtol=1e-5, atol=1e-4)


def test_gatys_normalized_file_in_upstream_layout_loads(net, tmp_path) -> None:
    """vgg_conv.pth names convolutions conv1_1 … conv5_4 and has no classifier."""
    state = {}
    for name, module in zip(V.VGG19_LAYERS, net.features):
        if name.startswith("conv"):
            state[f"{name}.weight"], state[f"{name}.bias"] = module.weight.clone(), module.bias.clone()
    assert len(state) == 32
    path = tmp_path / "vgg_conv.pth"
    torch.save(state, path)
    ex = V.vgg19_features(["relu5_4"], "avg", weights="pretrained", local_file=path, variant="gatys_normalized")
    convs = [m for m in ex.body if isinstance(m, nn.Conv2d)]
    names = [n for n in V.VGG19_LAYERS if n.startswith("conv")]
    assert len(convs) == 16
    for name, conv in zip(names, convs):
        assert torch.equal(conv.weight, state[f"{name}.weight"]) and torch.equal(conv.bias, state[f"{name}.bias"]), name
    torch.save({**state, "fc6.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsUnavailableError, match="unexpected key 'fc6.weight'"):
        V.vgg19_features(["relu1_1"], weights="pretrained", local_file=path, variant="gatys_normalized")


def test_feature_scales_recovers_a_known_factor(net, images) -> None:
    """Without biases the network is positively homogeneous: scaling conv1_1 by k scales every layer by k."""
    a_net, b_net = copy.deepcopy(net), copy.deepcopy(net)
    for m in (*a_net.features, *b_net.features):
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        a_net.features[0].weight.mul_(3.0)
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    scales = V.feature_scales(V.VGGFeatures(a_net, layers), V.VGGFeatures(b_net, layers), images, layers)
    assert scales == pytest.approx({n: 3.0 for n in layers}, rel=1e-4)


def test_normalize_flag_uses_cache_and_labels(monkeypatch, images) -> None:
    monkeypatch.setattr(V, "calibration_images", lambda size, data_dir=None: {str(i): im for i, im in enumerate(images)})
    ex = V.vgg19_features(["relu3_1"], "avg", weights="random", normalize=True)
    assert "normalised" in ex.weights_info.label and ex.channel_means is not None
    means = _naive_means(ex, images)["relu3_1"]
    alive = means > 1e-3
    assert torch.allclose(means[alive], torch.ones_like(means[alive]), rtol=1e-4)

    def boom(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(V, "normalization_means", boom)
    again = V.vgg19_features(["relu3_1"], "avg", weights="random", normalize=True)
    assert torch.equal(again.body[-2].weight, ex.body[-2].weight)


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="variant must be one of"):
        V.vgg19_features(["relu1_1"], weights="random", variant="vgg16")


def test_caffe_x256_is_the_torch7_ports_input_on_the_same_file(net, tmp_path) -> None:
    """Luan et al.'s deepmatting_seg.lua multiplies by 256: same weights as ``caffe``, input 256/255 larger before the mean."""
    x = torch.rand(1, 3, 4, 5)
    got = V.caffe_preprocess(x, 256.0)
    for c_out, c_in, mean in ((0, 2, 103.939), (1, 1, 116.779), (2, 0, 123.68)):
        assert torch.allclose(got[0, c_out], x[0, c_in] * 256 - mean)
    path = tmp_path / "vgg19-d01eb7cb.pth"
    torch.save(net.state_dict(), path)
    a = V.vgg19_features(["relu1_1"], "max", weights="pretrained", local_file=path, variant="caffe")
    b = V.vgg19_features(["relu1_1"], "max", weights="pretrained", local_file=path, variant="caffe_x256")
    assert V.VGG19_VARIANTS["caffe_x256"].checkpoint == V.VGG19_VARIANTS["caffe"].checkpoint and b.preprocessing == "caffe_x256"
    with torch.no_grad():
        want = torch.relu(net.features[0](V.caffe_preprocess(x, 256.0)))
        assert torch.allclose(b(x)["relu1_1"], want, rtol=1e-5, atol=1e-4)
        assert not torch.allclose(a(x)["relu1_1"], want, rtol=1e-3, atol=1e-3)


def test_damaged_normalisation_cache_is_recomputed_with_one_warning(monkeypatch, images, tmp_path) -> None:
    import os
    from pathlib import Path

    from stylecore.cache import CacheWarning

    from ..faults import garble

    monkeypatch.setattr(V, "calibration_images", lambda size, data_dir=None: {str(i): im for i, im in enumerate(images)})
    ex = V.vgg19_features(["relu3_1"], "avg", weights="random", normalize=True)
    (path,) = (Path(os.environ["STYLECORE_CACHE"]) / "vgg_normalization").glob("*.pt")
    garble(path)
    with pytest.warns(CacheWarning, match="VGG19 normalisation means") as record:
        again = V.vgg19_features(["relu3_1"], "avg", weights="random", normalize=True)
    assert len([w for w in record if issubclass(w.category, CacheWarning)]) == 1
    assert torch.equal(again.body[-2].weight, ex.body[-2].weight)  # recomputed, the same normalisation
