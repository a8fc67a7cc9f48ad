"""The style networks f of CLIPstyler (Kwon & Ye, CVPR 2022): the official U-Net and a lighter one.

The paper calls f a "lightweight CNN" (Sec. 3.1) and a "lightweight U-net" with "three downsample and three
upsample layers, in which the channel sizes are 16, 32 and 64" and a final sigmoid (Sec. 4.1); Suppl. A (Fig. 11)
adds residual blocks, at most 128 channels, 16 at the highest resolution, and "another skip connection between
input-output features". The official code (github.com/cyclomon/CLIPstyler, ``StyleNet.py``, class ``UNet``)
defines it, and agrees: down blocks 16/32/64, bottleneck 128, the input features concatenated before the output. :class:`StyleNet` rebuilds that architecture block by
block; :class:`LiteUNet` is the simplified U-Net this project used first, kept as a named option
(fewer FLOPs: about a third of StyleNet's at the same width). Notebook 05, section "Total loss and
training", shows both. Both take (B, 3, H, W) in [0, 1] and return (B, 3, H, W) in (0, 1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["LiteUNet", "StyleNet", "load_official_stylenet", "official_state_dict_to_stylenet", "style_network"]


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    """conv3×3 → IN → ReLU → conv3×3 → IN → ReLU; instance norm without affine parameters (PyTorch's default)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 1, 1), nn.InstanceNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1), nn.InstanceNorm2d(cout), nn.ReLU(),
    )  # fmt: skip


class ResidualBlock(nn.Module):
    """y = double_conv(x) + conv1×1(x): the official ``EncodingBlock`` (and the body of Down/Up blocks)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _double_conv(cin, cout)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.skip(x)


class DownBlock(nn.Module):
    """Residual block at full resolution, then a strided 4×4 conv halves H and W; returns (down, full)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = ResidualBlock(cin, cout)
        self.downsample = nn.Conv2d(cout, cout, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = self.body(x)
        return self.downsample(full), full


class UpBlock(nn.Module):
    """Bilinear ×2 upsampling, concatenation with the skip feature, residual block."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.body = ResidualBlock(cin + cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([self.upsample(x), skip], dim=1))


def _check_input(x: torch.Tensor, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] % 8 or x.shape[-2] % 8:
        raise ValueError(f"{name} expects (B, 3, H, W) with H, W multiples of 8, got {tuple(x.shape)}")


class StyleNet(nn.Module):
    """The official CLIPstyler U-Net (``StyleNet.UNet``, ``ngf`` = 16 base channels).

    1×1 input conv → residual block → 3 down blocks (ngf, 2ngf, 4ngf; strided-conv downsampling)
    → residual bottleneck (8ngf, at H/8) → 3 up blocks with the full-resolution skips → residual
    block on [up, input features] → 1×1 conv → sigmoid. ReLU, non-affine instance norm.
    H and W must be multiples of 8.
    """

    def __init__(self, ngf: int = 16) -> None:
        super().__init__()
        self.conv_init = nn.Conv2d(3, ngf, 1)
        self.init = ResidualBlock(ngf, ngf)
        self.down1, self.down2, self.down3 = DownBlock(ngf, ngf), DownBlock(ngf, 2 * ngf), DownBlock(2 * ngf, 4 * ngf)
        self.encoding = ResidualBlock(4 * ngf, 8 * ngf)
        self.up3, self.up2, self.up1 = UpBlock(8 * ngf, 4 * ngf), UpBlock(4 * ngf, 2 * ngf), UpBlock(2 * ngf, ngf)
        self.out = ResidualBlock(2 * ngf, ngf)
        self.conv_fin = nn.Conv2d(ngf, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "StyleNet")
        x = self.init(self.conv_init(x))  # (B, ngf, H, W)
        d1, f1 = self.down1(x)  # (B, ngf, H/2, W/2), skip (B, ngf, H, W)
        d2, f2 = self.down2(d1)  # (B, 2ngf, H/4, W/4), skip at H/2
        d3, f3 = self.down3(d2)  # (B, 4ngf, H/8, W/8), skip at H/4
        h = self.encoding(d3)  # (B, 8ngf, H/8, W/8)
        h = self.up1(self.up2(self.up3(h, f3), f2), f1)  # (B, ngf, H, W)
        h = self.out(torch.cat([h, x], dim=1))
        return torch.sigmoid(self.conv_fin(h))


_BODY_BLOCKS = ("down1", "down2", "down3", "up3", "up2", "up1")  # official Down/UpBlock hold conv/skip directly; ours nest them in .body


def official_state_dict_to_stylenet(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official ``StyleNet.UNet`` state dict to :class:`StyleNet`'s keys (exact: the same tensors).

    The official ``DownBlock``/``UpBlock`` (cyclomon/CLIPstyler ``StyleNet.py``) hold ``conv`` (Sequential: conv,
    IN, ReLU, conv, IN, ReLU -> ``conv.0``, ``conv.3``) and ``skip`` themselves; here they sit in a
    :class:`ResidualBlock` ``body``: ``down1.conv.0.weight`` -> ``down1.body.conv.0.weight``,
    ``up3.skip.bias`` -> ``up3.body.skip.bias``. All other keys (``conv_init``, ``init``, ``encoding``, ``out``,
    ``conv_fin``, ``down*.downsample``) are the same. A ``module.`` prefix (DataParallel) is dropped.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        block, _, rest = key.partition(".")
        if block in _BODY_BLOCKS and rest.split(".")[0] in ("conv", "skip"):
            key = f"{block}.body.{rest}"
        out[key] = value
    return out


def load_official_stylenet(state: Mapping[str, torch.Tensor] | str | os.PathLike[str], ngf: int = 16) -> "StyleNet":
    """A :class:`StyleNet` from an official-layout state dict (or a file of one, ``torch.save(UNet().state_dict())``).

    Raises:
        ValueError: keys or shapes that do not fit ``StyleNet.UNet(ngf)``, naming the first few.
    """
    if not isinstance(state, Mapping):
        state = torch.load(state, map_location="cpu", weights_only=True)
    net = StyleNet(ngf)
    renamed = official_state_dict_to_stylenet(state)
    missing, unexpected = sorted(set(net.state_dict()) - set(renamed)), sorted(set(renamed) - set(net.state_dict()))
    if missing or unexpected:
        raise ValueError(f"not an official StyleNet.UNet(ngf={ngf}) state dict: missing {missing[:4]}, unexpected {unexpected[:4]}")
    try:
        net.load_state_dict(renamed)
    except RuntimeError as exc:
        raise ValueError(f"official StyleNet state dict does not fit ngf={ngf}: {str(exc)[:300]}") from None
    return net.eval()


class LiteUNet(nn.Module):
    """A simplified U-Net: one conv per stage, affine IN, LeakyReLU, bilinear upsampling (this project's first f).

    Three stride-2 encoder stages with skip connections; ``width`` channels at full resolution,
    doubled per stage. Not the authors' network: kept as the cheaper named option ``"lite"``.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.2))

        c = (width, 2 * width, 4 * width, 8 * width)
        self.inc = block(3, c[0])
        self.down = nn.ModuleList([block(c[i], c[i + 1], 2) for i in range(3)])
        self.up = nn.ModuleList([block(c[i + 1] + c[i], c[i]) for i in reversed(range(3))])
        self.out = nn.Conv2d(c[0], 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, "LiteUNet")
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            skip = skips.pop()
            y = nn.functional.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return torch.sigmoid(self.out(y))


def style_network(kind: str = "official", width: int = 16) -> nn.Module:
    """``"official"`` -> :class:`StyleNet` (the authors' U-Net), ``"lite"`` -> :class:`LiteUNet`."""
    if kind == "official":
        return StyleNet(width)
    if kind == "lite":
        return LiteUNet(width)
    raise ValueError(f"style network must be 'official' (the authors' StyleNet.UNet) or 'lite' (simplified U-Net), got {kind!r}")
