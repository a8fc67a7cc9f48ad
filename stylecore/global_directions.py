"""StyleCLIP global directions: text -> StyleSpace direction, no training (Patashnik et al. 2021, Sec. 6).

Official code: ``global_directions/`` (TensorFlow) and ``global_torch/`` in orpatashnik/StyleCLIP:
``GetCode.py`` (StyleSpace mean/std), ``SingleChannel.py`` (channel relevance ``fs3``),
``MapTS.py`` (``GetDt`` text direction, ``GetBoundary`` β threshold), ``manipulate.py`` (s + α Δs).
Everything works on the *flat* StyleSpace without toRGB layers (6,048 channels at 1024 px).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .clip_guidance import ClipGuide, text_embedding
from .images import atomic_path
from .stylegan2 import Generator, truncate

__all__ = [
    "GLOBAL_DEFAULTS",
    "active_channels",
    "apply_direction",
    "channel_relevance",
    "global_direction",
    "manipulated_layers",
    "sample_stylespace",
    "stylespace_stats",
    "text_direction",
]

#: value, source.
GLOBAL_DEFAULTS = {
    "stats_samples": (100_000, "GetCode.py num_img (S mean/std)"),
    "stats_truncation": (0.7, "GetCode.py truncation_psi, truncation_cutoff 8"),
    "relevance_images": (100, "SingleChannel.py num_images"),
    "relevance_sigma": (5.0, "SingleChannel.py M.alpha=[-5, 5] (×σ of the channel)"),
    "beta": (0.15, "StyleCLIP_global.ipynb (paper: β ∈ [0.08, 0.3])"),
    "alpha": (4.1, "StyleCLIP_global.ipynb"),
}


def manipulated_layers(generator: Generator) -> list[int]:
    """Indices of the StyleSpace vectors that global directions edit: all but the toRGB layers."""
    return [i for i, (name, _, _) in enumerate(generator.style_layers()) if "rgb" not in name]


@torch.no_grad()
def sample_stylespace(generator: Generator, n: int, w_avg: torch.Tensor, truncation: float = 0.7, cutoff: int | None = 8, seed: int = 0, batch: int = 256) -> list[torch.Tensor]:
    """StyleSpace codes of n random images: z -> w -> W+ truncated (ψ on layers < cutoff) -> s. List of (n, C_k)."""
    g = torch.Generator().manual_seed(seed)
    chunks: list[list[torch.Tensor]] = []
    for start in range(0, n, batch):
        z = torch.randn(min(batch, n - start), generator.style_dim, generator=g)
        wp = truncate(generator.w_plus(generator.get_latent(z)), w_avg, truncation, cutoff)
        chunks.append(generator.w_to_s(wp))
    return [torch.cat(parts) for parts in zip(*chunks)]


def stylespace_stats(codes: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-channel mean and std (population, ``np.std``) of StyleSpace codes: lists of (C_k,)."""
    return [c.mean(0) for c in codes], [c.std(0, unbiased=False) for c in codes]


def _encode(guide: ClipGuide, images: torch.Tensor) -> torch.Tensor:
    return guide.encode_images(((images + 1) / 2).clamp(0, 1))


@torch.no_grad()
def channel_relevance(
    generator: Generator,
    guide: ClipGuide,
    codes: Sequence[torch.Tensor],
    mean: Sequence[torch.Tensor],
    std: Sequence[torch.Tensor],
    sigma: float = 5.0,
    batch: int = 32,
    layers: Sequence[int] | None = None,
    cache: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
) -> torch.Tensor:
    """Relevance of every channel to CLIP directions: the official ``fs3``, shape (n_channels, D).

    For channel c of layer l and image i: set s_lc to its mean, render with s_lc ± σ·std_lc,
    f± = CLIP image embeddings (unit); d_i = normalise(f+ − f−); fs3_c = normalise(mean_i d_i)
    (``SingleChannel.py`` ``GetFs``). ``codes`` are the StyleSpace codes of the images used
    (the official code uses 100). Rows follow :func:`manipulated_layers` order, channel by channel;
    channels of layers not in ``layers`` (default: all manipulated layers) get zero rows, so
    they never pass a β threshold. ``cache``: a file where finished layers are stored; a rerun
    resumes from it, and finished layers are read back instead of recomputed.
    Notes: the official FFHQ run computes layers with index ≤ 16 (up to 128 px): ``layers=[l for
    l in manipulated_layers(G) if l <= 16]``.
    """
    every = manipulated_layers(generator)
    wanted = every if layers is None else list(layers)
    if set(wanted) - set(every):
        raise ValueError(f"layers {sorted(set(wanted) - set(every))} are toRGB or out of range; manipulated layers: {every}")
    path = Path(cache) if cache is not None else None
    done: dict[int, torch.Tensor] = {}
    if path is not None and path.exists():
        done = {int(k): v for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    noise = generator.fixed_noise()
    n_img = codes[0].shape[0]
    todo = [l for l in wanted if l not in done]
    bar = tqdm(total=sum(codes[l].shape[1] for l in todo), desc="channel relevance", disable=not show_progress)
    per_chunk = max(1, batch // (2 * n_img))
    for l in todo:
        n_ch = codes[l].shape[1]
        rows = []
        for c0 in range(0, n_ch, per_chunk):
            chans = torch.arange(c0, min(n_ch, c0 + per_chunk))
            k = len(chans)
            # batch layout: (channel, sign, image)
            s = [t.repeat(2 * k, 1) for t in codes]
            sign = torch.tensor([-1.0, 1.0]).repeat_interleave(n_img).repeat(k)  # (2·k·n_img,)
            ch = chans.repeat_interleave(2 * n_img)
            s[l][torch.arange(len(ch)), ch] = mean[l][ch] + sign * sigma * std[l][ch]
            img = torch.cat([generator.synthesis([t[i : i + batch] for t in s], noise) for i in range(0, len(ch), batch)])
            f = _encode(guide, img).view(k, 2, n_img, -1)
            d = F.normalize(f[:, 1] - f[:, 0], dim=-1)  # (k, n_img, D)
            rows.append(F.normalize(d.mean(1), dim=-1))
            bar.update(k)
        done[l] = torch.cat(rows)
        if path is not None:
            with atomic_path(path) as tmp:
                torch.save({str(k): v for k, v in done.items()}, tmp)
    bar.close()
    dim = next(iter(done.values())).shape[1] if done else 0
    return torch.cat([done[l] if l in done and l in wanted else torch.zeros(codes[l].shape[1], dim) for l in every])


@torch.no_grad()
def text_direction(guide: ClipGuide, target: str, neutral: str) -> torch.Tensor:
    """Δt = normalise(E_T(target) − E_T(neutral)), each E_T ensembled over the 80 ImageNet templates (``MapTS.py GetDt``). (D,)

    ``GetDt`` normalises each template's embedding before averaging (CLIP's own ensembling), unlike
    CLIPstyler's code; both choices live in :func:`stylecore.clip_guidance.text_embedding`.
    """
    import open_clip

    templates = open_clip.OPENAI_IMAGENET_TEMPLATES
    e_target = text_embedding(guide, target, templates, ensemble="normalised_mean")
    e_neutral = text_embedding(guide, neutral, templates, ensemble="normalised_mean")
    return F.normalize(e_target - e_neutral, dim=-1)


def global_direction(relevance: torch.Tensor, delta_t: torch.Tensor, std_flat: torch.Tensor, beta: float) -> tuple[torch.Tensor, int]:
    """Δs from the text direction (Patashnik et al. 2021, Sec. 6; ``MapTS.py GetBoundary``).

    r_c = fs3_c · Δt; channels with |r_c| < β (or without a relevance row, r_c = 0) are zeroed; r is divided by max |r|; then
    scaled by the channel's std: Δs_c = std_c · r_c / max|r|. Shapes: relevance (N, D),
    delta_t (D,), std_flat (N,) -> (Δs (N,), number of active channels).
    """
    r = relevance @ delta_t
    keep = (r.abs() >= beta) & (r != 0)  # r = 0: a channel without a computed relevance row
    n_active = int(keep.sum())
    if n_active == 0:
        return torch.zeros_like(r), 0
    r = torch.where(keep, r, torch.zeros_like(r))
    return r / r.abs().max() * std_flat, n_active


def active_channels(relevance: torch.Tensor, delta_t: torch.Tensor, betas: Sequence[float]) -> list[int]:
    """Number of channels with |fs3 · Δt| ≥ β, for each β (the disentanglement-threshold curve)."""
    r = (relevance @ delta_t).abs()
    return [int(((r >= b) & (r > 0)).sum()) for b in betas]


def apply_direction(generator: Generator, s: Sequence[torch.Tensor], delta_flat: torch.Tensor, alpha: float) -> list[torch.Tensor]:
    """s' = s + α·Δs on the manipulated layers (``manipulate.py MSCode``); toRGB vectors unchanged."""
    out = [t.clone() for t in s]
    start = 0
    for l in manipulated_layers(generator):
        n = out[l].shape[1]
        out[l] = out[l] + alpha * delta_flat[start : start + n].to(out[l].dtype)
        start += n
    if start != delta_flat.numel():
        raise ValueError(f"direction has {delta_flat.numel()} channels, this generator's StyleSpace without toRGB has {start}")
    return out


def flat_std(generator: Generator, std: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate the per-layer std vectors of the manipulated layers into one (N,) vector."""
    return torch.cat([std[l] for l in manipulated_layers(generator)])
