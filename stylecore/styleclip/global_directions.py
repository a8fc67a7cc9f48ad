"""StyleCLIP global directions: text -> StyleSpace direction, no training (Patashnik et al. 2021, Sec. 6).

Official code: ``global_directions/`` (TensorFlow) and ``global_torch/`` in orpatashnik/StyleCLIP:
``GetCode.py`` / ``global_torch/manipulate.py GenerateS`` (StyleSpace mean/std), ``SingleChannel.py``
(channel relevance ``fs3``), ``MapTS.py`` / ``global_torch/StyleCLIP.py`` (``GetDt`` text direction,
``GetBoundary`` β threshold), ``manipulate.py`` (s + α Δs).
Everything works on the *flat* StyleSpace without toRGB layers (6,048 channels at 1024 px).

Two conventions of the official code are kept as options beside the paper's reading (notebook 04, section 7):
``channel_relevance(relevance="official")`` reproduces ``SingleChannel.py`` as written (a shallow copy leaves
every visited channel at its mean), ``relevance="paper"`` resets each channel (Sec. 6); the relevance images
reach CLIP as the official code feeds them (``image_input="official"``: uint8, PIL bicubic resize) or as floats.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..cache import load_checked
from ..clip_guidance import AUTHORS_TEMPLATES, ClipGuide, text_embedding
from ..images import atomic_path
from ..nets.stylegan2 import Generator, truncate

__all__ = [
    "DIRECTION_TEMPLATES",
    "GLOBAL_DEFAULTS",
    "RELEVANCE_INPUTS",
    "RELEVANCE_MODES",
    "active_channels",
    "apply_direction",
    "beta_for_channels",
    "channel_relevance",
    "global_direction",
    "official_clip_input",
    "manipulated_layers",
    "sample_stylespace",
    "stylespace_stats",
    "text_direction",
]

_GD = "global_directions/"  # orpatashnik/StyleCLIP (TensorFlow version; global_torch/ has the same values)
_GT = "global_torch/"  # orpatashnik/StyleCLIP's PyTorch port (commit f87a47f)

#: value, source. The paper (Sec. 6) fixes only the relevance estimate (100 image pairs, ±5σ); it
#: leaves α and β to the user, and Suppl. C ("Video") gives the starting values of its interactive tool.
GLOBAL_DEFAULTS = {
    "stats_samples": (100_000, f"{_GD}GetCode.py num_img=100_000 (S mean/std)"),
    # global_torch truncates W+ entries < 8 (G.mapping(truncation_cutoff=8)); TF GetCode.py lerps all 18 entries
    # with ψ = 0.7 (it keeps src_dlatents[:, 0] and broadcasts it): sample_stylespace(cutoff=None) is that variant.
    "stats_truncation": (0.7, f"{_GT}manipulate.py GenerateS: G.mapping(truncation_psi=0.7, truncation_cutoff=8); "
                              f"{_GD}GetCode.py: ψ 0.7 on every layer (cutoff=None)"),
    "relevance_images": (100, f"paper Sec. 6 ('we use 100 image pairs') and {_GD}SingleChannel.py num_images=100"),
    "relevance_sigma": (5.0, f"paper Sec. 6 (perturbation magnitude α = 5, ×σ of the channel) and {_GD}SingleChannel.py M.alpha=[-5,5]"),
    "relevance_max_layer": (16, f"{_GD}SingleChannel.py select=np.array(M.mindexs)<=16 ('below or equal to 128 resolution')"),
    "beta": (0.15, "notebooks/StyleCLIP_global.ipynb beta = 0.15 (slider 0.08-0.3); GUI.py slider 0.08-0.4"),
    "alpha": (4.1, "notebooks/StyleCLIP_global.ipynb alpha = 4.1 (slider -10..10); GUI.py slider -15..25"),
    "alpha_initial": (3.0, f"paper Suppl. C: real faces start at α = 3; {_GD}Inference.py SetInitP M.alpha=[3]"),
    "k_channels": (20, f"paper Suppl. C: β chosen so that k = 20 channels are active (real faces; 100 for cars and cats); "
                       f"{_GD}Inference.py c_threshold=20 for ffhq, else 100"),
}
#: ``relevance`` of :func:`channel_relevance`: "paper" resets each channel (Sec. 6), "official" = SingleChannel.py as run.
RELEVANCE_MODES = ("paper", "official")
#: ``image_input`` of :func:`channel_relevance`: how rendered images reach CLIP (see :func:`official_clip_input`).
RELEVANCE_INPUTS = ("official", "official_tf", "float")
#: ``templates`` of :func:`text_direction`: "official" = GetDt's 79 (MapTS.py and global_torch/StyleCLIP.py comment out
#: 'a photo of many {}.'), "openai" = open_clip's 80 OpenAI ImageNet templates (this project's choice before issue 21).
DIRECTION_TEMPLATES = ("official", "openai")
#: The β grid :func:`beta_for_channels` searches: ``np.arange(0.1, 0.3, 0.01)`` of ``Inference.py GetDt2``.
INFERENCE_BETAS = tuple(round(0.1 + 0.01 * i, 2) for i in range(20))


def manipulated_layers(generator: Generator) -> list[int]:
    """Indices of the StyleSpace vectors that global directions edit: all but the toRGB layers."""
    return [i for i, (name, _, _) in enumerate(generator.style_layers()) if "rgb" not in name]


@torch.no_grad()
def sample_stylespace(generator: Generator, n: int, w_avg: torch.Tensor, truncation: float = 0.7, cutoff: int | None = 8, seed: int = 0, batch: int = 256) -> list[torch.Tensor]:
    """StyleSpace codes of n random images: z -> w -> W+ truncated (ψ on layers < cutoff) -> s. List of (n, C_k).

    ``cutoff=8``: ``global_torch/manipulate.py GenerateS`` (``G.mapping(truncation_psi=0.7, truncation_cutoff=8)``);
    ``cutoff=None``: TF ``GetCode.py``, which truncates every W+ entry (there S layers fed by W+ entries ≥ 8,
    e.g. 12, 14, 15 at 1024 px, have 0.7× the std of the global_torch statistics).
    """
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


def official_clip_input(images: torch.Tensor, size: int, mean: torch.Tensor, std: torch.Tensor, rounding: Literal["floor", "round"] = "floor") -> torch.Tensor:
    """Generator output (B, 3, H, W) in [-1, 1] -> CLIP input (B, 3, size, size) as the official relevance code makes it.

    ``global_torch/manipulate.py GenerateImg``: ``((img + 1) · 255/2).clamp(0, 255).to(uint8)`` (``rounding="floor"``;
    TF ``convert_images_to_uint8`` adds 0.5 first: ``"round"``), then ``SingleChannel.py GetImgF``: ``Image.fromarray``
    and CLIP's ``preprocess`` = PIL ``Resize(size, BICUBIC)`` (antialiased: PIL widens the filter when shrinking),
    ``CenterCrop`` (a no-op on square images), ``ToTensor`` (/255), ``Normalize(mean, std)``. PIL itself does the resize,
    so the values are the official ones exactly (torch's uint8 antialiased bicubic differs by one level on ~0.2 % of
    pixels). Not differentiable (the relevance is computed without gradients).
    """
    from PIL import Image

    offset = 0.5 if rounding == "round" else 0.0
    u8 = ((images.detach().float().cpu() + 1) * 127.5 + offset).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (B, H, W, 3)
    if u8.shape[1:3] != (size, size):
        u8 = np.stack([np.asarray(Image.fromarray(x).resize((size, size), Image.BICUBIC)) for x in u8])
    x = torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).to(device=mean.device, dtype=mean.dtype) / 255
    return (x - mean) / std


def _encode(guide: ClipGuide, images: torch.Tensor, image_input: str = "float") -> torch.Tensor:
    if image_input == "float":
        return guide.encode_images(((images + 1) / 2).clamp(0, 1))
    x = official_clip_input(images, guide.image_size, guide.mean, guide.std, "round" if image_input == "official_tf" else "floor")
    return F.normalize(guide.model.encode_image(x), dim=-1)


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
    relevance: Literal["paper", "official"] = "paper",
    image_input: Literal["official", "official_tf", "float"] = "official",
) -> torch.Tensor:
    """Relevance of every channel to CLIP directions: the official ``fs3``, shape (n_channels, D).

    For channel c of layer l and image i: set s_lc to its mean, render with s_lc ± σ·std_lc,
    f± = CLIP image embeddings (unit); d_i = normalise(f+ − f−); fs3_c = normalise(mean_i d_i)
    (``SingleChannel.py`` ``GetFs``). ``codes`` are the StyleSpace codes of the images used
    (the official code uses 100). Rows follow :func:`manipulated_layers` order, channel by channel;
    channels of layers not in ``layers`` (default: all manipulated layers) get zero rows, so
    they never pass a β threshold. ``cache``: a file where finished layers are stored; a rerun
    resumes from it, and finished layers are read back instead of recomputed (a cache made with
    another ``relevance`` or ``image_input`` is refused).

    ``relevance="paper"``: every other channel keeps the image's own value (Sec. 6: one channel moves).
    ``relevance="official"``: ``SingleChannel.py`` as written: ``M.dlatents = copy.copy(dlatents_o)`` is a
    shallow copy of a list of array *views*, so ``M.dlatents[lindex][:, cindex] = mean`` writes into the
    shared arrays and every channel visited before (earlier layers in ascending order, earlier channels
    of this layer) stays at its mean for the rest of the loop: what the published ``fs3.npy`` files hold.
    ``image_input``: ``"official"`` (uint8 as ``global_torch``, PIL bicubic resize; :func:`official_clip_input`),
    ``"official_tf"`` (uint8 rounded as the TF code), ``"float"`` (clamped floats, torch bicubic resize without
    antialiasing: 7.7 % relative L2 from the official input at 1024 -> 224 px).
    Notes: the official FFHQ run computes layers with index ≤ 16 (up to 128 px): ``layers=[l for
    l in manipulated_layers(G) if l <= 16]``.
    """
    if relevance not in RELEVANCE_MODES:
        raise ValueError(f"relevance must be one of {RELEVANCE_MODES} ('paper': reset each channel, 'official': SingleChannel.py's shallow copy), got {relevance!r}")
    if image_input not in RELEVANCE_INPUTS:
        raise ValueError(f"image_input must be one of {RELEVANCE_INPUTS}, got {image_input!r}")
    every = manipulated_layers(generator)
    wanted = every if layers is None else list(layers)
    if set(wanted) - set(every):
        raise ValueError(f"layers {sorted(set(wanted) - set(every))} are toRGB or out of range; manipulated layers: {every}")
    wanted = sorted(set(wanted))  # the official loop visits layers in ascending order (matters for relevance="official")
    path = Path(cache) if cache is not None else None
    tag = f"__convention__{relevance}_{image_input}"
    done: dict[int, torch.Tensor] = {}
    if path is not None and (stored := load_checked(path, "channel relevance")) is not None:
        marks = [k for k in stored if k.startswith("__convention__")] or ["__convention__paper_float"]  # caches before issue 21
        if marks != [tag]:
            raise ValueError(f"relevance cache {path} was made with {marks[0][14:]!r}, this call asks for {tag[14:]!r}: delete it or use another file")
        done = {int(k): v for k, v in stored.items() if not k.startswith("__")}
    noise = generator.fixed_noise()
    n_img = codes[0].shape[0]
    todo = [l for l in wanted if l not in done]
    bar = tqdm(total=sum(codes[l].shape[1] for l in todo), desc="channel relevance", disable=not show_progress)
    per_chunk = max(1, batch // (2 * n_img))
    for l in todo:
        n_ch = codes[l].shape[1]
        base = list(codes)
        if relevance == "official":  # every layer visited before this one is entirely at its mean
            base = [mean[j].expand_as(t) if j in wanted and j < l else t for j, t in enumerate(codes)]
        rows = []
        for c0 in range(0, n_ch, per_chunk):
            chans = torch.arange(c0, min(n_ch, c0 + per_chunk))
            k = len(chans)
            # batch layout: (channel, sign, image)
            s = [t.repeat(2 * k, 1) for t in base]
            sign = torch.tensor([-1.0, 1.0]).repeat_interleave(n_img).repeat(k)  # (2·k·n_img,)
            ch = chans.repeat_interleave(2 * n_img)
            if relevance == "official":  # channels before ch in this layer: at their mean too
                s[l] = torch.where(torch.arange(n_ch, device=s[l].device)[None, :] < ch.to(s[l].device)[:, None], mean[l].expand_as(s[l]), s[l])
            s[l][torch.arange(len(ch)), ch] = mean[l][ch] + sign * sigma * std[l][ch]
            img = torch.cat([generator.synthesis([t[i : i + batch] for t in s], noise) for i in range(0, len(ch), batch)])
            f = _encode(guide, img, image_input).view(k, 2, n_img, -1)
            d = F.normalize(f[:, 1] - f[:, 0], dim=-1)  # (k, n_img, D)
            rows.append(F.normalize(d.mean(1), dim=-1))
            bar.update(k)
        done[l] = torch.cat(rows)
        if path is not None:
            with atomic_path(path) as tmp:
                torch.save({tag: torch.zeros(0), **{str(k): v for k, v in done.items()}}, tmp)
    bar.close()
    dim = next(iter(done.values())).shape[1] if done else 0
    return torch.cat([done[l] if l in done and l in wanted else torch.zeros(codes[l].shape[1], dim) for l in every])


@torch.no_grad()
def text_direction(guide: ClipGuide, target: str, neutral: str, templates: Literal["official", "openai"] = "official") -> torch.Tensor:
    """Δt = normalise(E_T(target) − E_T(neutral)), each E_T a template ensemble (``MapTS.py GetDt``). (D,)

    ``templates="official"``: the 79 templates of ``GetDt`` (``MapTS.py`` and ``global_torch/StyleCLIP.py``:
    OpenAI's 80 ImageNet templates with ``'a photo of many {}.'`` commented out; the same list as
    :data:`stylecore.clip_guidance.AUTHORS_TEMPLATES`); ``"openai"``: open_clip's 80 (this project's earlier default).
    ``GetDt`` normalises each template's embedding before averaging (CLIP's own ensembling), unlike
    CLIPstyler's code; both choices live in :func:`stylecore.clip_guidance.text_embedding`.
    """
    import open_clip

    if templates not in DIRECTION_TEMPLATES:
        raise ValueError(f"templates must be 'official' (GetDt's 79) or 'openai' (open_clip's 80), got {templates!r}")
    chosen = AUTHORS_TEMPLATES if templates == "official" else open_clip.OPENAI_IMAGENET_TEMPLATES
    e_target = text_embedding(guide, target, chosen, ensemble="normalised_mean")
    e_neutral = text_embedding(guide, neutral, chosen, ensemble="normalised_mean")
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


def beta_for_channels(relevance: torch.Tensor, delta_t: torch.Tensor, k: int = 20, betas: Sequence[float] | None = INFERENCE_BETAS) -> float:
    """The disentanglement threshold β at which about k channels are active (paper Suppl. C).

    ``betas`` given (default :data:`INFERENCE_BETAS`): the official rule of ``Inference.py GetDt2`` —
    the largest β of the grid that keeps *more than* k channels, or the grid's first β (0.1 there)
    when none does. ``betas=None``: the exact threshold, the k-th largest |r_c| (exactly k channels
    pass |r_c| ≥ β when there are no ties; 0 when fewer than k channels have a relevance).
    Shapes: relevance (N, D), delta_t (D,).
    """
    if k < 0:
        raise ValueError(f"k must be a channel count ≥ 0, got {k}")
    r = (relevance @ delta_t).abs()
    r = r[r > 0]  # channels without a relevance row never count (see global_direction)
    if betas is None:
        return float(torch.topk(r, k).values[-1]) if 0 < k <= r.numel() else 0.0
    betas = [float(b) for b in betas]
    if not betas:
        raise ValueError("betas must hold at least one threshold, e.g. INFERENCE_BETAS")
    grid = torch.tensor(betas, dtype=r.dtype)
    counts = r.numel() - torch.searchsorted(torch.sort(r).values, grid)  # |{c: r_c ≥ β}| for each β
    ok = (counts > k).nonzero()
    return betas[int(ok[-1, 0])] if ok.numel() else betas[0]


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
