"""Conditional instance normalisation and the style transfer network of Dumoulin, Shlens & Kudlur (ICLR 2017).

One network serves N styles: every instance normalisation is followed by a per-style scale
γ_s and shift β_s (Eq. 5); styles are mixed by mixing (γ, β) convexly (Sec. 4, Fig. 7).
Notebook 03 ("Conditional instance normalisation") derives the equations; ``tests/test_cin.py``
pins each function to a naive loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConditionalInstanceNorm2d",
    "StyleTransferNetwork",
    "checkerboard_energy",
    "instance_norm",
    "style_mixture",
]

Style = int | Sequence[float] | torch.Tensor
Padding = Literal["reflect", "zeros"]
Upsampling = Literal["nearest", "transposed"]


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each feature map of each image to zero mean and unit variance (Ulyanov et al. 2016).

        IN(x)_bchw = (x_bchw − μ_bc) / sqrt(σ²_bc + ε),  μ, σ² over (h, w) (biased variance)

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """
    if x.ndim != 4:
        raise ValueError(f"instance_norm expects (B, C, H, W), got {tuple(x.shape)}")
    mu = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mu) / torch.sqrt(var + eps)


def style_mixture(style: Style, n_styles: int, batch: int | None = None, convex: bool = True) -> torch.Tensor:
    """Turn a style index, a batch of indices or mixture weights into mixing weights (B, N).

    ``3`` -> one-hot row; a LongTensor (B,) -> one-hot rows; floats (N,) or (B, N) -> checked
    to be non-negative and to sum to 1 (Dumoulin et al. 2017, Sec. 4: "convex combination").

    Notes: ``convex=False`` accepts any finite weights, used as given (γ = Σ_s w_s γ_s without
    normalising): this is what Magenta's multi-style graph (and ``multistyle26.onnx``) computes;
    weights that do not sum to 1 scale γ and β, negative ones extrapolate past a style.
    """
    if isinstance(style, bool):
        raise TypeError("style must be an int index, indices, or mixture weights; got a bool")
    if isinstance(style, int):
        if not 0 <= style < n_styles:
            raise ValueError(f"style index {style} out of range: the network knows {n_styles} styles (0…{n_styles - 1})")
        style = torch.tensor([style])
    w = torch.as_tensor(style)
    if w.dtype in (torch.int64, torch.int32):
        if w.ndim != 1 or (w < 0).any() or (w >= n_styles).any():
            raise ValueError(f"style indices must be a 1-D tensor with values in 0…{n_styles - 1}, got {w.tolist()}")
        w = F.one_hot(w.long(), n_styles).float()
    w = w.float()
    if w.ndim == 1:
        w = w.unsqueeze(0)
    if w.ndim != 2 or w.shape[1] != n_styles:
        raise ValueError(f"mixture weights must have shape (N,) or (B, N) with N = {n_styles} styles, got {tuple(w.shape)}")
    if convex and ((w < 0).any() or not torch.allclose(w.sum(1), torch.ones(w.shape[0]), atol=1e-4)):
        raise ValueError(f"mixture weights must be non-negative and sum to 1 (a convex combination), got {w.tolist()}; pass convex=False for Magenta's unnormalised mixing")
    if not torch.isfinite(w).all():
        raise ValueError(f"mixture weights must be finite, got {w.tolist()}")
    if batch is not None and w.shape[0] not in (1, batch):
        raise ValueError(f"{w.shape[0]} style rows for a batch of {batch} images; give 1 or {batch}")
    return w


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm followed by a per-style affine map (Dumoulin et al. 2017, Eq. 5).

        z = γ_s · (x − μ(x)) / σ(x) + β_s,   mixture α: γ = Σ_s α_s γ_s,  β = Σ_s α_s β_s

    Parameters: ``gamma``, ``beta`` of shape (N_styles, C), initialised to 1 and 0.
    ``forward(x, style)``: x (B, C, H, W); style as accepted by :func:`style_mixture`.
    """

    def __init__(self, n_channels: int, n_styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        if n_styles < 1 or n_channels < 1:
            raise ValueError(f"need n_styles >= 1 and n_channels >= 1, got {n_styles}, {n_channels}")
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(n_styles, n_channels))
        self.beta = nn.Parameter(torch.zeros(n_styles, n_channels))

    @property
    def n_styles(self) -> int:
        return self.gamma.shape[0]

    def forward(self, x: torch.Tensor, style: Style, convex: bool = True) -> torch.Tensor:
        return self.modulate(x, style_mixture(style, self.n_styles, x.shape[0], convex))

    def modulate(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Eq. 5 with mixing weights ``w`` (B or 1, N) already checked by :func:`style_mixture`."""
        w = w.to(x.device, self.gamma.dtype)
        gamma, beta = w @ self.gamma, w @ self.beta  # (B or 1, C)
        # F.instance_norm is the fused kernel of instance_norm above (biased variance; test_cin pins them equal);
        # one style row for the whole batch goes into its affine weight, saving a pass over x (benchmarks/bench_cin.py --pretrained)
        if w.shape[0] == 1:
            return F.instance_norm(x, weight=gamma[0], bias=beta[0], eps=self.eps)
        return torch.addcmul(beta[:, :, None, None], gamma[:, :, None, None], F.instance_norm(x, eps=self.eps))


class _ConvCIN(nn.Module):
    """pad -> conv (or nearest ×2 -> pad -> conv, or transposed conv) -> CIN -> activation."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, n_styles: int, padding: Padding, up: Upsampling | None = None, act: str = "relu", bias: bool = True) -> None:
        super().__init__()
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"padding must be 'reflect' (the paper's mirror padding) or 'zeros', got {padding!r}")
        self.up, self.act = up, act
        if up == "transposed":  # the checkerboard-prone alternative (Odena et al. 2016)
            self.pad: nn.Module = nn.Identity()
            self.conv: nn.Module = nn.ConvTranspose2d(c_in, c_out, k, stride=2, padding=k // 2, output_padding=1, bias=bias)
        else:
            self.pad = nn.ReflectionPad2d(k // 2) if padding == "reflect" else nn.ZeroPad2d(k // 2)
            self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, bias=bias)
        self.norm = ConditionalInstanceNorm2d(c_out, n_styles)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up == "nearest":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm.modulate(self.conv(self.pad(x)), w)
        return {"relu": torch.relu, "sigmoid": torch.sigmoid, "none": lambda t: t}[self.act](x)


class _Residual(nn.Module):
    def __init__(self, c: int, n_styles: int, padding: Padding, bias: bool = True) -> None:
        super().__init__()
        self.a = _ConvCIN(c, c, 3, 1, n_styles, padding, bias=bias)
        self.b = _ConvCIN(c, c, 3, 1, n_styles, padding, act="none", bias=bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x, w), w)


class StyleTransferNetwork(nn.Module):
    """The N-style transformer of Dumoulin et al. 2017 (Sec. 3 and appendix; after Johnson et al. 2016).

    9×9 conv/32 → 3×3/64 stride 2 → 3×3/128 stride 2 → 5 residual blocks (128) →
    nearest ×2 + 3×3/64 → nearest ×2 + 3×3/32 → 9×9/3 → sigmoid; every conv is followed by
    a :class:`ConditionalInstanceNorm2d`; mirror (reflect) padding throughout.

    ``forward(images (B, 3, H, W) in [0, 1], style) -> (B, 3, H, W)`` in (0, 1); H, W multiples of 4.

    Notes: ``width`` < 1 scales the channel counts (32/64/128) for CPU-sized quick runs; the
    paper's network is ``width=1``. ``encoder_channels`` (3 counts; the last is the residual
    width) and ``decoder_channels`` (2 counts) override ``width``; with ``bias=False`` the
    convolutions have no bias (the instance norm's β makes it redundant) — together they hold
    Magenta's slim Android network, (32, 32, 32), 6 residual blocks, (8, 4), no bias
    (:func:`stylecore.cin.magenta.multistyle26_network`). ``padding="zeros"`` and
    ``upsampling="transposed"`` exist only for the checkerboard ablation.
    """

    def __init__(
        self,
        n_styles: int,
        width: float = 1.0,
        padding: Padding = "reflect",
        upsampling: Upsampling = "nearest",
        n_residual: int = 5,
        encoder_channels: Sequence[int] | None = None,
        decoder_channels: Sequence[int] | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if upsampling not in ("nearest", "transposed"):
            raise ValueError(f"upsampling must be 'nearest' (the paper's) or 'transposed', got {upsampling!r}")
        if not 0 < width <= 4:
            raise ValueError(f"width must be in (0, 4], got {width!r}")
        c1, c2, c3 = (max(4, round(c * width)) for c in (32, 64, 128))
        enc = tuple(int(c) for c in encoder_channels) if encoder_channels is not None else (c1, c2, c3)
        dec = tuple(int(c) for c in decoder_channels) if decoder_channels is not None else (enc[1], enc[0])
        if len(enc) != 3 or len(dec) != 2 or min(enc + dec) < 1:
            raise ValueError(f"encoder_channels needs 3 positive counts and decoder_channels 2, got {encoder_channels!r}, {decoder_channels!r}")
        # the explicit options enter the config only when used, so the width-shorthand config
        # (and the training cache keys derived from it) stay what they were before they existed
        self.config: dict[str, object] = {"n_styles": n_styles, "width": width, "padding": padding, "upsampling": upsampling, "n_residual": n_residual}
        if encoder_channels is not None:
            self.config["encoder_channels"] = list(enc)
        if decoder_channels is not None:
            self.config["decoder_channels"] = list(dec)
        if not bias:
            self.config["bias"] = False
        self.encoder = nn.ModuleList([
            _ConvCIN(3, enc[0], 9, 1, n_styles, padding, bias=bias),
            _ConvCIN(enc[0], enc[1], 3, 2, n_styles, padding, bias=bias),
            _ConvCIN(enc[1], enc[2], 3, 2, n_styles, padding, bias=bias),
        ])
        self.residuals = nn.ModuleList([_Residual(enc[2], n_styles, padding, bias) for _ in range(n_residual)])
        self.decoder = nn.ModuleList([
            _ConvCIN(enc[2], dec[0], 3, 1, n_styles, padding, up=upsampling, bias=bias),
            _ConvCIN(dec[0], dec[1], 3, 1, n_styles, padding, up=upsampling, bias=bias),
            _ConvCIN(dec[1], 3, 9, 1, n_styles, padding, act="sigmoid", bias=bias),
        ])

    @property
    def n_styles(self) -> int:
        return int(self.config["n_styles"])

    def cin_parameters(self) -> list[nn.Parameter]:
        """All γ and β tables: the only parameters that depend on the style (Sec. 3.1)."""
        return [p for m in self.modules() if isinstance(m, ConditionalInstanceNorm2d) for p in (m.gamma, m.beta)]

    def forward(self, images: torch.Tensor, style: Style, convex: bool = True) -> torch.Tensor:
        """Stylise ``images`` with ``style`` (see :func:`style_mixture`; ``convex=False``: Magenta's raw weights)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[2] % 4 or images.shape[3] % 4:
            raise ValueError(f"height and width must be multiples of 4 (two stride-2 layers), got {tuple(images.shape[2:])}; crop or resize first")
        w = style_mixture(style, self.n_styles, images.shape[0], convex)  # (B or 1, N), checked once
        x = images
        for layer in self.encoder:
            x = layer(x, w)
        for block in self.residuals:
            x = block(x, w)
        for layer in self.decoder:
            x = layer(x, w)
        return x

    def with_new_styles(self, n_new: int) -> "StyleTransferNetwork":
        """A copy that knows ``n_new`` more styles: shared weights copied, new γ = 1, β = 0 (Sec. 4, Fig. 6)."""
        new = StyleTransferNetwork(self.n_styles + n_new, **{k: v for k, v in self.config.items() if k != "n_styles"})
        state = self.state_dict()
        for name, value in new.state_dict().items():
            old = state[name]
            if old.shape == value.shape:
                value.copy_(old)
            else:  # a γ or β table: keep the old rows, the new ones stay at 1 / 0
                value[: old.shape[0]].copy_(old)
        return new


def checkerboard_energy(image: torch.Tensor, periods: Sequence[int] = (2, 4)) -> float:
    """Fraction of an image's spectral energy on the frequencies of the stride grid.

        E = Σ_{(u,v): |u| or |v| ∈ {1/p}} |X(u, v)|² / Σ_{(u,v) ≠ 0} |X(u, v)|²,  X = DFT of (x − mean)

    ``periods`` 2 and 4 are the artefact periods of two stride-2 upsamplings (Odena et al.
    2016, "Deconvolution and checkerboard artifacts"). Shapes: (1 or B, C, H, W) -> float,
    averaged over batch and channels; H, W are cropped to multiples of max(periods).
    A smooth image gives ≈ 0, a pure checkerboard 1, white noise ≈ the share of such bins.
    """
    if image.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(image.shape)}")
    m = max(periods)
    h, w = image.shape[2] // m * m, image.shape[3] // m * m
    if h == 0 or w == 0:
        raise ValueError(f"image {tuple(image.shape[2:])} is smaller than the period {m}")
    x = image[:, :, :h, :w].double()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)  # (B, C, H, W)
    fy, fx = torch.fft.fftfreq(h, dtype=torch.float64).abs(), torch.fft.fftfreq(w, dtype=torch.float64).abs()
    on_y = torch.zeros(h, dtype=torch.bool)
    on_x = torch.zeros(w, dtype=torch.bool)
    for p in periods:
        on_y |= torch.isclose(fy, torch.tensor(1.0 / p, dtype=torch.float64))
        on_x |= torch.isclose(fx, torch.tensor(1.0 / p, dtype=torch.float64))
    mask = on_y[:, None] | on_x[None, :]  # (H, W)
    total = power.sum()
    if total <= 0:
        return 0.0
    return float(power[..., mask].sum() / total)
