"""Semantic masks for the augmented style loss of Deep Photo Style Transfer (Luan et al. 2017, Sec. 3.2).

A *label map* is an (H, W) int array of indices into ``labels`` (−1 = unlabelled). Masks come
from the paper's colour-coded segmentation PNGs (:func:`parse_color_mask`), from automatic
clustering (:func:`automatic_masks`), or cover everything (:func:`no_masks`). Notebook 02,
section "The augmented style loss", explains how they enter Eq. 3.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..losses import gram_matrix, style_layer_loss
from ..nets.vgg import VGG19_LAYERS

__all__ = [
    "LABEL_WEIGHTINGS",
    "MASK_COLORS",
    "SegmentationMasks",
    "augmented_style_loss",
    "automatic_masks",
    "label_weights",
    "masked_gram",
    "masks_for_pair",
    "masks_from_labels",
    "no_masks",
    "parse_color_mask",
    "reduce_mask",
    "resize_labels",
    "style_grams_per_label",
]

#: The colours of the authors' segmentation PNGs (``deepmatting_seg.lua``, ``ExtractMask``).
MASK_COLORS: dict[str, tuple[float, float, float]] = {
    "blue": (0, 0, 1), "green": (0, 1, 0), "black": (0, 0, 0), "white": (1, 1, 1), "red": (1, 0, 0),
    "yellow": (1, 1, 0), "grey": (0.5, 0.5, 0.5), "lightblue": (0, 1, 1), "purple": (1, 0, 1),
}  # fmt: skip


def parse_color_mask(image: torch.Tensor, tolerance: float = 0.2, colors: Mapping[str, tuple[float, float, float]] = MASK_COLORS) -> tuple[np.ndarray, tuple[str, ...]]:
    """Colour-coded segmentation (1, 3, H, W) -> (label map (H, W) int, label names).

    A pixel gets the nearest palette colour if every channel is within ``tolerance`` of it,
    else −1 (anti-aliased edges, JPEG noise). Notes: the authors' code uses per-colour
    thresholds (e.g. blue: r < 0.1, g < 0.1, b > 0.9); one Chebyshev tolerance is equivalent.
    """
    if not 0 < tolerance < 0.25:
        raise ValueError(f"tolerance must be in (0, 0.25) so that palette colours stay distinct, got {tolerance}")
    names = tuple(colors)
    rgb = image[0].permute(1, 2, 0).detach().cpu().numpy()  # (H, W, 3)
    palette = np.array([colors[n] for n in names], dtype=np.float64)  # (L, 3)
    dist = np.abs(rgb[:, :, None, :] - palette[None, None]).max(-1)  # (H, W, L) Chebyshev distance
    labels = dist.argmin(-1)
    labels[dist.min(-1) > tolerance] = -1
    return labels.astype(np.int64), names


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map (interpolating label indices would invent labels)."""
    t = torch.from_numpy(labels.astype(np.float32))[None, None]
    return F.interpolate(t, size=size, mode="nearest")[0, 0].numpy().astype(np.int64)


def masks_from_labels(labels: np.ndarray, n_labels: int) -> torch.Tensor:
    """Label map (H, W) -> one-hot float masks (K, H, W); unlabelled pixels are 0 in every mask."""
    t = torch.from_numpy(labels)
    return torch.stack([(t == k).float() for k in range(n_labels)])


def reduce_mask(masks: torch.Tensor, layer: str, ceil_mode: bool = False) -> torch.Tensor:
    """Masks (K, H, W) at image resolution -> (K, H_l, W_l) at VGG19 layer ``layer``'s resolution.

    Walks the VGG19 layers like the authors' ``deepmatting_seg.lua``: each 3×3 convolution
    applies a 3×3 average (stride 1, so label boundaries soften like the receptive field),
    each pooling halves the size (2×2 average = the bilinear resize of the authors' code at
    exactly half size), ReLUs leave masks unchanged.
    Notes: why not nearest-neighbour resizing: a feature at a label boundary sees both regions;
    the soft mask weights its contribution to each label's Gram matrix accordingly. The
    average ignores the zero padding (``count_include_pad=False``; Torch7's default counts it)
    so that an all-ones mask stays all-ones and the no-mask mode is exactly Gatys's loss.
    ``ceil_mode=True`` pools to ⌈H/2⌉ as a ceil-pooling VGG (and the authors' ``math.ceil``) does.
    """
    if layer not in VGG19_LAYERS:
        raise ValueError(f"unknown VGG19 layer {layer!r}")
    m = masks[None]  # (1, K, H, W)
    for name in VGG19_LAYERS[: VGG19_LAYERS.index(layer) + 1]:
        if name.startswith("conv"):
            m = F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=False)
        elif name.startswith("pool"):
            m = F.avg_pool2d(m, 2, stride=2, ceil_mode=ceil_mode)
    return m[0]


def masked_gram(features: torch.Tensor, mask: torch.Tensor, min_area: float = 1e-6) -> torch.Tensor:
    """Gram matrix of masked features normalised by mask area (Luan et al. 2017, Eq. 3).

        G_{l,c} = F_{l,c} F_{l,c}ᵀ / Σ_p M_{l,c}(p),   F_{l,c} = F_l · M_{l,c}

    Shapes: features (1, N, H, W), mask (H, W) -> (1, N, N).
    Notes: the area normalisation (not in the paper's Eq. 3) makes a small region's Gram
    comparable to a large one's; with one all-ones mask it is Gatys's G / M.
    """
    area = mask.sum().clamp_min(min_area)
    return gram_matrix(features * mask) / area


#: How the per-label terms of L_s+ are weighted (see :func:`augmented_style_loss`).
LABEL_WEIGHTINGS = ("area", "equal")


def label_weights(mask: torch.Tensor, weighting: str = "area") -> torch.Tensor:
    """Weight of each label's Gram term at one layer: its area fraction, or 1 for every label.

        w_{l,c} = mean_p M_{l,c}(p)   ("area", the authors' ``deepmatting_seg.lua``)   or   1   ("equal", Eq. 3)

    Shapes: mask (K, H_l, W_l) at the layer's resolution -> (K,).
    Notes: the authors' ``StyleLossWithSeg`` multiplies label j's loss (and its gradient) by
    ``l_content_mean``, the mean of the content mask reduced to that layer; the paper's Eq. 3
    has no such factor. Unlabelled pixels count in the denominator, so the weights sum to the
    labelled fraction (1 when every pixel has a label).
    """
    if weighting not in LABEL_WEIGHTINGS:
        raise ValueError(f"label weighting must be one of {LABEL_WEIGHTINGS}, got {weighting!r}")
    if weighting == "equal":
        return mask.new_ones(mask.shape[0])
    return mask.flatten(1).mean(1)


def augmented_style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, list[torch.Tensor]],
    layer_weights: Mapping[str, float],
    masks: Mapping[str, torch.Tensor],
    label_weighting: str = "area",
) -> torch.Tensor:
    """Augmented style loss L_s+ = Σ_l β_l Σ_c w_{l,c} E_{l,c} (Luan et al. 2017, Eq. 3).

        E_{l,c} = 1 / (4 N_l²) · Σ_ij (G_{l,c}[O] − G_{l,c}[S])²

    ``features``: {layer: (1, N_l, H_l, W_l)} of the output; ``target_grams``: {layer: [per label
    (1, N_l, N_l) area-normalised Gram of the style]}; ``masks``: {layer: (K, H_l, W_l)} content masks;
    ``label_weighting``: w_{l,c} = the label's area fraction at layer l (``"area"``, the authors'
    code, default) or 1 (``"equal"``, Eq. 3 as printed); see :func:`label_weights`.
    Notes: the paper writes 1/(2 N_{l,c}²); we keep Gatys's 1/(4 N_l²) so that one all-ones mask
    gives exactly :func:`stylecore.losses.style_loss` (area normalisation absorbs 1/M_l²), with
    either weighting (an all-ones mask has area fraction 1).
    """
    terms = []
    for layer, weight in layer_weights.items():
        f = features[layer]
        n = f.shape[1]
        w = label_weights(masks[layer], label_weighting)
        for k, target in enumerate(target_grams[layer]):
            terms.append(weight * w[k] * style_layer_loss(masked_gram(f, masks[layer][k]), target, n, 1))
    return torch.stack(terms).sum()


@dataclass(frozen=True)
class SegmentationMasks:
    """Matched masks of content and style: ``content`` (K, H, W), ``style`` (K, Hs, Ws), K label names."""

    labels: tuple[str, ...]
    content: torch.Tensor
    style: torch.Tensor
    dropped: tuple[str, ...] = ()

    @classmethod
    def from_label_maps(
        cls,
        content_labels: np.ndarray,
        style_labels: np.ndarray,
        names: tuple[str, ...],
        merge: Mapping[str, str] | None = None,
        min_fraction: float = 1e-3,
    ) -> "SegmentationMasks":
        """Match labels across images: apply ``merge`` ({"lightblue": "blue"}), then drop orphans.

        A label is kept only if it covers at least ``min_fraction`` of *both* images; orphans are
        dropped with a warning (their content pixels get no style term), so the user can merge them.
        """
        merged = {n: (merge or {}).get(n, n) for n in names}
        unknown = [t for t in merged.values() if t not in names]
        if unknown:
            raise ValueError(f"merge map targets {unknown} are not labels; labels are {names}")
        remap = np.array([names.index(merged[n]) for n in names] + [-1])  # index −1 -> −1
        c_lab, s_lab = remap[content_labels], remap[style_labels]
        keep, dropped = [], []
        for k, name in enumerate(names):
            fc, fs = (c_lab == k).mean(), (s_lab == k).mean()
            if fc >= min_fraction and fs >= min_fraction:
                keep.append(k)
            elif fc > 0 or fs > 0:
                dropped.append(name)
        if not keep:
            raise ValueError("content and style masks share no label: merge labels (merge={...}) or use no_masks()")
        if dropped:
            warnings.warn(f"labels {dropped} appear in only one image (orphans) and are dropped; pass merge={{...}} to keep them", stacklevel=2)
        content = torch.stack([torch.from_numpy(c_lab == k).float() for k in keep])
        style = torch.stack([torch.from_numpy(s_lab == k).float() for k in keep])
        return cls(tuple(names[k] for k in keep), content, style, tuple(dropped))


def no_masks(content: torch.Tensor, style: torch.Tensor) -> SegmentationMasks:
    """One label covering both images: the augmented loss reduces to Gatys's style loss."""
    return SegmentationMasks(("all",), torch.ones(1, *content.shape[-2:]), torch.ones(1, *style.shape[-2:]))


def _superpixel_features(image: torch.Tensor, n_segments: int, xy_weight: float, chroma_weight: float) -> tuple[np.ndarray, np.ndarray]:
    from skimage.color import rgb2lab
    from skimage.segmentation import slic

    rgb = image[0].permute(1, 2, 0).detach().cpu().double().numpy()
    seg = slic(rgb, n_segments=n_segments, compactness=10.0, start_label=0)  # deterministic
    lab = rgb2lab(rgb)
    h, w = seg.shape
    yy, xx = np.mgrid[0:h, 0:w]
    feats = np.concatenate([lab, (yy / h)[..., None], (xx / w)[..., None]], axis=-1)  # (H, W, 5): L, a, b, y, x
    n = seg.max() + 1
    counts = np.bincount(seg.ravel(), minlength=n)[:, None]
    means = np.stack([np.bincount(seg.ravel(), feats[..., i].ravel(), minlength=n) for i in range(feats.shape[-1])], 1)
    means = means / np.maximum(counts, 1)
    # standardise within the image: a global colour cast (the style!) must not decide the labels
    z = (means - means.mean(0)) / np.maximum(means.std(0), 1e-6)
    return seg, z * np.array([1.0, chroma_weight, chroma_weight, xy_weight, xy_weight])


def automatic_masks(
    content: torch.Tensor,
    style: torch.Tensor,
    n_labels: int = 3,
    n_segments: int = 150,
    xy_weight: float = 0.5,
    chroma_weight: float = 0.3,
    seed: int = 0,
    min_fraction: float = 0.01,
) -> SegmentationMasks:
    """Masks without user input: SLIC superpixels of both images clustered *jointly* in Lab+xy.

    Superpixels (Achanta et al. 2012) of content and style are described by mean Lab colour and
    position, standardised *within each image* (so a global colour cast — the style, by design —
    does not decide the labels) and weighted: lightness 1, chroma a, b ``chroma_weight``,
    position ``xy_weight`` (sky is usually at the top of both); k-means
    (``scipy.cluster.vq.kmeans2``) on the union gives one set of centroids, so label k means the
    same cluster in both images — labels are matched by construction. Orphans are dropped.
    Notes: not in the paper (it uses manual masks or those of a semantic segmenter).
    """
    from scipy.cluster.vq import kmeans2

    seg_c, f_c = _superpixel_features(content, n_segments, xy_weight, chroma_weight)
    seg_s, f_s = _superpixel_features(style, n_segments, xy_weight, chroma_weight)
    _, assign = kmeans2(np.concatenate([f_c, f_s]), n_labels, minit="++", seed=seed)
    names = tuple(f"cluster{k}" for k in range(n_labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # orphan clusters are expected here, not a user mistake
        return SegmentationMasks.from_label_maps(assign[: len(f_c)][seg_c], assign[len(f_c):][seg_s], names, min_fraction=min_fraction)


def style_grams_per_label(features: Mapping[str, torch.Tensor], masks: torch.Tensor, layers: Iterable[str], ceil_mode: bool = False) -> dict[str, list[torch.Tensor]]:
    """{layer: [masked_gram per label]} of the style image's features, masks (K, H, W) at image size."""
    out: dict[str, list[torch.Tensor]] = {}
    for layer in layers:
        m = reduce_mask(masks, layer, ceil_mode)
        out[layer] = [masked_gram(features[layer], m[k]) for k in range(m.shape[0])]
    return out


def masks_for_pair(
    content_mask: str | torch.Tensor,
    style_mask: str | torch.Tensor,
    content: torch.Tensor,
    style: torch.Tensor,
    tolerance: float = 0.2,
    auto_labels: int = 3,
    merge: Mapping[str, str] | None = None,
    seed: int = 0,
) -> SegmentationMasks:
    """Masks for a content/style pair from notebook-style parameters.

    ``content_mask``/``style_mask``: ``"none"`` (no masks), ``"auto"`` (:func:`automatic_masks`), or
    colour-coded segmentation images (1, 3, H, W) already loaded at any size (label maps are
    resized to the images with nearest neighbour).
    """
    kinds = {m if isinstance(m, str) else "image" for m in (content_mask, style_mask)}
    if kinds - {"none", "auto", "image"} or len(kinds) != 1:
        raise ValueError(f"content_mask and style_mask must both be 'none', both 'auto', or both mask images; got {content_mask!r:.40}, {style_mask!r:.40}")
    if kinds == {"none"}:
        return no_masks(content, style)
    if kinds == {"auto"}:
        return automatic_masks(content, style, n_labels=auto_labels, seed=seed)
    lc, names = parse_color_mask(content_mask, tolerance)  # type: ignore[arg-type]
    ls, _ = parse_color_mask(style_mask, tolerance)  # type: ignore[arg-type]
    return SegmentationMasks.from_label_maps(resize_labels(lc, tuple(content.shape[-2:])), resize_labels(ls, tuple(style.shape[-2:])), names, merge)
