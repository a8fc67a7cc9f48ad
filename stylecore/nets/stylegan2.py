"""StyleGAN2 generator in pure PyTorch, with rosinality's module tree and state-dict keys.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; the layout
(every module and parameter name) is that of rosinality/stylegan2-pytorch ``model.py``, whose
converted FFHQ config-f checkpoint is the generator of StyleCLIP (Patashnik et al. 2021).
No compiled ops: ``upfirdn2d`` and the fused bias + leaky ReLU are written with plain torch
calls (rosinality's own ``upfirdn2d_native`` and ``fused_leaky_relu`` CPU fallbacks compute the
same thing), so the model runs on a CPU.

Latent spaces (notebook 04, "Latent spaces"): z (B, 512) -> W (B, 512) by the 8-layer mapping;
W+ (B, n_latent, 512) with n_latent = 2·log2(size) − 2; StyleSpace S: one vector per modulated
conv, s = modulation(w[:, k]) (Wu et al. 2021), 26 vectors / 9,088 channels at 1024 px.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .manual_weights import ManualCheckpoint, load_torch_file, resolve_manual
from ..weights import WeightsInfo, WeightsUnavailableError, random_info, resolve_policy

__all__ = [
    "CONFIGS",
    "STYLEGAN2_FFHQ",
    "Generator",
    "build_generator",
    "choose_config",
    "load_stylegan2",
    "ModulatedConv2d",
    "fused_leaky_relu",
    "stylespace_dims",
    "truncate",
    "upfirdn2d",
]


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative crops), FIR-filter with ``kernel``, downsample.

    Shapes: (B, C, H, W) -> (B, C, (H·up + p0 + p1 − kh) // down + 1, …). Same result as
    rosinality's ``upfirdn2d_native`` (the kernel is flipped: a true convolution).
    """
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(b * c, 1, h, w)
    if up > 1:
        z = out.new_zeros(b * c, 1, h, up, w, up)
        z[:, :, :, 0, :, 0] = out
        out = z.reshape(b * c, 1, h * up, w * up)
    p0, p1 = pad
    out = F.pad(out, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    out = out[:, :, max(-p0, 0) : out.shape[2] - max(-p1, 0), max(-p0, 0) : out.shape[3] - max(-p1, 0)]
    out = F.conv2d(out, torch.flip(kernel, [0, 1]).view(1, 1, kh, kw).to(out.dtype))
    out = out[:, :, ::down, ::down]
    return out.reshape(b, c, out.shape[2], out.shape[3])


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2, scale: float = 2**0.5) -> torch.Tensor:
    """√2 · leaky_relu(x + bias, 0.2), bias on the channel dim 1 (rosinality ``op/fused_act.py``).

    Notes: for 3-D input (B, L, D), as the StyleCLIP mapper applies EqualLinear to W+ slices,
    the bias goes on the last dim, as in StyleCLIP's ``models/stylegan2/op/fused_act.py``.
    """
    shape = [1, 1, -1] if x.ndim == 3 else [1, -1] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope) * scale


def _make_kernel(k: Sequence[int]) -> torch.Tensor:
    t = torch.tensor(k, dtype=torch.float32)
    t = t[None, :] * t[:, None] if t.ndim == 1 else t
    return t / t.sum()


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: y = x (W·lr_mul/√in)ᵀ + b·lr_mul."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0, activation: str | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, bias) if bias is not None else F.leaky_relu(out, 0.2) * 2**0.5
        return F.linear(x, self.weight * self.scale, bias=bias)


class Blur(nn.Module):
    def __init__(self, kernel: Sequence[int], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        k = _make_kernel(kernel) * (upsample_factor**2 if upsample_factor > 1 else 1)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    def __init__(self, kernel: Sequence[int], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", _make_kernel(kernel) * factor**2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Modulated convolution: w' = w · s (per input channel), demodulated by 1/√(Σ w'² + ε).

    ``forward(x, s)`` takes the StyleSpace vector s = ``self.modulation(w)`` (B, in_channel), so
    that global directions can edit s directly. Karras et al. 2020, Eq. 1-3.
    Notes: computed as (x·s) * W then · demod (rosinality's ``fused=False`` path), one shared
    weight for the batch; equal to the grouped form up to rounding.
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, demodulate: bool = True, upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.kernel_size, self.in_channel, self.out_channel = kernel_size, in_channel, out_channel
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        weight = self.scale * self.weight[0]  # (out, in, k, k)
        x = x * s.view(b, self.in_channel, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            demod = torch.rsqrt((weight.unsqueeze(0) * s.view(b, 1, -1, 1, 1)).pow(2).sum([2, 3, 4]) + 1e-8)  # (B, out)
            out = out * demod.view(b, self.out_channel, 1, 1)
        return out


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, s), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True, blur_kernel: Sequence[int] = (1, 3, 3, 1)) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, s: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, s) + self.bias
        return out + self.upsample(skip) if skip is not None else out


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """Truncation trick w' = w̄ + ψ (w − w̄) (Karras et al. 2019, Sec. 3; StyleCLIP ψ = 0.7).

    ``cutoff``: for W+ input (B, L, D), truncate only layers < cutoff (the official StyleCLIP
    global-directions sampler, ``GetCode.py``, uses ψ 0.7 with cutoff 8).
    """
    out = w_avg + psi * (w - w_avg)
    if cutoff is None:
        return out
    if w.ndim != 3:
        raise ValueError("truncation cutoff needs W+ latents of shape (B, n_latent, D)")
    keep = torch.arange(w.shape[1], device=w.device) < cutoff
    return torch.where(keep.view(1, -1, 1), out, w)


class Generator(nn.Module):
    """rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)``, same keys.

    ``channels`` overrides rosinality's resolution -> width table (tiny offline configs only;
    a checkpoint made with the default table loads unchanged).
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2, blur_kernel: Sequence[int] = (1, 3, 3, 1), lr_mlp: float = 0.01, channels: dict[int, int] | None = None) -> None:
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 8, got {size}")
        self.size, self.style_dim, self.n_mlp, self.channel_multiplier = size, style_dim, n_mlp, channel_multiplier
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp)])
        cm = channel_multiplier
        self.channels = channels or {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs, self.upsamples, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        for k in range(self.num_layers):
            res = 2 ** ((k + 5) // 2)
            self.noises.register_buffer(f"noise_{k}", torch.randn(1, 1, res, res))
        in_ch = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_ch = self.channels[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim))
            in_ch = out_ch
        self.n_latent = self.log_size * 2 - 2

    # --- latent spaces -------------------------------------------------------------------
    def style_layers(self) -> list[tuple[str, ModulatedConv2d, int]]:
        """StyleSpace order: (name, modulated conv, W+ index): conv1, to_rgb1, then per resolution conv-up, conv, to_rgb."""
        out = [("conv1", self.conv1.conv, 0), ("to_rgb1", self.to_rgb1.conv, 1)]
        for j, rgb in enumerate(self.to_rgbs):
            out += [(f"convs.{2 * j}", self.convs[2 * j].conv, 1 + 2 * j), (f"convs.{2 * j + 1}", self.convs[2 * j + 1].conv, 2 + 2 * j), (f"to_rgbs.{j}", rgb.conv, 3 + 2 * j)]
        return out

    def get_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Mapping network f: z (B, D) -> w (B, D)."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n_latent: int = 4096) -> torch.Tensor:
        """w̄ ≈ mean of f(z) over n_latent samples, (1, D): rosinality's fallback without ``latent_avg``."""
        z = torch.randn(n_latent, self.style_dim, device=self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    def w_plus(self, w: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, n_latent, D) by repetition; W+ input passes through (checked)."""
        if w.ndim == 2:
            return w.unsqueeze(1).repeat(1, self.n_latent, 1)
        if w.ndim != 3 or w.shape[1] != self.n_latent:
            raise ValueError(f"W+ latents must have shape (B, {self.n_latent}, {self.style_dim}), got {tuple(w.shape)}")
        return w

    def w_to_s(self, w: torch.Tensor) -> list[torch.Tensor]:
        """StyleSpace: s_k = A_k(w[:, idx_k]) for every modulated conv (26 vectors at 1024 px)."""
        wp = self.w_plus(w)
        return [conv.modulation(wp[:, idx]) for _, conv, idx in self.style_layers()]

    def make_noise(self) -> list[torch.Tensor]:
        dev = self.input.input.device
        return [torch.randn(1, 1, 2 ** ((k + 5) // 2), 2 ** ((k + 5) // 2), device=dev) for k in range(self.num_layers)]

    def fixed_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{k}") for k in range(self.num_layers)]

    # --- synthesis -----------------------------------------------------------------------
    def synthesis(self, s: Sequence[torch.Tensor], noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Image from StyleSpace vectors: list of (B, C_k) in :meth:`style_layers` order -> (B, 3, size, size) in ≈[-1, 1]."""
        if len(s) != 3 * len(self.to_rgbs) + 2:
            raise ValueError(f"expected {3 * len(self.to_rgbs) + 2} StyleSpace vectors, got {len(s)}")
        noise = list(noise) if noise is not None else [None] * self.num_layers
        out = self.conv1(self.input(s[0].shape[0]), s[0], noise[0])
        skip = self.to_rgb1(out, s[1])
        for j, rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * j](out, s[2 + 3 * j], noise[1 + 2 * j])
            out = self.convs[2 * j + 1](out, s[3 + 3 * j], noise[2 + 2 * j])
            skip = rgb(out, s[4 + 3 * j], skip)
        return skip

    def forward(
        self,
        styles: Sequence[torch.Tensor],
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        input_is_latent: bool = False,
        noise: Sequence[torch.Tensor | None] | None = None,
        randomize_noise: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """rosinality's call: ``G([z])`` or ``G([w_plus], input_is_latent=True, randomize_noise=False)`` -> (image, W+ or None)."""
        if not input_is_latent:
            styles = [self.style(z) for z in styles]
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent (the checkpoint's latent_avg, or G.mean_latent(4096))")
            styles = [truncate(st, truncation_latent, truncation) for st in styles]
        if len(styles) == 1:
            latent = self.w_plus(styles[0])
        else:
            k = inject_index if inject_index is not None else int(torch.randint(1, self.n_latent, ()).item())
            latent = torch.cat([self.w_plus(styles[0])[:, :k], self.w_plus(styles[1])[:, k:]], 1)
        if noise is None:
            noise = None if randomize_noise else self.fixed_noise()
        image = self.synthesis(self.w_to_s(latent), noise)
        return image, (latent if return_latents else None)


def stylespace_dims(size: int = 1024, style_dim: int = 512, channel_multiplier: int = 2, channels: dict[int, int] | None = None) -> list[int]:
    """Channel count of every StyleSpace vector, from the architecture built on the meta device (no memory)."""
    with torch.device("meta"):
        g = Generator(size, style_dim, n_mlp=1, channel_multiplier=channel_multiplier, channels=channels)
    return [conv.in_channel for _, conv, _ in g.style_layers()]



# --- configurations and checkpoints --------------------------------------------------------
STYLEGAN2_ENV = "STYLECORE_STYLEGAN2_WEIGHTS"
#: The paper's generator: NVIDIA's FFHQ config-f at 1024 px converted by rosinality's
#: ``convert_weight.py`` to ``{"g_ema": state dict, "latent_avg": (512,)}``; StyleCLIP's
#: ``utils.py`` fetches this Google-Drive file. No sha256 is published upstream: the digest of
#: the file used is recorded in its WeightsInfo.
STYLEGAN2_FFHQ = ManualCheckpoint(
    name="StyleGAN2 FFHQ config-f 1024 (rosinality conversion)",
    filename="stylegan2-ffhq-config-f.pt",
    url="https://drive.google.com/uc?id=1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT",
    env_var=STYLEGAN2_ENV,
)
#: Generator configurations by name: the paper's, and a tiny one for offline quick mode.
CONFIGS: dict[str, dict[str, Any]] = {
    "ffhq-1024": {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2},
    "tiny-64": {"size": 64, "style_dim": 64, "n_mlp": 2, "channel_multiplier": 1, "channels": {4: 64, 8: 64, 16: 32, 32: 16, 64: 8}},
}


def choose_config(config: str, device: torch.device | str, local_file: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """The generator configuration a run uses, and why (one sentence to show).

    ``"auto"`` picks the paper's ``ffhq-1024`` on a GPU or when a checkpoint file is given, and
    ``tiny-64`` on a CPU: on 2 cores one 1024 px latent-optimisation step (synthesis, CLIP,
    backward) takes 11.2 s and one synthesis 3.7 s (``benchmarks/bench_styleclip.py --configs
    ffhq-1024``), and the global directions' relevance needs 20 syntheses per channel for
    thousands of channels, so the paper's generator does not fit a CPU run of minutes.
    Any other value must be a :data:`CONFIGS` key and is used as given.
    """
    if config != "auto":
        if config not in CONFIGS:
            raise ValueError(f"unknown generator config {config!r}; use 'auto' or one of {sorted(CONFIGS)}")
        return config, f"{config} (as given)"
    if torch.device(device).type == "cuda":
        return "ffhq-1024", "auto: ffhq-1024, the paper's generator, on the GPU"
    if local_file:
        return "ffhq-1024", f"auto: ffhq-1024 for the checkpoint {local_file} (on a CPU: slow)"
    return "tiny-64", ("auto: tiny-64 on a CPU — the paper's 1024 px generator costs ≈ 11 s per optimisation step on 2 cores and "
                       "days of relevance preprocessing; -p generator_config ffhq-1024 runs it anyway, -p device cuda on a GPU")


def build_generator(config: str = "ffhq-1024") -> Generator:
    if config not in CONFIGS:
        raise ValueError(f"unknown generator config {config!r}; one of {sorted(CONFIGS)}")
    return Generator(**CONFIGS[config])


def load_stylegan2(
    config: str = "ffhq-1024",
    weights: str | None = None,
    local_file: str | os.PathLike[str] | None = None,
    local_sha256: str | None = None,
    seed: int = 0,
) -> tuple[Generator, torch.Tensor, WeightsInfo]:
    """(generator in eval mode, w̄ (1, D), WeightsInfo) under the weights policy.

    The file is a rosinality checkpoint ``{"g_ema": …, "latent_avg": …}``; a training checkpoint
    without ``latent_avg`` falls back to ``G.mean_latent(4096)`` (as StyleCLIP's code does).
    ``config="tiny-64"`` is offline only (no published weights; random unless a local file is given).
    Raises:
        WeightsUnavailableError: policy "pretrained" without a file, or a file that does not fit.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = build_generator(config).eval()
        random_avg = g.mean_latent(4096)
    if config != "ffhq-1024" and local_file is None:
        if resolve_policy(weights) == "pretrained":
            raise WeightsUnavailableError(f"config {config!r} is an offline test configuration without published weights; use weights='random' or pass local_file")
        return g, random_avg, random_info(f"StyleGAN2 {config}", seed)
    path, info = resolve_manual(STYLEGAN2_FFHQ, weights, local_file, local_sha256)
    if path is None:
        return g, random_avg, random_info(f"StyleGAN2 {config}", seed)
    ckpt = load_torch_file(path)
    if "g_ema" not in ckpt:
        raise WeightsUnavailableError(f"{path} has no 'g_ema' entry (keys: {sorted(ckpt)[:8]}); expected a rosinality stylegan2-pytorch checkpoint")
    try:
        g.load_state_dict(ckpt["g_ema"], strict=True)
    except RuntimeError as exc:
        raise WeightsUnavailableError(f"{path} does not fit the StyleGAN2 {config} architecture: {str(exc)[:400]}") from None
    if "latent_avg" in ckpt:
        w_avg = ckpt["latent_avg"].float().reshape(1, -1)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            w_avg = g.mean_latent(4096)
    assert info is not None
    return g, w_avg, info
