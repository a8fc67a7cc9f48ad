"""IR-SE50: pSp's model_ir_se50.pth key layout, loading, face crop and L_ID against naive formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylecore.nets.arcface import IRSE50, face_crop, identity_loss, load_ir_se50
from stylecore.weights import WeightsUnavailableError, hub_checkpoint_dir


def ir_se50_keys() -> set[str]:
    """model_ir_se50.pth keys written out from pSp's model_irse.py / helpers.py naming."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"input_layer.0.weight", "input_layer.2.weight"} | {f"input_layer.1.{p}" for p in bn}
    stages = [(64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3)]
    i = 0
    for in_c, depth, n in stages:
        for u in range(n):
            b = f"body.{i}"
            keys |= {f"{b}.res_layer.1.weight", f"{b}.res_layer.2.weight", f"{b}.res_layer.3.weight", f"{b}.res_layer.5.fc1.weight", f"{b}.res_layer.5.fc2.weight"}
            keys |= {f"{b}.res_layer.0.{p}" for p in bn} | {f"{b}.res_layer.4.{p}" for p in bn}
            if u == 0 and in_c != depth:
                keys |= {f"{b}.shortcut_layer.0.weight"} | {f"{b}.shortcut_layer.1.{p}" for p in bn}
            i += 1
    keys |= {f"output_layer.0.{p}" for p in bn} | {"output_layer.3.weight", "output_layer.3.bias"} | {f"output_layer.4.{p}" for p in bn}
    return keys


@pytest.fixture(scope="module")
def net() -> IRSE50:
    return load_ir_se50(weights="random")[0]


def test_keys_are_psp_layout(net) -> None:
    sd = net.state_dict()
    assert set(sd) == ir_se50_keys()
    assert sd["output_layer.3.weight"].shape == (512, 25088) and sd["body.23.res_layer.5.fc1.weight"].shape == (32, 512, 1, 1)


def test_local_file_loads_every_tensor_equal(tmp_path) -> None:
    torch.manual_seed(1)
    src = IRSE50()
    with torch.no_grad():
        for name, t in src.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t).abs() + 0.1 if "running_var" in name else torch.randn_like(t))
    torch.save(src.state_dict(), tmp_path / "model_ir_se50.pth")
    net, info = load_ir_se50(weights="pretrained", local_file=tmp_path / "model_ir_se50.pth")
    for k, v in src.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    assert info.source == "local file" and not net.training and not any(p.requires_grad for p in net.parameters())
    torch.save({"body.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        load_ir_se50(local_file=tmp_path / "bad.pth")


def test_hub_folder_is_used_and_pretrained_without_file_fails(monkeypatch) -> None:
    monkeypatch.delenv("STYLECORE_ARCFACE_WEIGHTS", raising=False)
    target = hub_checkpoint_dir() / "model_ir_se50.pth"
    assert not target.exists()  # the test session's torch home is empty
    with pytest.raises(WeightsUnavailableError, match="model_ir_se50.pth"):
        load_ir_se50(weights="pretrained")
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(IRSE50().state_dict(), target)
    try:
        assert load_ir_se50(weights="pretrained")[1].source == "torch hub folder"
    finally:
        target.unlink()


def test_face_crop_is_the_official_crop() -> None:
    x = torch.randn(2, 3, 256, 256)
    assert torch.allclose(face_crop(x), F.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], 112))
    big = torch.randn(1, 3, 1024, 1024)
    assert torch.allclose(face_crop(big), face_crop(F.avg_pool2d(big, 4)), atol=1e-6)  # 1024 -> 256 is a 4×4 mean


def test_identity_loss_naive_and_properties(net) -> None:
    torch.manual_seed(0)
    a, b = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    fa, fb = net(face_crop(a)), net(face_crop(b))
    desired = sum(1 - F.cosine_similarity(fa[i], fb[i], dim=0) for i in range(2)) / 2
    assert torch.allclose(identity_loss(net, a, b), desired, atol=1e-6)
    assert identity_loss(net, a, a).abs() < 1e-5
    assert torch.allclose(identity_loss(net, a, torch.zeros_like(b), reference_features=fb), desired, atol=1e-6)  # cached reference
    a.requires_grad_(True)
    identity_loss(net, a, b).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="face_crop"):
        net(torch.zeros(1, 3, 64, 64))
