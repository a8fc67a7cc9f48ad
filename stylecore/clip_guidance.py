"""CLIP as a critic: text and image embeddings, and the CLIP losses of CLIPstyler.

Kwon & Ye, "CLIPstyler: Image Style Transfer with a Single Text Condition", CVPR 2022.
Notebook 05, sections "CLIP space" to "PatchCLIP", derives every loss here; the tests pin
each one to a naive formula (``tests/test_clip_guidance.py``).

Models come from open_clip through the project's weights policy (:mod:`stylecore.weights`):
``"pretrained"`` resolves the tag's file (open_clip's own hub download, or a local file),
``"random"`` builds the same architecture with seeded random weights. ``TINY_CLIP`` is a
registered open_clip config small enough for quick mode. A random CLIP carries NO text
meaning: its pictures show the mechanics of the losses, never the paper's results.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from .data import sha256_file
from .weights import OFFLINE_ENV, WeightsFallbackWarning, WeightsInfo, WeightsUnavailableError, random_info, resolve_policy

__all__ = [
    "AUTHORS_TEMPLATES",
    "CLIP_ENV",
    "TINY_CLIP",
    "ClipGuide",
    "augment_patches",
    "clip_direction",
    "clip_preprocess",
    "directional_clip_loss",
    "global_clip_loss",
    "global_clip_loss_crops",
    "load_clip",
    "patch_clip_loss",
    "random_patches",
    "random_perspective",
    "resize_crops",
    "perspective_corners",
    "register_tiny_clip",
    "text_embedding",
    "threshold_rejection",
]

CLIP_ENV = "STYLECORE_CLIP_WEIGHTS"  # local-file override of the CLIP checkpoint
Augmentation = Literal["perspective", "affine", "none"]
PerspectiveFill = Literal["zeros", "mask"]  # see random_perspective
CropResize = Literal["bilinear", "bicubic"]  # see resize_crops
Ensemble = Literal["unnormalised_mean", "normalised_mean"]


def _authors_templates() -> tuple[Callable[[str], str], ...]:
    import open_clip

    # github.com/cyclomon/CLIPstyler template.py: OpenAI's 80 ImageNet templates in the same order,
    # without "a photo of many {}." (79 templates).
    return tuple(t for t in open_clip.OPENAI_IMAGENET_TEMPLATES if t("{}") != "a photo of many {}.")


#: The prompt templates of the authors' code (``template.py``): 79 of OpenAI's 80 ImageNet templates.
AUTHORS_TEMPLATES: tuple[Callable[[str], str], ...] = _authors_templates()

#: A 2-layer ViT/text transformer, 64 px input: the real open_clip ``CLIP`` class, tiny.
TINY_CLIP = "stylecore-tiny-ViT"
_TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def register_tiny_clip() -> str:
    """Register :data:`TINY_CLIP` with open_clip's config mechanism (idempotent); returns its name."""
    import open_clip

    if TINY_CLIP not in open_clip.list_models():
        folder = Path(tempfile.gettempdir()) / f"stylecore_open_clip_configs_{os.getuid() if hasattr(os, 'getuid') else 0}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{TINY_CLIP}.json"
        path.write_text(json.dumps(_TINY_CONFIG), encoding="utf-8")
        open_clip.add_model_config(path)
    return TINY_CLIP


class ClipGuide(nn.Module):
    """A frozen open_clip model with differentiable preprocessing and its tokenizer.

    ``encode_images``: (B, 3, H, W) in [0, 1] -> (B, D) unit vectors; gradients flow to the images.
    ``encode_texts``: list of N strings -> (N, D) unit vectors.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable, weights_info: WeightsInfo, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.weights_info = weights_info
        size = model.visual.image_size
        self.image_size: int = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.text_cache: dict[tuple[str, str], torch.Tensor] = {}  # (text, ensemble) -> E_T over the authors' templates

    def train(self, mode: bool = True) -> "ClipGuide":  # frozen: always eval
        return super().train(False)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        x = clip_preprocess(images, self.image_size, self.mean, self.std)
        return F.normalize(self.model.encode_image(x), dim=-1)

    def encode_image_groups(self, *groups: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:meth:`encode_images` of several batches (any sizes) in one model call: one (B_i, D) per group.

        The same embeddings as one call per group (to float rounding); one pass over CLIP's weights
        instead of several (a batch of one costs almost as much as a batch of eight on a CPU).
        """
        x = torch.cat([clip_preprocess(g, self.image_size, self.mean, self.std) for g in groups])
        return F.normalize(self.model.encode_image(x), dim=-1).split([len(g) for g in groups])

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.mean.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)


def clip_preprocess(images: torch.Tensor, size: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """CLIP's resize + normalisation done in torch so gradients reach the pixels: (B,3,H,W) -> (B,3,size,size).

    Notes: CLIP's PIL pipeline resizes the short side and centre-crops; like CLIPstyler's ``clip_normalize``
    (``F.interpolate(image, size=224, mode='bicubic')``) we resize the whole image bicubically, which keeps
    every pixel in the gradient. CLIPstyler's crops are not resized here: its ``augment`` brings them to 224 px
    with ``transforms.Resize(224)``, which is bilinear (:func:`resize_crops`), so this resize leaves them as they are.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W) in [0, 1], got {tuple(images.shape)}")
    if images.shape[-2:] != (size, size):
        h, w = images.shape[-2:]
        # F.interpolate(images, (size, size), mode="bicubic", align_corners=False) as two matrix products (the
        # resize is separable and linear): the same values to float rounding, a third of the time forward + backward
        images = _bicubic_matrix(h, size, images.device, images.dtype) @ images @ _bicubic_matrix(w, size, images.device, images.dtype).T
    return (images - mean) / std


_BICUBIC: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}


def _bicubic_matrix(n_in: int, n_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n_out, n_in) matrix of 1-D bicubic resizing as ``F.interpolate(mode="bicubic", align_corners=False)`` does it.

    Column j is the resize of the unit impulse at j (an identity image resized along one axis; along the
    other the scale is 1, where bicubic weights are exactly (0, 1, 0, 0)). Cached per size, device and dtype.
    """
    key = (n_in, n_out, torch.device(device), dtype)
    if key not in _BICUBIC:
        with torch.inference_mode(False), torch.no_grad():  # a normal tensor even when first built under inference mode
            eye = torch.eye(n_in, device=device, dtype=dtype).view(1, 1, n_in, n_in)
            _BICUBIC[key] = F.interpolate(eye, size=(n_out, n_in), mode="bicubic", align_corners=False)[0, 0].contiguous()
    return _BICUBIC[key]


def _clip_random(arch: str, seed: int, device: str | torch.device) -> nn.Module:
    import open_clip

    import logging

    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)  # open_clip logs "initialized randomly" at WARNING; our label says it
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return open_clip.create_model(arch, pretrained=None, device=device)
    finally:
        root.setLevel(level)


def _resolve_file(arch: str, tag: str, policy: str, local_file: str | os.PathLike[str] | None) -> tuple[str | None, str, str | None]:
    """(path, source, problem): the checkpoint file for (arch, tag), or None and why not."""
    import open_clip

    local = local_file if local_file is not None else os.environ.get(CLIP_ENV) or None
    if local is not None:
        if not Path(local).is_file():
            raise WeightsUnavailableError(f"local CLIP weights file {local} does not exist (from {'argument' if local_file else '$' + CLIP_ENV})")
        return str(local), "local file", None
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        raise WeightsUnavailableError(f"open_clip knows no pretrained tag {tag!r} for {arch!r}; known: {open_clip.list_pretrained_tags_by_model(arch)}")
    if os.environ.get(OFFLINE_ENV) == "1":
        return None, "", f"${OFFLINE_ENV}=1"
    try:
        return open_clip.pretrained.download_pretrained(cfg), "open_clip hub download/cache", None
    except Exception as exc:  # network errors come as many types (requests, huggingface_hub, OSError)
        return None, "", f"{type(exc).__name__}: {exc}"


def load_clip(
    arch: str = "ViT-B-32",
    tag: str = "openai",
    weights: str | None = None,
    local_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> ClipGuide:
    """An open_clip model by (architecture, pretrained tag) under the weights policy.

    Default: ViT-B-32 with OpenAI's weights, as in Kwon & Ye 2022 (Sec. 4). ``arch=TINY_CLIP``
    builds the quick-mode config (random weights only). A local file (argument or
    ``$STYLECORE_CLIP_WEIGHTS``) must be an open_clip state dict (``torch.save(model.state_dict())``,
    ``.bin``/``.pt``/``.safetensors``) and goes through ``open_clip.create_model(arch, pretrained=file)``.

    Raises:
        WeightsUnavailableError: policy "pretrained" and no weights, or a file that does not fit.
        ValueError: unknown architecture or policy.
    """
    import open_clip

    policy = resolve_policy(weights)
    if arch == TINY_CLIP:
        register_tiny_clip()
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown open_clip architecture {arch!r}; e.g. 'ViT-B-32', or {TINY_CLIP!r} for quick mode")
    name = f"CLIP {arch} ({tag})" if arch != TINY_CLIP else f"CLIP {arch}"
    if policy == "random":
        path, source, problem = None, "", "policy 'random'"
    elif arch == TINY_CLIP and local_file is None and not os.environ.get(CLIP_ENV):
        path, source, problem = None, "", f"{TINY_CLIP} is our quick-mode config: no published weights exist"
    else:
        path, source, problem = _resolve_file(arch, tag, policy, local_file)
    if path is None:
        if policy == "pretrained":
            raise WeightsUnavailableError(
                f"pretrained CLIP weights for {arch}/{tag} are not available ({problem}). To fix: run once with network access "
                f"(open_clip caches the download), or save the checkpoint and point ${CLIP_ENV} or local_file=... at it; "
                "or use weights='random' (the same architecture, random weights, no text meaning)."
            )
        if policy == "auto" and arch != TINY_CLIP:
            warnings.warn(f"{name}: pretrained weights unavailable ({problem}); using RANDOM weights, which carry no text meaning.", WeightsFallbackWarning, stacklevel=2)
        model, info = _clip_random(arch, seed, device), random_info(name, seed)
    else:
        quick_gelu = bool(open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu", False))  # OpenAI weights were trained with QuickGELU
        try:
            model = open_clip.create_model(arch, pretrained=path, device=device, force_quick_gelu=quick_gelu)
        except RuntimeError as exc:
            raise WeightsUnavailableError(f"{path} does not fit the open_clip {arch} architecture: {str(exc)[:400]}") from None
        info = WeightsInfo(name, source, sha256_file(path), location=path)
    mean = getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    return ClipGuide(model, open_clip.get_tokenizer(arch), info, mean, std).to(device)


def text_embedding(
    guide: ClipGuide,
    text: str,
    templates: Sequence[Callable[[str], str]] | None = None,
    ensemble: Ensemble = "unnormalised_mean",
) -> torch.Tensor:
    """Prompt ensembling: the text put into K templates, the K embeddings averaged, shape (D,).

    ``"unnormalised_mean"`` (the authors' code, ``train_CLIPstyler.py``): E_T(t) = normalise(mean_k CLIP_T(template_k(t)));
    ``"normalised_mean"`` (Radford et al. 2021, Sec. 3.1.4): E_T(t) = normalise(mean_k normalise(CLIP_T(template_k(t)))).
    ``templates=None``: the authors' 79 templates (:data:`AUTHORS_TEMPLATES`); ``templates=()``: the bare text.

    With the default templates the result is cached on the guide (79 text-encoder passes cost
    seconds with ViT-B/32 on a CPU). Notes: the paper (Sec. 4.1) says "we make several texts with same meaning, and feed them to the text encoder. Then we
    use the averaged embedding"; the two ensembles differ
    because the raw text embeddings have different norms (long templates weigh more unnormalised).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    if ensemble not in ("unnormalised_mean", "normalised_mean"):
        raise ValueError(f"ensemble must be 'unnormalised_mean' (authors' code) or 'normalised_mean' (CLIP paper), got {ensemble!r}")
    cache = getattr(guide, "text_cache", None) if templates is None else None  # the default templates: computed once per model
    if cache is not None and (text, ensemble) in cache:
        return cache[(text, ensemble)]
    templates = AUTHORS_TEMPLATES if templates is None else templates
    prompts = [t(text) for t in templates] or [text]
    with torch.no_grad():
        tokens = guide.tokenizer(prompts).to(guide.mean.device)
        raw = guide.model.encode_text(tokens)  # (K, D), not normalised
    rows = raw if ensemble == "unnormalised_mean" else F.normalize(raw, dim=-1)
    emb = F.normalize(rows.mean(0), dim=-1)
    if cache is not None:
        cache[(text, ensemble)] = emb
    return emb


def global_clip_loss_crops(crop_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Per-crop global CLIP loss 1 − cos(E_I(crop_i), E_T(t)) (Eq. 1 applied to crops): (N, D), (D,) -> (N,)."""
    return 1 - F.cosine_similarity(crop_emb, text_emb.expand_as(crop_emb), dim=-1)


def clip_direction(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Unit direction between embeddings: Δ = (E(target) − E(source)) / ‖·‖, shapes broadcast over (…, D)."""
    return F.normalize(F.normalize(target, dim=-1) - F.normalize(source, dim=-1), dim=-1)


def global_clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Global CLIP loss L_global = 1 − cos(E_I(f(I_c)), E_T(t_sty)) (Kwon & Ye 2022, Eq. 1), mean over B.

    Shapes: ``image_emb`` (B, D), ``text_emb`` (D,) -> scalar.
    """
    return (1 - F.cosine_similarity(image_emb, text_emb.expand_as(image_emb), dim=-1)).mean()


def directional_clip_loss(image_emb: torch.Tensor, source_image_emb: torch.Tensor, text_direction: torch.Tensor, reduction: Literal["mean", "none"] = "mean") -> torch.Tensor:
    """Directional CLIP loss (Kwon & Ye 2022, Eq. 2; Gal et al. 2021).

        ΔT = E_T(t_sty) − E_T(t_src),   ΔI = E_I(f(I_c)) − E_I(I_c),   L_dir = 1 − ΔI·ΔT / (|ΔI| |ΔT|)

    Shapes: ``image_emb`` (B, D), ``source_image_emb`` (1 or B, D), ``text_direction`` (D,) ->
    scalar (``"mean"``) or (B,) (``"none"``).
    """
    delta_i = clip_direction(image_emb, source_image_emb)  # (B, D)
    loss = 1 - F.cosine_similarity(delta_i, text_direction.expand_as(delta_i), dim=-1)  # (B,)
    return loss.mean() if reduction == "mean" else loss


def threshold_rejection(losses: torch.Tensor, tau: float, strict: bool = False) -> torch.Tensor:
    """R(s, τ) = 0 if s ≤ τ else s, elementwise (Kwon & Ye 2022, Sec. 3.2, Eq. 3).

    ``strict=True``: zero only s < τ, as the authors' code does (``loss_temp[loss_temp<args.thresh] = 0`` in
    train_CLIPstyler.py and train_fast.py);
    the two differ only at exactly s = τ.
    """
    rejected = losses < tau if strict else losses <= tau
    return torch.where(rejected, torch.zeros_like(losses), losses)


def patch_clip_loss(patch_emb: torch.Tensor, source_image_emb: torch.Tensor, text_direction: torch.Tensor, tau: float | None = 0.7, strict: bool = False) -> torch.Tensor:
    """PatchCLIP loss: L_patch = 1/N Σ_i R(l_dir(aug(crop_i(f(I_c)))), τ) (Kwon & Ye 2022, Sec. 3.2, Eq. 3).

    Shapes: ``patch_emb`` (N, D) of the augmented crops, ``source_image_emb`` (1, D) of the
    whole content image (as in the authors' code), ``text_direction`` (D,) -> scalar.
    ``source_image_emb`` may also be (N, D): one source per crop (the fast variant's batches).
    ``tau=None`` switches rejection off (ablation (c)); ``strict`` as in :func:`threshold_rejection`.
    """
    per_patch = directional_clip_loss(patch_emb, source_image_emb, text_direction, reduction="none")  # (N,)
    return (per_patch if tau is None else threshold_rejection(per_patch, tau, strict)).mean()


def random_patches(image: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """n random square crops of side ``size`` from a (1, 3, H, W) image -> (n, 3, size, size), differentiable."""
    _, _, h, w = image.shape
    if size > min(h, w):
        raise ValueError(f"patch size {size} is larger than the image ({h}×{w}); lower patch_size or enlarge the image")
    tops = torch.randint(0, h - size + 1, (n,)).to(image.device)
    lefts = torch.randint(0, w - size + 1, (n,)).to(image.device)
    offsets = torch.arange(size, device=image.device)
    rows, cols = (tops[:, None] + offsets)[:, :, None], (lefts[:, None] + offsets)[:, None, :]  # (n, S, 1), (n, 1, S)
    # one gather (backward: one scatter-add into the image) instead of n slices, each of whose backward fills a full-size zero tensor
    crops = image[:, :, rows, cols]  # (B, C, n, S, S)
    return crops.permute(2, 0, 1, 3, 4).reshape(-1, *crops.shape[1:2], size, size)  # (n·B, C, S, S), crop-major


def augment_patches(patches: torch.Tensor, augmentation: Augmentation = "perspective", fill: PerspectiveFill = "zeros") -> torch.Tensor:
    """Random augmentation of each crop independently, gradients kept: (N, 3, S, S) -> (N, 3, S, S).

    ``"perspective"``: ``RandomPerspective(fill=0, p=1, distortion_scale=0.5)`` as in the authors' code
    (Kwon & Ye 2022, Sec. 3.2; Suppl. A: ``RandomPerspective(distortion_scale=0.5)``), batched in one ``grid_sample``
    (:func:`random_perspective`: the same draws and pixels as torchvision's transform crop by crop); ``fill`` picks
    what ``fill=0`` does on a tensor: ``"zeros"`` in torchvision 0.8.2, the version the official code pins, ``"mask"``
    in torchvision ≥ 0.9 (see :func:`random_perspective`). ``"affine"``: RandomAffine(30°, scale 0.8-1.2, shear 15°),
    bilinear like the perspective warp (torchvision's affine default is nearest), the paper's ablation (e), whose
    parameters the paper does not give; ``"none"``: ablation (d). The official ``Resize(224)`` after the warp is
    :func:`resize_crops`.
    """
    if augmentation == "none":
        return patches
    if augmentation == "perspective":
        return random_perspective(patches, distortion_scale=0.5, fill=fill)
    if augmentation == "affine":
        t = v2.RandomAffine(degrees=30, scale=(0.8, 1.2), shear=15, interpolation=v2.InterpolationMode.BILINEAR, fill=None)  # type: ignore[arg-type]
    else:
        raise ValueError(f"augmentation must be 'perspective', 'affine' or 'none', got {augmentation!r}")
    return torch.cat([t(p.unsqueeze(0)) for p in patches])  # per-crop random parameters


def resize_crops(crops: torch.Tensor, size: int, mode: CropResize = "bilinear") -> torch.Tensor:
    """Crops to CLIP's input side, differentiable: (N, 3, S, S) -> (N, 3, size, size).

    ``"bilinear"``: the official ``transforms.Resize(224)`` after the warp (``train_CLIPstyler.py`` ``augment``;
    torchvision's default interpolation is bilinear). The code pins torchvision 0.8.2 (cog.yaml; README "Pytorch
    1.7.1"), whose tensor resize is ``F.interpolate(mode="bilinear", align_corners=False)`` without antialiasing;
    today's ``Resize`` antialiases tensors by default, which changes nothing when enlarging (128 -> 224; tested)
    and would when shrinking: we follow 0.8.2. ``"bicubic"``: :func:`clip_preprocess`'s resize (this project's
    choice before issue 21).
    """
    if crops.shape[-2:] == (size, size):
        return crops
    if mode == "bilinear":
        return F.interpolate(crops, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    if mode == "bicubic":
        return _bicubic_matrix(crops.shape[-2], size, crops.device, crops.dtype) @ crops @ _bicubic_matrix(crops.shape[-1], size, crops.device, crops.dtype).T
    raise ValueError(f"crop resize must be 'bilinear' (the official Resize(224)) or 'bicubic', got {mode!r}")


def perspective_corners(n: int, height: int, width: int, distortion_scale: float = 0.5) -> torch.Tensor:
    """End points of n random perspectives, drawn exactly as torchvision's ``RandomPerspective(p=1)``: (n, 4, 2) int64.

    Corner order top-left, top-right, bottom-right, bottom-left, each (x, y); per perspective the
    transform's ``torch.rand(1)`` (its p test) then the same 8 ``torch.randint`` calls in the same
    order as ``v2.RandomPerspective.make_params`` (and v1's ``get_params``), so a seed gives the
    transform's own draws: x of the left corners in
    [0, ⌊s·⌊W/2⌋⌋], of the right ones in [W − ⌊s·⌊W/2⌋⌋ − 1, W − 1], y likewise with H.
    """
    bw, bh = int(distortion_scale * (width // 2)) + 1, int(distortion_scale * (height // 2)) + 1
    ranges = ((0, bw), (0, bh), (width - bw, width), (0, bh), (width - bw, width), (height - bh, height), (0, bw), (height - bh, height))
    draws = []
    for _ in range(n):
        torch.rand(1)  # the transform's "apply with probability p" draw (p = 1: always applied)
        draws.append([int(torch.randint(lo, hi, size=(1,))) for lo, hi in ranges])
    return torch.tensor(draws, dtype=torch.int64).view(n, 4, 2)


def _perspective_coefficients(corners: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(n, 4, 2) end points -> (n, 8) coefficients (a…h) mapping output pixels to input pixels, as torchvision's.

    Solves, per warp, the 8 equations x_s = (a x + b y + c) / (g x + h y + 1), y_s = (d x + e y + f) / (g x + h y + 1)
    that send each end point (x, y) to its image corner (x_s, y_s), in float64, then rounds to float32.
    """
    start = torch.tensor([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=torch.float64).expand(len(corners), 4, 2)
    p = corners.to(torch.float64)
    x, y, xs, ys = p[..., 0], p[..., 1], start[..., 0], start[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_x = torch.stack([x, y, one, zero, zero, zero, -xs * x, -xs * y], dim=-1)  # (n, 4, 8)
    rows_y = torch.stack([zero, zero, zero, x, y, one, -ys * x, -ys * y], dim=-1)
    a = torch.stack([rows_x, rows_y], dim=2).reshape(-1, 8, 8)  # rows interleaved x0, y0, x1, y1, … as torchvision's
    return torch.linalg.solve(a, start.reshape(-1, 8)).to(torch.float32)


def random_perspective(images: torch.Tensor, distortion_scale: float = 0.5, corners: torch.Tensor | None = None, fill: PerspectiveFill = "zeros") -> torch.Tensor:
    """A random perspective warp per image, all in one ``grid_sample``: (N, C, H, W) -> (N, C, H, W), differentiable.

    Equals torchvision's ``RandomPerspective(distortion_scale, p=1, fill=0)`` applied to each image in turn (bilinear;
    torchvision's output-pixel grid and coefficients): the end points come from :func:`perspective_corners` (the same
    random draws for the same seed) unless ``corners`` (N, 4, 2) is given. Batched instead of N transform calls.

    ``fill="zeros"``: grid_sample's zero padding: torchvision 0.8.2 (the official code's pin), whose tensor perspective
    ignores ``fill`` ("Fill value for the area outside the transform in the output image is always 0"), and
    ``fill=None`` of later versions. ``fill="mask"``: ``fill=0`` of torchvision ≥ 0.9 (v1 ``_apply_grid_transform``):
    a ones channel is warped with the image and the output is ``warped · mask + (1 − mask) · 0``, so pixels that
    blend with the outside are darkened once more. Both back-propagate (v1's blend is out of place; only v2's
    ``fill=0`` path writes in place).
    """
    n, _, h, w = images.shape
    corners = perspective_corners(n, h, w, distortion_scale) if corners is None else corners
    coeffs = _perspective_coefficients(corners, h, w).to(device=images.device, dtype=images.dtype)  # (n, 8)
    theta1 = torch.stack([coeffs[:, 0:3], coeffs[:, 3:6]], dim=1)  # (n, 2, 3): numerators
    theta2 = torch.cat([coeffs[:, 6:8], torch.ones_like(coeffs[:, :1])], dim=1).unsqueeze(1)  # (n, 1, 3): denominator
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device, dtype=images.dtype) + 0.5, torch.arange(w, device=images.device, dtype=images.dtype) + 0.5, indexing="ij")
    base = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, h * w, 3)  # output pixel centres, homogeneous
    scale = torch.tensor([0.5 * w, 0.5 * h], device=images.device, dtype=images.dtype)
    grid = (base @ (theta1.transpose(1, 2) / scale)) / (base @ theta2.transpose(1, 2)) - 1.0  # (n, h·w, 2), grid_sample's [-1, 1]
    if fill == "zeros":
        return F.grid_sample(images, grid.view(n, h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
    if fill != "mask":
        raise ValueError(f"perspective fill must be 'zeros' (torchvision 0.8.2, the official pin) or 'mask' (fill=0 in torchvision ≥ 0.9), got {fill!r}")
    warped = F.grid_sample(torch.cat([images, torch.ones_like(images[:, :1])], dim=1), grid.view(n, h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
    mask = warped[:, -1:].expand_as(images)  # (n, C, h, w): how much of each output pixel came from inside the image
    return warped[:, :-1] * mask + (1.0 - mask) * torch.zeros_like(images)  # torchvision's img · mask + (1 − mask) · fill_img, fill 0
