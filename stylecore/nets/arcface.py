"""IR-SE50 ArcFace identity network and the identity loss L_ID of StyleCLIP.

The architecture and its state-dict keys are those of ``model_ir_se50.pth`` as used by
pSp, e4e and StyleCLIP (``models/facial_recognition/model_irse.py``: ``Backbone(112, 50,
mode="ir_se", drop_ratio=0.6)``, after TreB1eN/InsightFace_Pytorch). Offline, the same
architecture with seeded random weights: then L_ID measures nothing about faces, only the wiring.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from .manual_weights import ManualCheckpoint, load_torch_file, resolve_manual
from ..weights import WeightsInfo, WeightsUnavailableError, random_info

__all__ = ["ARCFACE_ENV", "IR_SE50", "IRSE50", "face_crop", "identity_loss", "load_ir_se50"]

ARCFACE_ENV = "STYLECORE_ARCFACE_WEIGHTS"
#: pSp's IR-SE50 weights (StyleCLIP README, "pretrained_models/model_ir_se50.pth"); no sha256 is published.
IR_SE50 = ManualCheckpoint(
    name="ArcFace IR-SE50 (pSp model_ir_se50.pth)",
    filename="model_ir_se50.pth",
    url="https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view",
    env_var=ARCFACE_ENV,
)
#: (in_channel, depth, number of units) of the four IR-50 stages; the first unit of each has stride 2.
IR50_STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))


class SEModule(nn.Module):
    """Squeeze-and-excitation: x · sigmoid(fc2(relu(fc1(avgpool(x))))), reduction 16."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(nn.Module):
    """Improved residual unit with SE: BN-conv-PReLU-conv(stride)-BN-SE, plus a shortcut."""

    def __init__(self, in_channel: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, 16),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE50(nn.Module):
    """``Backbone(input_size=112, num_layers=50, mode="ir_se", drop_ratio=0.6)``: (B, 3, 112, 112) -> (B, 512) unit vectors."""

    def __init__(self, drop_ratio: float = 0.6) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        units = []
        for in_c, depth, n in IR50_STAGES:
            units += [BottleneckIRSE(in_c, depth, 2)] + [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(drop_ratio), nn.Flatten(), nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (112, 112):
            raise ValueError(f"IR-SE50 expects (B, 3, 112, 112) face crops, got {tuple(x.shape)}; use face_crop()")
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


def face_crop(images: torch.Tensor) -> torch.Tensor:
    """StyleCLIP's ``IDLoss.extract_feats`` crop: avg-pool to 256, crop rows 35:223 and columns 32:220, avg-pool to 112.

    Shapes: (B, 3, H, W) generator output in [-1, 1] -> (B, 3, 112, 112), as the official code feeds it.
    """
    if images.shape[-1] != 256:
        images = F.adaptive_avg_pool2d(images, (256, 256))
    return F.adaptive_avg_pool2d(images[:, :, 35:223, 32:220], (112, 112))


def identity_loss(net: IRSE50, images: torch.Tensor, reference: torch.Tensor, reference_features: torch.Tensor | None = None) -> torch.Tensor:
    """L_ID = mean_b [1 − ⟨R(G(w))_b, R(G(w_s))_b⟩] (Patashnik et al. 2021, Eq. 3; ``criteria/id_loss.py``).

    R is the IR-SE50 embedding (unit vectors, so ⟨·,·⟩ is the cosine); the reference
    features carry no gradient. Shapes: (B, 3, H, W), (B, 3, H, W) -> scalar.
    ``reference_features`` (B, 512): R(face_crop(reference)) computed once by the caller (the
    official code recomputes it every step; the value is the same).
    """
    ref = (reference_features if reference_features is not None else net(face_crop(reference))).detach()
    return (1 - (net(face_crop(images)) * ref).sum(1)).mean()


def load_ir_se50(weights: str | None = None, local_file: str | os.PathLike[str] | None = None, local_sha256: str | None = None, seed: int = 0) -> tuple[IRSE50, WeightsInfo]:
    """The IR-SE50 network in eval mode, frozen, under the weights policy (local file or random)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = IRSE50()
    path, info = resolve_manual(IR_SE50, weights, local_file, local_sha256)
    if path is None:
        info = random_info("ArcFace IR-SE50", seed)
    else:
        state = load_torch_file(path)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsUnavailableError(f"{path} does not fit the IR-SE50 architecture (pSp's model_ir_se50.pth layout): {str(exc)[:400]}") from None
    assert info is not None
    return net.eval().requires_grad_(False), info
