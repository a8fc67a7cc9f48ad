"""The weights policy, checksums, and VGG19 loading through the real torchvision/torch.hub path."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from stylecore.nets import vgg as vgg_module
from stylecore.data import sha256_file
from stylecore.weights import (
    Checkpoint,
    WeightsFallbackWarning,
    WeightsUnavailableError,
    hub_checkpoint_dir,
    load_state_dict_file,
    resolve_checkpoint,
    resolve_policy,
)

class Payload:
    """An arbitrary object: pickling it stores code references that weights_only refuses to run."""


FAKE = Checkpoint(name="Fake", url="https://example.invalid/models/fake-0123abcd.pth", env_var="STYLECORE_FAKE_WEIGHTS")


def test_policy_from_argument_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_policy() == "auto"
    monkeypatch.setenv("STYLECORE_WEIGHTS", "random")
    assert resolve_policy() == "random"
    assert resolve_policy("pretrained") == "pretrained"
    with pytest.raises(ValueError, match="auto"):
        resolve_policy("imagenet")
    monkeypatch.setenv("STYLECORE_WEIGHTS", "bogus")
    with pytest.raises(ValueError, match="STYLECORE_WEIGHTS"):
        resolve_policy()


def test_hash_prefix_from_torch_hub_file_name() -> None:
    assert FAKE.sha256_prefix == "0123abcd"
    assert vgg_module.vgg19_checkpoint().sha256_prefix == "dcbb9e9d"
    assert vgg_module.vgg19_checkpoint().filename == "vgg19-dcbb9e9d.pth"


def test_auto_falls_back_to_random_with_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECORE_OFFLINE", "1")
    with pytest.warns(WeightsFallbackWarning, match="RANDOM weights"):
        path, info = resolve_checkpoint(FAKE, "auto")
    assert path is None and info is None


def test_auto_falls_back_when_download_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.delenv("STYLECORE_OFFLINE", raising=False)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    with pytest.warns(WeightsFallbackWarning, match="network unreachable"):
        assert resolve_checkpoint(FAKE, "auto") == (None, None)
    with pytest.raises(WeightsUnavailableError, match="STYLECORE_FAKE_WEIGHTS"):
        resolve_checkpoint(FAKE, "pretrained")


def test_random_policy_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("random policy must not download"))
    assert resolve_checkpoint(FAKE, "random") == (None, None)


def test_local_file_override_with_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "mine.pth"
    torch.save({"w": torch.ones(2)}, f)
    digest = sha256_file(f)
    path, info = resolve_checkpoint(FAKE, "pretrained", local_file=f, local_sha256=digest)
    assert path == f and info is not None and info.source == "local file" and info.sha256 == digest
    with pytest.raises(WeightsUnavailableError, match="sha256"):
        resolve_checkpoint(FAKE, "pretrained", local_file=f, local_sha256="ff" * 32)
    monkeypatch.setenv("STYLECORE_FAKE_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        resolve_checkpoint(FAKE, "auto")


def test_state_dicts_load_with_weights_only(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pth")
    assert torch.equal(load_state_dict_file(tmp_path / "ok.pth")["w"], torch.ones(2))
    torch.save({"w": Payload()}, tmp_path / "code.pth")
    with pytest.raises(WeightsUnavailableError, match="not a loadable"):
        load_state_dict_file(tmp_path / "code.pth")
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsUnavailableError, match="not a state dict"):
        load_state_dict_file(tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(WeightsUnavailableError):
        load_state_dict_file(tmp_path / "junk.pth")


@pytest.fixture(scope="module")
def vgg19_upstream_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A VGG19 state dict in torchvision's exact key format (features.N.*, classifier.N.*), seed 123."""
    torch.manual_seed(123)
    state = torchvision.models.vgg19(weights=None).state_dict()
    path = tmp_path_factory.mktemp("upstream") / "vgg19-upstream.pth"
    torch.save(state, path)
    return path, state


def test_vgg19_through_download_then_cache(vgg19_upstream_file: tuple[Path, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The path a real download takes: torch.hub.download_url_to_file -> hash check -> weights_only load -> strict load."""
    src, state = vgg19_upstream_file
    real = vgg_module.vgg19_checkpoint()
    digest = sha256_file(src)
    calls: list[tuple[str, str, str | None]] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append((url, dst, hash_prefix))
        shutil.copy(src, dst)  # stands in for the network

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.delenv("STYLECORE_OFFLINE", raising=False)
    monkeypatch.setattr(vgg_module, "vgg19_checkpoint", lambda: dataclasses.replace(real, sha256=digest))

    ex = vgg_module.vgg19_features(["relu1_1", "relu5_1"], weights="pretrained")
    assert calls == [(real.url, str(hub_checkpoint_dir() / "vgg19-dcbb9e9d.pth"), digest)]
    assert ex.weights_info is not None and ex.weights_info.source == "download" and ex.weights_info.sha256 == digest
    assert torch.equal(ex.body[0].weight, state["features.0.weight"])
    assert torch.equal(ex.body[-2].weight, state["features.28.weight"])  # conv5_1

    again = vgg_module.vgg19_features(["relu1_1"], weights="auto")
    assert len(calls) == 1 and again.weights_info.source == "torch hub cache"
    assert "pretrained" in again.weights_info.label and digest[:12] in again.weights_info.label


def test_vgg19_cached_file_with_wrong_hash_is_refused(vgg19_upstream_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    src, _ = vgg19_upstream_file
    hub_checkpoint_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(src, hub_checkpoint_dir() / "vgg19-dcbb9e9d.pth")  # right name, wrong content
    with pytest.raises(WeightsUnavailableError, match="dcbb9e9d"):
        vgg_module.vgg19_features(["relu1_1"], weights="auto")


def test_vgg19_local_override_env(vgg19_upstream_file: tuple[Path, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch) -> None:
    src, state = vgg19_upstream_file
    monkeypatch.setenv("STYLECORE_VGG19_WEIGHTS", str(src))
    ex = vgg_module.vgg19_features(["relu2_1"], weights="pretrained")
    assert ex.weights_info.source == "local file"
    assert torch.equal(ex.body[2].weight, state["features.2.weight"])


def test_state_dict_of_other_architecture_is_a_clear_error(tmp_path: Path) -> None:
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), tmp_path / "vgg16.pth")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        vgg_module.vgg19_features(["relu1_1"], weights="pretrained", local_file=tmp_path / "vgg16.pth")


def test_truncated_weights_file_is_one_clear_error(tmp_path: Path) -> None:
    from .faults import truncate

    torch.save({"w": torch.ones(1000)}, tmp_path / "cut.pth")
    truncate(tmp_path / "cut.pth")
    with pytest.raises(WeightsUnavailableError, match="cut.pth"):
        load_state_dict_file(tmp_path / "cut.pth")
