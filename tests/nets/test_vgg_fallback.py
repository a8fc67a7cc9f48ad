"""weights="auto" for Gatys's normalised VGG19: vgg_conv.pth, else torchvision's VGG19 normalised (Sec. 2), else random.

No network: every download fails (the bethgelab link is reported dead, leongatys/PytorchNeuralStyleTransfer #17);
the state dicts are saved here in the upstream layouts into $TORCH_HOME/hub/checkpoints (isolated per test).
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
import torchvision

from stylecore.nets import vgg as V
from stylecore.data import sha256_file
from stylecore.weights import WeightsFallbackWarning, WeightsUnavailableError, hub_checkpoint_dir

LAYERS = ["relu1_1", "relu3_1"]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A torchvision-layout VGG19 (seed 5) and a vgg_conv.pth-layout one (seed 6), saved once."""
    tmp_path = tmp_path_factory.mktemp("upstream")
    torch.manual_seed(5)
    tv_state = torchvision.models.vgg19(weights=None).state_dict()
    tv_src = tmp_path / "vgg19-upstream.pth"
    torch.save(tv_state, tv_src)
    torch.manual_seed(6)
    net = V._vgg19_body()
    gatys_state = {f"{n}.{p}": getattr(m, p).clone() for n, m in zip(V.VGG19_LAYERS, net.features) if n.startswith("conv") for p in ("weight", "bias")}
    gatys_src = tmp_path / "vgg_conv_upstream.pth"
    torch.save(gatys_state, gatys_src)
    return (tv_src, tv_state), (gatys_src, gatys_state)


@pytest.fixture
def world(monkeypatch, upstream):
    """Downloads fail; a torchvision-layout VGG19 (seed 5) and a vgg_conv.pth-layout one are at hand."""
    tried: list[str] = []

    def dead(url, dst, hash_prefix=None, progress=True):
        tried.append(url)
        raise OSError("HTTP Error 404: Not Found")

    monkeypatch.setattr(torch.hub, "download_url_to_file", dead)
    monkeypatch.delenv("STYLECORE_OFFLINE", raising=False)
    monkeypatch.delenv("STYLECORE_VGG19_NORMALIZED_WEIGHTS", raising=False)
    monkeypatch.delenv("STYLECORE_VGG19_WEIGHTS", raising=False)
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 24, 40, generator=g)]
    monkeypatch.setattr(V, "calibration_images", lambda size, data_dir=None: {str(i): im for i, im in enumerate(images)})
    (tv_src, tv_state), (gatys_src, gatys_state) = upstream
    real = V.vgg19_checkpoint()
    monkeypatch.setattr(V, "vgg19_checkpoint", lambda: dataclasses.replace(real, sha256=sha256_file(tv_src)))
    hub_checkpoint_dir().mkdir(parents=True, exist_ok=True)
    return {"tried": tried, "tv": (tv_src, tv_state), "gatys": (gatys_src, gatys_state), "tv_name": real.filename}


def test_torchvision_normalised_when_vgg_conv_cannot_be_had(world):
    shutil.copy(world["tv"][0], hub_checkpoint_dir() / world["tv_name"])
    with pytest.warns(WeightsFallbackWarning, match="torchvision's VGG19"):
        ex = V.vgg19_features(LAYERS, "avg", weights="auto", variant="gatys_normalized")
    assert world["tried"] == [V.VGG19_VARIANTS["gatys_normalized"].checkpoint.url]  # the dead link was tried first
    assert ex.variant == "torchvision" and ex.preprocessing == "imagenet" and ex.channel_means is not None
    assert ex.weights_info.pretrained and "stand-in for vgg_conv.pth" in ex.weights_info.label and "normalised" in ex.weights_info.label
    desired = V.vgg19_features(LAYERS, "avg", weights="pretrained", variant="torchvision", normalize=True)
    assert all(torch.equal(a, b) for a, b in zip(ex.state_dict().values(), desired.state_dict().values()))
    # normalised: conv1_1 = torchvision's divided by its mean activation
    assert torch.allclose(ex.body[0].weight, world["tv"][1]["features.0.weight"] / ex.channel_means["relu1_1"][:, None, None, None])


def test_cached_vgg_conv_wins_over_torchvision(world):
    shutil.copy(world["tv"][0], hub_checkpoint_dir() / world["tv_name"])
    shutil.copy(world["gatys"][0], hub_checkpoint_dir() / "vgg_conv.pth")
    ex = V.vgg19_features(LAYERS, "avg", weights="auto", variant="gatys_normalized")
    assert ex.variant == "gatys_normalized" and ex.channel_means is None and ex.preprocessing == "caffe"
    assert torch.equal(ex.body[0].weight, world["gatys"][1]["conv1_1.weight"]) and world["tried"] == []


def test_local_vgg_conv_wins(world, monkeypatch):
    shutil.copy(world["tv"][0], hub_checkpoint_dir() / world["tv_name"])
    ex = V.vgg19_features(LAYERS, "avg", weights="auto", variant="gatys_normalized", local_file=world["gatys"][0])
    assert ex.variant == "gatys_normalized" and torch.equal(ex.body[0].weight, world["gatys"][1]["conv1_1.weight"])
    monkeypatch.setenv("STYLECORE_VGG19_NORMALIZED_WEIGHTS", str(world["gatys"][0]))
    ex = V.vgg19_features(LAYERS, "avg", weights="auto", variant="gatys_normalized")
    assert ex.variant == "gatys_normalized" and ex.weights_info.source == "local file" and world["tried"] == []


def test_random_only_when_neither_can_be_had(world):
    with pytest.warns(WeightsFallbackWarning, match="RANDOM"):
        ex = V.vgg19_features(LAYERS, "avg", weights="auto", variant="gatys_normalized")
    assert not ex.weights_info.pretrained and ex.channel_means is None
    assert len(world["tried"]) == 3  # vgg_conv.pth, torchvision's VGG19, vgg_conv.pth again for the build


def test_pretrained_policy_does_not_substitute_and_a_bad_file_is_refused(world):
    shutil.copy(world["tv"][0], hub_checkpoint_dir() / world["tv_name"])
    with pytest.raises(WeightsUnavailableError, match="vgg_conv"):
        V.vgg19_features(LAYERS, "avg", weights="pretrained", variant="gatys_normalized")
    shutil.copy(world["gatys"][0], hub_checkpoint_dir() / world["tv_name"])  # right name, wrong content
    with pytest.raises(WeightsUnavailableError, match="sha256"):
        V.vgg19_features(LAYERS, "avg", weights="auto", variant="gatys_normalized")
