"""The AdaIN encoder–decoder (Huang & Belongie, ICCV 2017) in the layout of its PyTorch port.

CLIPstyler's fast variant (Kwon & Ye 2022, Sec. 5.1 and Suppl. A; official ``train_fast.py`` / ``fast_stylenet.py``)
starts from AdaIN's pretrained pair: the "normalised" VGG19 encoder ``vgg_normalised.pth`` cut
after relu4_1, and the mirror decoder ``decoder.pth``, both from github.com/naoto0804/pytorch-AdaIN
(release v0.0.0). The modules here are ``nn.Sequential`` stacks whose state-dict keys are the
upstream ones ("0.weight", "2.weight", … for the encoder; "1.weight", "5.weight", … for the
decoder), so those files load with ``strict=True``. Weights go through the project's policy
(:mod:`stylecore.weights`): a local file (argument or environment variable), the torch hub cache,
a download, or — offline — the same architecture with seeded random weights, said so in the label.

:class:`AdaINCode` is the "CLIP + AdaIN code" alternative of the paper's Fig. 7: the per-channel
mean and standard deviation fed to the decoder are optimised instead of a network.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..weights import Checkpoint, WeightsInfo, build_with_weights

__all__ = [
    "ADAIN_DECODER",
    "ADAIN_VGG",
    "AdaINCode",
    "AdaINEncoder",
    "adain_decoder",
    "adain_vgg",
    "adaptive_instance_norm",
    "load_adain_decoder",
    "load_adain_encoder",
]

_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"
ADAIN_VGG = Checkpoint(
    name="AdaIN VGG19 encoder (vgg_normalised.pth)", url=f"{_RELEASE}/vgg_normalised.pth", env_var="STYLECORE_ADAIN_VGG_WEIGHTS",
    license="MIT (naoto0804/pytorch-AdaIN); converted from Huang & Belongie's Torch model",
)  # fmt: skip
ADAIN_DECODER = Checkpoint(
    name="AdaIN decoder (decoder.pth)", url=f"{_RELEASE}/decoder.pth", env_var="STYLECORE_ADAIN_DECODER_WEIGHTS",
    license="MIT (naoto0804/pytorch-AdaIN)",
)  # fmt: skip
RELU4_1 = 31  # modules [:31] of the encoder end at relu4_1 (fast_stylenet.Net: enc_1 … enc_4)


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]


def _vgg_init(net: nn.Sequential) -> nn.Sequential:
    """torchvision's VGG initialisation (Kaiming normal, fan_out; zero bias) for the random-weights case.

    PyTorch's default conv init shrinks activations layer by layer: with it a random encoder's
    relu4_1 is ~0 and the decoder's output a flat colour. Pretrained files overwrite all of this.
    """
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net


def adain_vgg() -> nn.Sequential:
    """The full "normalised" VGG19 of AdaIN (53 modules, input RGB in [0, 1]; the 1×1 conv first does the Caffe preprocessing)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    cin = 3
    for block, (n_convs, width) in enumerate(((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))):
        for _ in range(n_convs):
            layers += _conv(cin, width)
            cin = width
        if block < 4:
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
    return _vgg_init(nn.Sequential(*layers))


def adain_decoder() -> nn.Sequential:
    """AdaIN's decoder: relu4_1 features (B, 512, h, w) -> image (B, 3, 8h, 8w); no output activation (as upstream)."""
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    return _vgg_init(nn.Sequential(
        *_conv(512, 256), up(),
        *_conv(256, 256), *_conv(256, 256), *_conv(256, 256), *_conv(256, 128), up(),
        *_conv(128, 128), *_conv(128, 64), up(),
        *_conv(64, 64), nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3),
    ))  # fmt: skip


class AdaINEncoder(nn.Module):
    """Frozen AdaIN VGG19 up to relu4_1: (B, 3, H, W) in [0, 1] -> (B, 512, H/8, W/8)."""

    def __init__(self, vgg: nn.Sequential, weights_info: WeightsInfo | None = None) -> None:
        super().__init__()
        if len(vgg) < RELU4_1:
            raise ValueError(f"the AdaIN VGG needs at least {RELU4_1} modules (to relu4_1), got {len(vgg)}")
        self.body = nn.Sequential(*list(vgg.children())[:RELU4_1])
        self.weights_info = weights_info
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "AdaINEncoder":  # frozen: always eval
        return super().train(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W) in [0, 1], got {tuple(image.shape)}")
        return self.body(image)


def load_adain_encoder(weights: str | None = None, local_file: str | os.PathLike[str] | None = None, local_sha256: str | None = None, seed: int = 0) -> AdaINEncoder:
    """AdaIN's encoder under the weights policy; a local file must be an upstream ``vgg_normalised.pth`` state dict."""
    vgg, info = build_with_weights(adain_vgg, ADAIN_VGG, weights, local_file, local_sha256, seed)
    return AdaINEncoder(vgg, info)


def load_adain_decoder(weights: str | None = None, local_file: str | os.PathLike[str] | None = None, local_sha256: str | None = None, seed: int = 0) -> tuple[nn.Sequential, WeightsInfo]:
    """AdaIN's decoder under the weights policy; a local file must be an upstream ``decoder.pth`` state dict."""
    return build_with_weights(adain_decoder, ADAIN_DECODER, weights, local_file, local_sha256, seed)


def adaptive_instance_norm(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN(x; μ, σ) = σ · (x − μ(x)) / σ(x) + μ (Huang & Belongie 2017, Eq. 8), statistics per sample and channel.

    Shapes: ``features`` (B, C, H, W); ``mean``, ``std`` broadcast to (B, C, 1, 1). σ(x) is the
    unbiased standard deviation + eps, as in the PyTorch port's ``calc_mean_std``.
    """
    b, c = features.shape[:2]
    flat = features.reshape(b, c, -1)
    mu = flat.mean(-1).view(b, c, 1, 1)
    sigma = (flat.var(-1) + eps).sqrt().view(b, c, 1, 1)
    return std * (features - mu) / sigma + mean


class AdaINCode(nn.Module):
    """Fig. 7's "CLIP + AdaIN code": y = D(AdaIN(E(I_c); μ, σ)), with only (μ, σ) ∈ R^512 × R^512 trained.

    (μ, σ) start at the content's own relu4_1 statistics, so the first output is D(E(I_c)); the
    output is clamped to [0, 1]. Encoder and decoder are frozen.
    """

    def __init__(self, encoder: AdaINEncoder, decoder: nn.Sequential, content: torch.Tensor) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder.requires_grad_(False).eval()
        with torch.no_grad():
            f = encoder(content)  # (1, 512, h, w)
        self.register_buffer("features", f)
        flat = f.reshape(1, f.shape[1], -1)
        self.mean = nn.Parameter(flat.mean(-1).view(1, -1, 1, 1).clone())
        self.std = nn.Parameter((flat.var(-1) + 1e-5).sqrt().view(1, -1, 1, 1).clone())

    def forward(self) -> torch.Tensor:
        return self.decoder(adaptive_instance_norm(self.features, self.mean, self.std)).clamp(0, 1)
