"""VGG19 features addressed by the paper's layer names (``conv1_1``, ``relu4_2``, ``pool5``).

Gatys et al. 2016 (Sec. 2) describe images by the responses of VGG19's 16 convolutional and
5 pooling layers; every later notebook reuses the same extractor. Notebook 01, section
"The feature space", explains the naming.

Notes:
    The paper's "conv4_2" means the *rectified* response: the authors' Caffe model ran
    ReLU in place, so a blob named conv4_2 held relu4_2's values. Here ``conv4_2`` is the
    pre-activation and ``relu4_2`` the rectified one; the presets use ``relu*`` names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal

import torch
import torchvision
from torch import nn

from .weights import Checkpoint, WeightsInfo, build_with_weights

__all__ = ["VGG19_LAYERS", "VGGFeatures", "imagenet_normalize", "vgg19_checkpoint", "vgg19_features"]


def _layer_names() -> list[str]:
    names: list[str] = []
    for block, n_convs in enumerate((2, 2, 4, 4, 4), start=1):
        for i in range(1, n_convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


#: Names of torchvision's ``vgg19().features`` modules, in order (37 of them).
VGG19_LAYERS: tuple[str, ...] = tuple(_layer_names())

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalize(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> ImageNet-normalised input, as torchvision's VGG expects."""
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image - mean) / std


def vgg19_checkpoint() -> Checkpoint:
    """torchvision's ImageNet VGG19 (``VGG19_Weights.IMAGENET1K_V1``) as a :class:`Checkpoint`."""
    w = torchvision.models.VGG19_Weights.IMAGENET1K_V1
    return Checkpoint(name="VGG19 ImageNet (torchvision IMAGENET1K_V1)", url=w.url, env_var="STYLECORE_VGG19_WEIGHTS", license="BSD-3 (torchvision); weights: ImageNet terms")


class VGGFeatures(nn.Module):
    """Frozen VGG19 truncated after the deepest requested layer; returns {name: activation}.

    Input: (B, 3, H, W) in [0, 1]; ImageNet normalisation happens inside.
    Output: dict mapping each requested layer name to its (B, C_l, H_l, W_l) activation.
    """

    def __init__(
        self,
        vgg: torchvision.models.VGG,
        layers: Iterable[str],
        pooling: Literal["max", "avg"] = "avg",
        weights_info: WeightsInfo | None = None,
    ) -> None:
        super().__init__()
        self.layers: tuple[str, ...] = tuple(dict.fromkeys(layers))
        if not self.layers:
            raise ValueError("ask for at least one layer, e.g. ['relu4_2']")
        unknown = [n for n in self.layers if n not in VGG19_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; valid names are {', '.join(VGG19_LAYERS)}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.pooling = pooling
        self.weights_info = weights_info
        depth = max(VGG19_LAYERS.index(n) for n in self.layers) + 1
        modules: list[nn.Module] = []
        for name, module in zip(VGG19_LAYERS[:depth], vgg.features[:depth]):
            if name.startswith("relu"):
                module = nn.ReLU(inplace=False)  # in place would overwrite a requested conv output
            elif name.startswith("pool") and pooling == "avg":
                # Gatys et al. 2016, Sec. 2: "replacing the maximum pooling operation by average pooling … slightly more appealing results"
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            modules.append(module)
        self.body = nn.Sequential(*modules)
        self.requires_grad_(False)
        self.eval()

    @property
    def depth(self) -> int:
        """Number of VGG modules actually run (the network is cut after the deepest used layer)."""
        return len(self.body)

    def train(self, mode: bool = True) -> "VGGFeatures":  # frozen: always eval
        return super().train(False)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(image.shape)}")
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        x = imagenet_normalize(image)
        for name, module in zip(VGG19_LAYERS, self.body):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out


def vgg19_features(
    layers: Iterable[str],
    pooling: Literal["max", "avg"] = "avg",
    weights: str | None = None,
    local_file: str | os.PathLike[str] | None = None,
    local_sha256: str | None = None,
    seed: int = 0,
    truncate: bool = True,
) -> VGGFeatures:
    """Frozen VGG19 feature extractor for ``layers`` under the weights policy ``weights``.

    ``truncate=False`` keeps all 37 modules (only useful to measure what truncation saves).
    The returned module's ``weights_info.label`` says which weights were used.
    """
    vgg, info = build_with_weights(lambda: torchvision.models.vgg19(weights=None), vgg19_checkpoint(), weights, local_file, local_sha256, seed)
    layers = tuple(layers)
    extractor = VGGFeatures(vgg, layers if truncate else (*layers, "pool5"), pooling, info)
    if not truncate:
        extractor.layers = tuple(dict.fromkeys(layers))
    return extractor
