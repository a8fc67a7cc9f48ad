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

from ..losses import content_loss, gram_matrix, total_variation
from .masks import LABEL_WEIGHTINGS, SegmentationMasks, augmented_style_loss, label_weights, reduce_mask, style_grams_per_label
from .matting import photorealism_loss
from ..nets.vgg import VGG19_LAYERS, VGGFeatures

__all__ = ["authors_style_loss", "AUTHORS_CODE", "PAPER", "PRESETS", "DeepPhotoLoss", "DPSTHyperParams", "colour_transfer_progress", "region_colour_stats", "estimate_memory_mb", "load_input", "size_for_memory_budget"]

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
    vgg_variant: str = "caffe_x256"  # key of stylecore.nets.vgg.VGG19_VARIANTS the weights above were meant for
    reduction: str = "project"  # what α, Γ, tv_weight multiply: "project" (Eq. 1/Eq. 3 sums below) | "authors" (deepmatting_seg.lua's means)
    style_gradient: str = "exact"  # "exact" (∂/∂F of L_s+, mask m²) | "authors_m" (deepmatting_seg.lua's backward, mask m)
    ceil_pooling: bool = False  # pool to ⌈H/2⌉ as loadcaffe does (torchvision: ⌊H/2⌋)
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
        "reduction": "project: α, Γ multiply ½Σ(F−P)² (Gatys Eq. 1) and Σ_l Σ_c w_c/(4N_l²)·Σ(G_c[O]−G_c[S])², G_c area-normalised "
        "(Luan Eq. 3 with Gatys's 1/(4N²)); the paper does not state the reductions its Γ = 10², λ = 10⁴ were tuned with",
        "style_gradient": "exact gradient of L_s+",
        "ceil_pooling": "torchvision's floor pooling",
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
    reduction="authors",
    source={
        "content_layers": "deepmatting_seg.lua: -content_layers relu4_2, -content_weight 5",
        "style_layers": "deepmatting_seg.lua: -style_layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
        "gamma": "-style_weight 100",
        "lam": "-lambda 1e4",
        "tv_weight": "-tv_weight 1e-3",
        "iterations": "-num_iterations 1000 for each of neuralstyle_seg.lua and deepmatting_seg.lua",
        "pooling": "-pooling max",
        "reduction": "deepmatting_seg.lua: ContentLoss = w·MSECriterion (mean); StyleLossWithSeg = Γ·Σ_j m̄_j·MSE(G_j, A_j), "
        "G_j = (F m_j)(F m_j)ᵀ/(C·H·W·m̄_j); TVLoss adds tv_weight × the gradient of ½Σ(Δx)² on the ×256 image; "
        "MattingLaplacian adds λ·2 M V/256 (= ∂/∂x_caffe of λ Σ_c V_cᵀ M V_c, V in [0, 1])",
        "style_gradient": "exact by default; 'authors_m' is StyleLossWithSeg:updateGradInput (gram:backward on the masked features)",
        "ceil_pooling": "False by default; loadcaffe's SpatialMaxPooling uses ceil (the masks: math.ceil(size/2))",
        "label_weighting": "deepmatting_seg.lua and neuralstyle_seg.lua, StyleLossWithSeg: loss_j * l_content_mean "
        "(area fraction of the label's content mask at the layer)",
        "vgg_variant": "deepmatting_seg.lua: loadcaffe VGG_ILSVRC_19_layers.caffemodel; preprocess: RGB→BGR, ×256, minus the mean "
        "pixel (variant caffe_x256: the converted Caffe VGG19 with this ×256 input, not the conversion's own ×255)",
        "normalisation": "reduction='authors': the weights multiply the Lua code's own terms (DeepPhotoLoss, authors_terms), "
        "tests/test_dpst.py checks each term against deepmatting_seg.lua's formulas",
    },
)

PRESETS: dict[str, DPSTHyperParams] = {"paper": PAPER, "authors_code": AUTHORS_CODE}
REDUCTIONS = ("project", "authors")
STYLE_GRADIENTS = ("exact", "authors_m")

#: Lua ÷ project per term at equal weights: content 2/(C·H·W), style 4/N_l², TV 256²/2, L_m 1 (see authors_style_loss).
TV_AUTHORS_FACTOR = 256.0**2 / 2.0


def authors_style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, list[torch.Tensor]],
    layer_weights: Mapping[str, float],
    masks: Mapping[str, torch.Tensor],
    label_weighting: str = "area",
    style_gradient: str = "exact",
) -> torch.Tensor:
    """L_s+ with the reductions of the authors' ``deepmatting_seg.lua`` (``StyleLossWithSeg``).

        L_s+ = Σ_l β_l Σ_c w_{l,c} · 1/N_l² · Σ_ij (G_{l,c}[O] − G_{l,c}[S])²,   G_{l,c} = F_{l,c} F_{l,c}ᵀ / (N_l · M_l · m̄_{l,c})

    (``nn.MSECriterion``: the mean over the N_l² Gram entries; m̄ = the mask's mean; w = m̄ for
    ``"area"``). ``target_grams`` are :func:`stylecore.deep_photo.masks.masked_gram` (÷ Σm = M·m̄), here ÷ N_l.
    ``style_gradient="authors_m"``: backward as the Lua code, which passes ∂L/∂(F·m) on as ∂L/∂F
    (one factor m where the exact gradient has m²; equal on hard masks).
    Notes: = 4/N_l² × :func:`stylecore.deep_photo.masks.augmented_style_loss` per layer (Eq. 3 with 1/(4N²)).
    """
    if style_gradient not in STYLE_GRADIENTS:
        raise ValueError(f"style_gradient must be one of {STYLE_GRADIENTS}, got {style_gradient!r}")
    terms = []
    for layer, weight in layer_weights.items():
        f = features[layer]
        n = f.shape[1]
        w = label_weights(masks[layer], label_weighting)
        for k, target in enumerate(target_grams[layer]):
            m = masks[layer][k]
            fm = f * m
            if style_gradient == "authors_m":
                fm = f + (fm - f).detach()  # value F·m, gradient passed through unmasked
            g = gram_matrix(fm) / (m.sum().clamp_min(1e-6) * n)  # / (N·M·m̄), as masked_gram's area normalisation
            terms.append(weight * w[k] * (g - target / n).pow(2).sum() / n**2)
    return torch.stack(terms).sum()


class DeepPhotoLoss:
    """Weighted terms of Eq. 4 for :func:`stylecore.optim.optimize_pixels`.

    Targets (content features, per-label style Grams, per-layer content masks) are computed once.
    ``laplacian`` is M_I of the content image at the output's size; λ = ``lam`` (0: stage 1).

    ``hp.reduction="project"``: content α·½Σ(F−P)², style Γ·:func:`augmented_style_loss`, TV
    tv·:func:`total_variation`. ``"authors"`` (deepmatting_seg.lua): content α·mean(F−P)², style
    Γ·:func:`authors_style_loss`, TV tv·256²/2·:func:`total_variation` (the objective whose gradient
    the Lua ``TVLoss`` adds on the ×256 image). L_m is λ Σ_c V_cᵀ M V_c under both.
    Notes: the Lua optimises the ×256 BGR image, this module the [0, 1] RGB one: the same
    objective, gradients 256× larger here (L-BFGS's first step differs in scale only).
    """

    def __init__(self, extractor: VGGFeatures, hp: DPSTHyperParams, content: torch.Tensor, style: torch.Tensor, masks: SegmentationMasks, laplacian: sp.spmatrix | None = None, lam: float = 0.0) -> None:
        missing = [n for n in hp.layers if n not in extractor.layers]
        if missing:
            raise ValueError(f"the extractor lacks layers {missing}; build it with vgg19_features({list(hp.layers)})")
        if masks.content.shape[-2:] != content.shape[-2:] or masks.style.shape[-2:] != style.shape[-2:]:
            raise ValueError(f"masks {tuple(masks.content.shape)}/{tuple(masks.style.shape)} do not match images {tuple(content.shape)}/{tuple(style.shape)}")
        if hp.label_weighting not in LABEL_WEIGHTINGS:
            raise ValueError(f"label_weighting must be one of {LABEL_WEIGHTINGS}, got {hp.label_weighting!r}")
        if hp.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {hp.reduction!r}")
        if hp.style_gradient not in STYLE_GRADIENTS:
            raise ValueError(f"style_gradient must be one of {STYLE_GRADIENTS}, got {hp.style_gradient!r}")
        if hp.style_gradient == "authors_m" and hp.reduction != "authors":
            raise ValueError("style_gradient='authors_m' is the Lua code's backward: use it with reduction='authors' (preset 'authors_code')")
        if bool(getattr(extractor, "ceil_mode", False)) != hp.ceil_pooling:
            raise ValueError(f"hp.ceil_pooling={hp.ceil_pooling} but the extractor pools with ceil_mode={getattr(extractor, 'ceil_mode', False)}; "
                             "build it with vgg19_features(..., ceil_mode=hp.ceil_pooling)")
        if lam and laplacian is None:
            raise ValueError("lam > 0 needs the content's matting Laplacian: laplacian=matting_laplacian(content)")
        self.extractor, self.hp, self.laplacian, self.lam = extractor, hp, laplacian, lam
        device = content.device
        with torch.no_grad():
            fc, fs = extractor(content), extractor(style)
        self.content_targets = {k: fc[k] for k in hp.content_layers}
        self.style_grams = style_grams_per_label(fs, masks.style.to(device), hp.style_layers, hp.ceil_pooling)
        self.content_masks = {k: reduce_mask(masks.content.to(device), k, hp.ceil_pooling) for k in hp.style_layers}

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, hp = self.extractor(x), self.hp
        if hp.reduction == "authors":
            content = sum(a * content_loss(feats[k], self.content_targets[k], reduction="mean") for k, a in hp.content_layers.items())
            style = authors_style_loss(feats, self.style_grams, hp.style_layers, self.content_masks, hp.label_weighting, hp.style_gradient)
            tv_scale = TV_AUTHORS_FACTOR
        else:
            content = sum(a * content_loss(feats[k], self.content_targets[k]) for k, a in hp.content_layers.items())
            style = augmented_style_loss(feats, self.style_grams, hp.style_layers, self.content_masks, hp.label_weighting)
            tv_scale = 1.0
        terms = {"content": content, "style": hp.gamma * style}
        if hp.tv_weight:
            terms["tv"] = hp.tv_weight * tv_scale * total_variation(x)
        if self.lam:
            terms["photorealism"] = self.lam * photorealism_loss(x, self.laplacian)
        return terms


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
    from ..data import list_samples, load_sample
    from ..images import load_image

    if name_or_path in list_samples():
        return load_sample(name_or_path, size, data_dir or None)
    return load_image(name_or_path, size)
