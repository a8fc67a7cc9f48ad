"""VGG19 features addressed by the paper's layer names (``conv1_1``, ``relu4_2``, ``pool5``).

Gatys et al. 2016 (Sec. 2) describe images by the responses of VGG19's 16 convolutional and
5 pooling layers; every later notebook reuses the same extractor. Notebook 01, section
"The feature space", explains the naming.

Three sets of VGG19 weights, each with the input its training used (``VGG19_VARIANTS``):

- ``"torchvision"``: torchvision's ImageNet VGG19; RGB in [0, 1], ImageNet mean/std normalised.
- ``"caffe"``: the original Caffe VGG19 of Simonyan & Zisserman as converted to PyTorch by
  jcjohnson/pytorch-vgg (the file neural-style ports and pystiche load); BGR in 0–255 minus
  the ImageNet mean pixel. Luan et al. 2017 and Dumoulin et al. 2017 used this input scale;
  ``"caffe_x256"`` is the same network with the torch7 ports' ×256 (Luan et al.'s code).
- ``"gatys_normalized"``: the normalised VGG19 of Gatys et al. (``vgg_conv.pth`` of
  leongatys/PytorchNeuralStyleTransfer), Caffe input.

and the paper's normalisation (Gatys et al. 2016, Sec. 2) computed for any of them
(``normalize=True``): see :func:`normalization_means`.

Notes:
    The paper's "conv4_2" means the *rectified* response: the authors' Caffe model ran
    ReLU in place, so a blob named conv4_2 held relu4_2's values. Here ``conv4_2`` is the
    pre-activation and ``relu4_2`` the rectified one; the presets use ``relu*`` names.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torchvision
from torch import nn

from ..weights import Checkpoint, WeightsFallbackWarning, WeightsInfo, build_with_weights, resolve_checkpoint, resolve_policy

__all__ = [
    "VGG19_LAYERS",
    "VGG19_VARIANTS",
    "VGGFeatures",
    "VGGVariant",
    "caffe_preprocess",
    "calibration_images",
    "feature_scales",
    "imagenet_normalize",
    "effective_means",
    "normalization_means",
    "normalize_vgg_",
    "vgg19_checkpoint",
    "vgg19_features",
]

Preprocessing = Literal["imagenet", "caffe", "caffe_x256"]


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


#: The ImageNet mean pixel in BGR order on the 0–255 scale, subtracted by Caffe VGG models
#: (PytorchNeuralStyleTransfer writes it as 255 · (0.40760392, 0.45795686, 0.48501961)).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def caffe_preprocess(image: torch.Tensor, scale: float = 255.0) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> BGR on 0–255 minus the mean pixel, as Caffe VGG models expect.

    ``scale=256``: neural-style's ``preprocess`` (``img:mul(256.0)``), which Luan et al.'s
    ``deepmatting_seg.lua`` copies; activations are then ≈ 0.4 % larger than with 255.
    """
    mean = image.new_tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    return image.flip(1) * scale - mean


_PREPROCESS = {"imagenet": imagenet_normalize, "caffe": caffe_preprocess, "caffe_x256": lambda image: caffe_preprocess(image, 256.0)}


def _gatys_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``vgg_conv.pth`` names convolutions ``conv1_1.weight`` …; map them to ``features.<index>.*``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = re.fullmatch(r"(conv\d_\d)\.(weight|bias)", key)
        if match is None:
            raise KeyError(f"unexpected key {key!r} in a vgg_conv.pth state dict (expected conv<b>_<i>.weight/bias)")
        out[f"features.{VGG19_LAYERS.index(match.group(1))}.{match.group(2)}"] = value
    return out


@dataclass(frozen=True)
class VGGVariant:
    """One published set of VGG19 weights: where it comes from, and the input it was trained on."""

    checkpoint: Checkpoint
    preprocessing: Preprocessing
    source: str
    features_only: bool = False  # the file holds the convolutions only (no classifier)
    normalized: bool = False  # the file is a normalised network (mean activation 1 per filter)


def vgg19_checkpoint() -> Checkpoint:
    """torchvision's ImageNet VGG19 (``VGG19_Weights.IMAGENET1K_V1``) as a :class:`Checkpoint`."""
    w = torchvision.models.VGG19_Weights.IMAGENET1K_V1
    return Checkpoint(name="VGG19 ImageNet (torchvision IMAGENET1K_V1)", url=w.url, env_var="STYLECORE_VGG19_WEIGHTS", license="BSD-3 (torchvision); weights: ImageNet terms")


_CAFFE_VGG19 = Checkpoint(
    name="VGG19 Caffe (Simonyan & Zisserman 2014, converted by jcjohnson/pytorch-vgg)",
    url="https://s3-us-west-2.amazonaws.com/jcjohns-models/vgg19-d01eb7cb.pth",
    env_var="STYLECORE_VGG19_CAFFE_WEIGHTS",
    license="CC BY 4.0 (VGG, Oxford)",
)

VGG19_VARIANTS: dict[str, VGGVariant] = {
    "torchvision": VGGVariant(vgg19_checkpoint(), "imagenet", "torchvision.models.VGG19_Weights.IMAGENET1K_V1 (retrained in PyTorch)"),
    "caffe": VGGVariant(
        _CAFFE_VGG19,
        "caffe",
        "jcjohnson/pytorch-vgg README: VGG_ILSVRC_19_layers.caffemodel in torchvision's key layout; BGR 0–255 minus the mean pixel",
    ),
    "caffe_x256": VGGVariant(
        _CAFFE_VGG19,
        "caffe_x256",
        "the same Caffe VGG19 with the torch7 ports' input: jcjohnson/neural-style and Luan et al.'s deepmatting_seg.lua "
        "preprocess() multiply by 256, not 255, before subtracting the mean pixel",
    ),
    "gatys_normalized": VGGVariant(
        Checkpoint(
            name="VGG19 normalised by Gatys et al. (vgg_conv.pth)",
            url="https://bethgelab.org/media/uploads/pytorch_models/vgg_conv.pth",
            env_var="STYLECORE_VGG19_NORMALIZED_WEIGHTS",
            license="CC BY 4.0 (VGG, Oxford); normalisation: Gatys et al.",
        ),
        "caffe",
        "leongatys/PytorchNeuralStyleTransfer, NeuralStyleTransfer.ipynb: VGG() loads vgg_conv.pth; prep turns RGB to BGR, subtracts the mean, multiplies by 255",
        features_only=True,
        normalized=True,
    ),
}


class VGGFeatures(nn.Module):
    """Frozen VGG19 truncated after the deepest requested layer; returns {name: activation}.

    Input: (B, 3, H, W) RGB in [0, 1]; the variant's preprocessing (ImageNet normalisation or
    Caffe BGR 0–255) happens inside. Output: dict mapping each requested layer name to its
    (B, C_l, H_l, W_l) activation. ``channel_means`` is set when the network was normalised
    (:func:`normalize_vgg_`): {relu name: (C_l,) divisor, the original network's mean activation}.
    ``ceil_mode=True``: every pooling rounds its output size up (Caffe/loadcaffe), not down (torchvision).
    """

    def __init__(
        self,
        vgg: nn.Module,
        layers: Iterable[str],
        pooling: Literal["max", "avg"] = "avg",
        weights_info: WeightsInfo | None = None,
        preprocessing: Preprocessing = "imagenet",
        ceil_mode: bool = False,
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
        if preprocessing not in _PREPROCESS:
            raise ValueError(f"preprocessing must be one of {tuple(_PREPROCESS)}, got {preprocessing!r}")
        self.pooling = pooling
        self.ceil_mode = ceil_mode  # True: pooled sizes ceil(H/2) as Caffe/loadcaffe; False: floor as torchvision
        self.preprocessing = preprocessing
        self.weights_info = weights_info
        self.variant = "torchvision"
        self.channel_means: dict[str, torch.Tensor] | None = None
        depth = max(VGG19_LAYERS.index(n) for n in self.layers) + 1
        modules: list[nn.Module] = []
        for name, module in zip(VGG19_LAYERS[:depth], vgg.features[:depth]):
            if name.startswith("relu"):
                # in place unless that would overwrite a requested conv output (autograd allows it: the
                # frozen conv saves nothing of its output, and ReLU's backward reads its own result)
                module = nn.ReLU(inplace=name.replace("relu", "conv") not in self.layers)
            elif name.startswith("pool") and pooling == "avg":
                # Gatys et al. 2016, Sec. 2: "replacing the maximum pooling operation by average pooling … slightly more appealing results"
                module = nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode)
            elif name.startswith("pool"):
                module = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode)
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
        pools = sum(name.startswith("pool") for name in VGG19_LAYERS[: self.depth - 1])
        if min(image.shape[-2:]) < 2**pools:
            deepest = VGG19_LAYERS[self.depth - 1]
            raise ValueError(
                f"an image of {image.shape[-1]}×{image.shape[-2]} px is too small for layer {deepest}: it is reached after "
                f"{pools} poolings, so each side needs at least {2**pools} px. Resize it (stylecore.images.resize_longest) "
                "or use shallower layers."
            )
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        x = _PREPROCESS[self.preprocessing](image)
        for name, module in zip(VGG19_LAYERS, self.body):
            x = module(x)
            if name in wanted:
                out[name] = x
        return out


def calibration_images(size: int = 256, data_dir: str | os.PathLike[str] | None = None) -> dict[str, torch.Tensor]:
    """The collection's sample images used to normalise VGG19: {name: (1, 3, H, W)}, longest side ``size``.

    scikit-image's four photos, the Tübingen photo, the four paintings and the Deep Photo
    inputs and references (``data/manifest.json``); a fixed set, so the scales are reproducible.
    """
    from ..data import DataError, list_samples, load_sample

    names = [n for n in list_samples() if not n.startswith(("dpst_seg", "dpst_result"))]
    try:
        return {n: load_sample(n, size, data_dir) for n in names}
    except (DataError, OSError) as exc:
        raise DataError(
            f"normalising VGG19 needs the collection's sample images ({exc}). Point $STYLECORE_DATA_DIR "
            "(or data_dir=) at the shared data folder, allow the download, or pass your own images to normalization_means()."
        ) from None


def _convs(vgg: nn.Module, depth: int = len(VGG19_LAYERS)) -> list[tuple[str, nn.Conv2d]]:
    return [(n.replace("conv", "relu"), m) for n, m in zip(VGG19_LAYERS[:depth], vgg.features[:depth]) if n.startswith("conv")]


@torch.no_grad()
def normalization_means(
    vgg: nn.Module,
    images: Sequence[torch.Tensor],
    preprocessing: Preprocessing = "imagenet",
    pooling: Literal["max", "avg"] = "max",
) -> dict[str, torch.Tensor]:
    """Mean activation of every filter over images and positions: {relu name: (C_l,)}.

    Gatys et al. 2016, Sec. 2: "We used the feature space provided by a normalised version
    of the 16 convolutional and 5 pooling layers of the 19-layer VGG network. We normalized
    the network by scaling the weights such that the mean activation of each convolutional
    filter over images and positions is equal to one."

    The means are those of the *given* network with the given pooling; dividing by them
    (:func:`normalize_vgg_`) makes each mean exactly 1 on these images.
    """
    extractor = VGGFeatures(vgg, [n for n in VGG19_LAYERS if n.startswith("relu")], pooling, preprocessing=preprocessing)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for image in images:
        feats = extractor(image)
        count += image.shape[0] * image.shape[-2] * image.shape[-1]  # positions at full size, rescaled per layer below
        for name, f in feats.items():
            total = f.double().sum(dim=(0, 2, 3)) * (image.shape[-2] * image.shape[-1]) / (f.shape[-2] * f.shape[-1])
            sums[name] = sums.get(name, 0) + total
    return {name: (total / count).float() for name, total in sums.items()}


def effective_means(means: Mapping[str, torch.Tensor], floor: float = 1e-3) -> dict[str, torch.Tensor]:
    """The divisors :func:`normalize_vgg_` uses: μ_l, except for filters that (almost) never fire.

    A filter whose mean is below ``floor`` × its layer's median mean fires on almost none of
    the calibration images (common with random weights: means down to 1e-9 of the median);
    dividing by its mean would amplify it by up to 1e9 and let it dominate every Gram loss
    (and overflow float32). Such filters are divided by the layer's median mean instead.
    """
    out = {}
    for name, mu in means.items():
        median = mu.median().clamp_min(torch.finfo(mu.dtype).tiny)
        out[name] = torch.where(mu >= floor * median, mu, median)
    return out


@torch.no_grad()
def normalize_vgg_(vgg: nn.Module, means: Mapping[str, torch.Tensor]) -> nn.Module:
    """Rescale VGG19's convolutions in place so that relu_l becomes relu_l / μ_l, per channel.

        W_l ← W_l · diag(μ_{l−1}) / μ_l (per output filter),   b_l ← b_l / μ_l

    ReLU and both poolings commute with positive per-channel scaling, so every activation
    of the new network is the old one divided by its filter's μ_l: the same network up to
    these factors, with mean activation 1 (Gatys et al. 2016, Sec. 2). ``means`` are the
    divisors, normally :func:`effective_means` of :func:`normalization_means`.
    """
    previous: torch.Tensor | None = None
    depth = max(VGG19_LAYERS.index(n) for n in means) + 1
    for relu, conv in _convs(vgg, depth):
        mu = means[relu].to(conv.weight.dtype)
        if not bool((mu > 0).all()):
            raise ValueError(f"divisors for {relu} must be positive; pass effective_means(...) of the raw means")
        if previous is not None:
            conv.weight.mul_(previous.view(1, -1, 1, 1))
        conv.weight.div_(mu.view(-1, 1, 1, 1))
        conv.bias.div_(mu)
        previous = mu
    return vgg


def _normalization_cache_key(info: WeightsInfo, variant: str, pooling: str, size: int) -> str:
    weights = info.sha256 or f"random-seed-{info.seed}"
    text = f"v1|{variant}|{weights}|{pooling}|{size}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _cached_means(vgg: nn.Module, info: WeightsInfo, variant: str, pooling: str, size: int, data_dir: str | os.PathLike[str] | None) -> dict[str, torch.Tensor]:
    from ..images import atomic_path

    root = Path(os.environ.get("STYLECORE_CACHE") or Path.home() / ".cache" / "stylecore") / "vgg_normalization"
    path = root / f"{_normalization_cache_key(info, variant, pooling, size)}.pt"
    from ..cache import load_checked

    if (cached := load_checked(path, "VGG19 normalisation means")) is not None:
        return cached
    images = list(calibration_images(size, data_dir).values())
    means = normalization_means(vgg, images, VGG19_VARIANTS[variant].preprocessing, pooling)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(means, tmp)
    return means


#: Sizes of the tensors torchvision's VGG19 classifier draws at construction (three Linear
#: layers, weight then bias; default init ``uniform_``), before its convolutions are initialised.
_CLASSIFIER_DRAWS = (25088 * 4096, 4096, 4096 * 4096, 4096, 4096 * 1000, 1000)


def _skip_classifier_draws(chunk: int = 1 << 20) -> None:
    """Consume the random numbers torchvision's classifier construction would, without building it.

    The CPU generator draws one number per element of ``uniform_`` whatever the tensor's size,
    so filling a 4 MB buffer repeatedly advances it exactly as the 400 MB classifier would
    (``tests/test_vgg.py`` checks bit-equality with ``torchvision.models.vgg19``).
    """
    buf = torch.empty(chunk)
    for n in _CLASSIFIER_DRAWS:
        while n > 0:
            k = min(n, chunk)
            buf[:k].uniform_()
            n -= k


def _vgg19_body(like_torchvision: bool = False) -> nn.Module:
    """VGG19's convolutional part only, in torchvision's key layout (``features.<i>.*``).

    ``like_torchvision=True``: for a given seed, the random weights equal those of
    ``torchvision.models.vgg19(weights=None).features`` bit for bit, without building its
    102 M-parameter classifier (≈ 0.7 s and 400 MB saved per model).
    """
    body = nn.Module()
    body.features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    if like_torchvision:
        _skip_classifier_draws()
    for m in body.features.modules():
        if isinstance(m, nn.Conv2d):  # torchvision's VGG initialisation
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return body


def _features_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A whole-VGG19 state dict (torchvision layout) -> its ``features.*`` entries; the classifier is not used."""
    return {k: v for k, v in state.items() if not k.startswith("classifier.")}


def _available(ckpt: Checkpoint) -> tuple[bool, str]:
    """Whether ``ckpt`` can be had (local, cached or downloaded, hash-checked) under "auto"; and why not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeightsFallbackWarning)
        path, _ = resolve_checkpoint(ckpt, "auto")  # a file with a wrong hash still raises
    reason = next((str(w.message).split(";")[0] for w in caught if issubclass(w.category, WeightsFallbackWarning)), "")
    return path is not None, reason


def vgg19_features(
    layers: Iterable[str],
    pooling: Literal["max", "avg"] = "avg",
    weights: str | None = None,
    local_file: str | os.PathLike[str] | None = None,
    local_sha256: str | None = None,
    seed: int = 0,
    truncate: bool = True,
    variant: str = "torchvision",
    normalize: bool = False,
    calibration_size: int = 256,
    data_dir: str | os.PathLike[str] | None = None,
    preprocessing: Preprocessing | None = None,
    ceil_mode: bool = False,
) -> VGGFeatures:
    """Frozen VGG19 feature extractor for ``layers`` under the weights policy ``weights``.

    ``variant``: a key of :data:`VGG19_VARIANTS` (weights and their input preprocessing).
    ``normalize=True``: Gatys et al.'s normalisation (Sec. 2), computed on the collection's
    sample images at ``calibration_size`` px with this extractor's pooling and cached by
    weights hash (``$STYLECORE_CACHE/vgg_normalization``). ``preprocessing`` overrides the
    variant's input convention (the same weights fed another input scale, e.g. to measure
    what an input scale does to the loss terms). ``truncate=False`` keeps all 37
    modules (only useful to measure what truncation saves). ``ceil_mode=True`` pools to
    ⌈H/2⌉ × ⌈W/2⌉ as Caffe (and loadcaffe, which the Torch7 ports use) does; torchvision floors,
    which drops the last row/column at odd sizes. The returned module's
    ``weights_info.label`` says which weights were used.

    ``variant="gatys_normalized"`` under ``weights="auto"`` without a local file: ``vgg_conv.pth``
    if it can be had (cached or downloaded), else torchvision's VGG19 (hash-checked) normalised
    here as Sec. 2 says (``normalize=True``; ``extractor.variant`` is then "torchvision" and a
    :class:`WeightsFallbackWarning` says so), and only if neither can be had random weights.

    Notes: random weights (offline) give the same architecture with torchvision's
    initialisation, not normalised unless ``normalize=True`` ("gatys_normalized" is a
    normalised network only when its file is loaded; notebook 01 measures what that means).
    The bethgelab URL of ``vgg_conv.pth`` has been reported dead since 2023
    (leongatys/PytorchNeuralStyleTransfer issue #17), hence the torchvision stand-in.
    """
    if variant not in VGG19_VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VGG19_VARIANTS)}, got {variant!r}")
    spec = VGG19_VARIANTS[variant]
    if variant == "gatys_normalized" and local_file is None and not os.environ.get(spec.checkpoint.env_var) and resolve_policy(weights) == "auto":
        have_file, why = _available(spec.checkpoint)
        if not have_file and _available(vgg19_checkpoint())[0]:
            warnings.warn(
                f"{why}; using torchvision's VGG19 (IMAGENET1K_V1, sha256-checked) normalised to mean activation 1 on the sample "
                "images (Sec. 2) instead: the paper's feature space up to the network's training, so the paper's weights apply",
                WeightsFallbackWarning,
                stacklevel=2,
            )
            ex = vgg19_features(layers, pooling, "pretrained", None, None, seed, truncate, "torchvision", True, calibration_size, data_dir, preprocessing, ceil_mode)
            info = ex.weights_info
            assert info is not None
            ex.weights_info = WeightsInfo(f"{info.name} (stand-in for vgg_conv.pth, which could not be had)", info.source, info.sha256, info.seed, info.location)
            return ex
    if spec.features_only:
        build, adapt = _vgg19_body, _gatys_keys
    else:
        build, adapt = (lambda: _vgg19_body(like_torchvision=True)), _features_keys
    ckpt = vgg19_checkpoint() if variant == "torchvision" else spec.checkpoint  # read at call time (tests replace it)
    vgg, info = build_with_weights(build, ckpt, weights, local_file, local_sha256, seed, adapt=adapt)
    means = None
    if normalize:
        means = effective_means(_cached_means(vgg, info, variant, pooling, calibration_size, data_dir))
        normalize_vgg_(vgg, means)
        info = WeightsInfo(f"{info.name}, normalised to mean activation 1", info.source, info.sha256, info.seed, info.location)
    layers = tuple(layers)
    extractor = VGGFeatures(vgg, layers if truncate else (*layers, "pool5"), pooling, info, preprocessing or spec.preprocessing, ceil_mode)
    extractor.variant = variant
    extractor.channel_means = means
    if not truncate:
        extractor.layers = tuple(dict.fromkeys(layers))
    return extractor


@torch.no_grad()
def feature_scales(a: VGGFeatures, b: VGGFeatures, images: Sequence[torch.Tensor], layers: Iterable[str]) -> dict[str, float]:
    """Per-layer ratio of mean activations, network ``a`` over network ``b``, on ``images``.

    A loss weight tuned for network ``b`` carries over to ``a`` by the power of this ratio
    that the loss is homogeneous in: squared-error content terms scale as r², Gram terms
    (Gatys et al. 2016, Eq. 4) as r⁴. Used to *derive* the factor when a preset meets
    another network instead of guessing it.
    """
    layers = tuple(layers)
    sums = {n: [0.0, 0.0] for n in layers}
    for image in images:
        fa, fb = a(image), b(image)
        for n in layers:
            sums[n][0] += float(fa[n].abs().mean())
            sums[n][1] += float(fb[n].abs().mean())
    return {n: sa / sb for n, (sa, sb) in sums.items()}
