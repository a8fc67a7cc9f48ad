"""Deep Photo Style Transfer (Luan, Paris, Shechtman & Bala, CVPR 2017): hyper-parameters, loss, size cap.

    L_total = Σ_l α_l L_c^l + Γ Σ_l β_l L_s+^l + λ L_m          (Luan et al. 2017, Eq. 4)

Two stages as in the paper (Sec. 4): stage 1 is segmented neural style (λ = 0); stage 2 adds
λ L_m and starts from stage 1's output. Notebook 02 writes this sum out and checks it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
import torch

from .losses import content_loss, total_variation
from .masks import LABEL_WEIGHTINGS, SegmentationMasks, augmented_style_loss, reduce_mask, style_grams_per_label
from .matting import photorealism_loss
from .vgg import VGG19_LAYERS, VGGFeatures

__all__ = ["AUTHORS_CODE", "PAPER", "PRESETS", "DeepPhotoLoss", "DPSTHyperParams", "colour_transfer_progress", "region_colour_stats", "estimate_memory_mb", "load_input", "size_for_memory_budget", "structure_score"]

STYLE_LAYERS_5 = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class DPSTHyperParams:
    """Weights of Eq. 4 and the schedule; ``source`` says where each value comes from."""

    content_layers: Mapping[str, float]  # α_l
    style_layers: Mapping[str, float]  # β_l
    gamma: float  # Γ, style weight
    lam: float  # λ, photorealism weight
    tv_weight: float
    iterations: int  # L-BFGS iterations per stage
    pooling: str = "max"
    label_weighting: str = "area"  # per-label weights of L_s+: "area" (authors' code) | "equal" (Eq. 3)
    vgg_variant: str = "caffe_x256"  # key of stylecore.vgg.VGG19_VARIANTS the weights above were meant for
    source: Mapping[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> "DPSTHyperParams":
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.content_layers, *self.style_layers]))


PAPER = DPSTHyperParams(
    content_layers={"relu4_2": 1.0},
    style_layers={n: 1.0 for n in STYLE_LAYERS_5},
    gamma=1e2,
    lam=1e4,
    tv_weight=0.0,
    iterations=1000,
    source={
        "content_layers": "Sec. 4: conv4_2 (α_l = 1 for it, 0 otherwise)",
        "style_layers": "Sec. 4: conv1_1, conv2_1, conv3_1, conv4_1, conv5_1 (β_l = 1)",
        "gamma": "Sec. 4: Γ = 10²",
        "lam": "Sec. 4: λ = 10⁴",
        "tv_weight": "no TV term in Eq. 4",
        "iterations": "not stated per stage in the paper; the authors' code's 1000",
        "pooling": "VGG-19 as released (max pooling)",
        "label_weighting": "Eq. 3 prints no per-label weight ('equal'); the default 'area' is the authors' code "
        "(deepmatting_seg.lua, StyleLossWithSeg: loss_j * l_content_mean)",

        "vgg_variant": "Sec. 4: VGG-19 (the released Caffe model), as the authors' code loads it; input BGR ×256 minus the mean pixel "
        "(deepmatting_seg.lua preprocess)",
    },
)

AUTHORS_CODE = PAPER.with_(
    content_layers={"relu4_2": 5.0},
    style_layers={n: 1.0 for n in STYLE_LAYERS_5},
    gamma=100.0,
    lam=1e4,
    tv_weight=1e-3,
    iterations=1000,
    source={
        "content_layers": "deepmatting_seg.lua: -content_layers relu4_2, -content_weight 5",
        "style_layers": "deepmatting_seg.lua: -style_layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
        "gamma": "-style_weight 100",
        "lam": "-lambda 1e4",
        "tv_weight": "-tv_weight 1e-3",
        "iterations": "-num_iterations 1000 for each of neuralstyle_seg.lua and deepmatting_seg.lua",
        "pooling": "-pooling max",
        "label_weighting": "deepmatting_seg.lua and neuralstyle_seg.lua, StyleLossWithSeg: loss_j * l_content_mean "
        "(area fraction of the label's content mask at the layer)",
        "vgg_variant": "deepmatting_seg.lua: loadcaffe VGG_ILSVRC_19_layers.caffemodel; preprocess: RGB→BGR, ×256, minus the mean "
        "pixel (variant caffe_x256: the converted Caffe VGG19 with this ×256 input, not the conversion's own ×255)",
        "normalisation": "Notes: the Lua code normalises losses as neural-style does (MSE means, Gram/(C·H·W)); "
        "here the weights multiply this module's Eq. 1/Eq. 3 terms, so the balance differs",
    },
)

PRESETS: dict[str, DPSTHyperParams] = {"paper": PAPER, "authors_code": AUTHORS_CODE}


class DeepPhotoLoss:
    """Weighted terms of Eq. 4 for :func:`stylecore.optim.optimize_pixels`.

    Targets (content features, per-label style Grams, per-layer content masks) are computed once.
    ``laplacian`` is M_I of the content image at the output's size; λ = ``lam`` (0: stage 1).
    """

    def __init__(self, extractor: VGGFeatures, hp: DPSTHyperParams, content: torch.Tensor, style: torch.Tensor, masks: SegmentationMasks, laplacian: sp.spmatrix | None = None, lam: float = 0.0) -> None:
        missing = [n for n in hp.layers if n not in extractor.layers]
        if missing:
            raise ValueError(f"the extractor lacks layers {missing}; build it with vgg19_features({list(hp.layers)})")
        if masks.content.shape[-2:] != content.shape[-2:] or masks.style.shape[-2:] != style.shape[-2:]:
            raise ValueError(f"masks {tuple(masks.content.shape)}/{tuple(masks.style.shape)} do not match images {tuple(content.shape)}/{tuple(style.shape)}")
        if hp.label_weighting not in LABEL_WEIGHTINGS:
            raise ValueError(f"label_weighting must be one of {LABEL_WEIGHTINGS}, got {hp.label_weighting!r}")
        if lam and laplacian is None:
            raise ValueError("lam > 0 needs the content's matting Laplacian: laplacian=matting_laplacian(content)")
        self.extractor, self.hp, self.laplacian, self.lam = extractor, hp, laplacian, lam
        device = content.device
        with torch.no_grad():
            fc, fs = extractor(content), extractor(style)
        self.content_targets = {k: fc[k] for k in hp.content_layers}
        self.style_grams = style_grams_per_label(fs, masks.style.to(device), hp.style_layers)
        self.content_masks = {k: reduce_mask(masks.content.to(device), k) for k in hp.style_layers}

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, hp = self.extractor(x), self.hp
        terms = {
            "content": sum(a * content_loss(feats[k], self.content_targets[k]) for k, a in hp.content_layers.items()),
            "style": hp.gamma * augmented_style_loss(feats, self.style_grams, hp.style_layers, self.content_masks, hp.label_weighting),
        }
        if hp.tv_weight:
            terms["tv"] = hp.tv_weight * total_variation(x)
        if self.lam:
            terms["photorealism"] = self.lam * photorealism_loss(x, self.laplacian)
        return terms


def structure_score(output: torch.Tensor, content: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004) between the luminance-gradient magnitudes of output and content.

    1 = the same edges in the same places; low = edges moved, blurred or invented (painterly
    distortion). Each gradient map is divided by its mean first, so a global change of colour
    or contrast alone leaves the score at 1: that is what "still the same photo" means here.
    Notes: a diagnostic of this project, not a metric of the paper.
    """
    from skimage.filters import sobel
    from skimage.metrics import structural_similarity

    def grad(img: torch.Tensor) -> np.ndarray:
        rgb = img[0].detach().cpu().double().numpy()
        g = sobel(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
        return g / max(g.mean(), 1e-8)

    if output.shape != content.shape:
        raise ValueError(f"output {tuple(output.shape)} and content {tuple(content.shape)} differ in shape")
    go, gc = grad(output), grad(content)
    return float(structural_similarity(go, gc, data_range=max(gc.max(), go.max(), 1e-8)))


def region_colour_stats(image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Mean and standard deviation of CIELAB L, a, b over the pixels where ``mask`` > 0.5: (6,).

    Shapes: image (1, 3, H, W) in [0, 1], mask (H, W).
    """
    from skimage.color import rgb2lab

    if image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape[-2:])} and mask {tuple(mask.shape[-2:])} differ in size")
    inside = mask.detach().cpu().numpy() > 0.5
    if not inside.any():
        raise ValueError("the mask selects no pixel")
    lab = rgb2lab(image[0].permute(1, 2, 0).detach().cpu().double().clamp(0, 1).numpy())[inside]  # (P, 3)
    return np.concatenate([lab.mean(0), lab.std(0)])


def colour_transfer_progress(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor, masks: SegmentationMasks) -> dict[str, float]:
    """Per label: how far the output's colour statistics moved from the content's towards the style's.

        progress_c = 1 − ‖s_c(O) − s_c(S)‖ / ‖s_c(I) − s_c(S)‖,   s_c = (mean, std) of Lab over label c

    (content mask for O and I, style mask for S). 1: the region has the style region's colour
    statistics; 0: it still has the content's; < 0: it moved away. Labels whose statistics
    already agree (‖s_c(I) − s_c(S)‖ < 1 Lab unit) are left out.
    Notes: a diagnostic of this project (what "the style's colours arrived" means in numbers),
    not a metric of the paper.
    """
    out: dict[str, float] = {}
    for k, name in enumerate(masks.labels):
        s_style = region_colour_stats(style, masks.style[k])
        s_content = region_colour_stats(content, masks.content[k])
        gap = float(np.linalg.norm(s_content - s_style))
        if gap >= 1.0:
            out[name] = 1.0 - float(np.linalg.norm(region_colour_stats(output, masks.content[k]) - s_style)) / gap
    return out


def estimate_memory_mb(height: int, width: int, deepest: str = "relu5_1", lbfgs_history: int = 100) -> float:
    """Rough peak memory (MiB) of one stage-2 step at H×W on CPU, float32.

    VGG activations up to ``deepest`` (kept for backward, plus their gradients: ×2), the
    L-BFGS history (2 vectors of 3·H·W per remembered step), and the matting Laplacian's
    vectorised build (81 float64 entries × 4 arrays per 3×3 window) which dominates it.
    """
    px = height * width
    acts = 0.0
    scale = 1.0
    for name in VGG19_LAYERS[: VGG19_LAYERS.index(deepest) + 1]:
        channels = (64, 128, 256, 512, 512)[int(name[4]) - 1]  # conv1_1, relu1_1, pool1: block at index 4
        if name.startswith("pool"):
            scale /= 4
        acts += channels * px * scale
    vgg = 2 * 4 * acts
    lbfgs = 2 * lbfgs_history * 3 * px * 4
    laplacian = 81 * 8 * 4 * px
    return (vgg + lbfgs + laplacian) / 2**20


def size_for_memory_budget(height: int, width: int, budget_mb: float, deepest: str = "relu5_1") -> tuple[int, str]:
    """Largest longest side ≤ max(H, W) whose :func:`estimate_memory_mb` fits ``budget_mb``, and a message."""
    if budget_mb <= 0:
        raise ValueError(f"memory budget must be positive (MiB), got {budget_mb}")
    longest = max(height, width)
    need = estimate_memory_mb(height, width, deepest)
    if need <= budget_mb:
        return longest, f"{height}x{width} needs ~{need:.0f} MiB, within the {budget_mb:.0f} MiB budget: size kept"
    scale = math.sqrt(budget_mb / need)  # memory ∝ pixels
    new = max(16, int(longest * scale))
    while new > 16 and estimate_memory_mb(round(height * new / longest), round(width * new / longest), deepest) > budget_mb:
        new -= 8
    return new, (f"{height}x{width} would need ~{need:.0f} MiB > budget {budget_mb:.0f} MiB: "
                f"longest side capped to {new} px (raise memory_budget_mb to keep the size)")


def load_input(name_or_path: str, size: int | None = None, data_dir: str | None = None) -> torch.Tensor:
    """A sample name (``stylecore.data.list_samples()``) or an image path -> (1, 3, H, W) in [0, 1]."""
    from .data import list_samples, load_sample
    from .images import load_image

    if name_or_path in list_samples():
        return load_sample(name_or_path, size, data_dir or None)
    return load_image(name_or_path, size)
