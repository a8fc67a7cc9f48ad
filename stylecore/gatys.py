"""Neural style transfer of Gatys, Ecker & Bethge (CVPR 2016): hyper-parameters and the loss.

Two hyper-parameter sets, each value with its source:

- ``PAPER``: the CVPR 2016 paper;
- ``AUTHORS_CODE``: the authors' own PyTorch notebook
  (github.com/leongatys/PytorchNeuralStyleTransfer, ``NeuralStyleTransfer.ipynb``).

Notebook 01 writes the total loss out inline and checks it against :class:`GatysLoss`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from .images import resize_longest
from .losses import content_loss, gram_matrix, style_loss, total_variation
from .compiling import CompileMode
from .optim import OptimResult, optimize_pixels
from .nets.vgg import VGGFeatures

__all__ = ["AUTHORS_CODE", "PAPER", "PRESETS", "GatysHyperParams", "GatysLoss", "carry_over", "coarse_to_fine", "initial_image"]

STYLE_LAYERS_5 = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class GatysHyperParams:
    """Everything that differs between runs of the method; ``source`` says where values come from."""

    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]  # w_l in Eq. 5
    alpha: float  # α in Eq. 7 (content)
    beta: float  # β in Eq. 7 (style)
    pooling: Literal["max", "avg"]
    optimizer: Literal["lbfgs", "adam"]
    iterations: int
    image_size: int  # longest side, pixels
    init: Literal["noise", "content", "style"]
    content_reduction: Literal["paper", "mean"] = "paper"
    tv_weight: float = 0.0
    vgg_variant: str = "gatys_normalized"  # key of stylecore.nets.vgg.VGG19_VARIANTS the weights above were meant for
    source: Mapping[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> "GatysHyperParams":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.content_layers, *self.style_layers]))


PAPER = GatysHyperParams(
    content_layers={"relu4_2": 1.0},
    style_layers={name: 1 / 5 for name in STYLE_LAYERS_5},
    alpha=1.0,
    beta=1e3,
    pooling="avg",
    optimizer="lbfgs",
    iterations=1000,
    image_size=512,
    init="noise",
    source={
        "content_layers": "Sec. 3: content matched on conv4_2 (rectified; see stylecore.nets.vgg notes)",
        "style_layers": "Sec. 3: conv1_1…conv5_1, w_l = 1/5, others 0",
        "alpha/beta": "Fig. 3: α/β = 1e-3 (Fig. 4 sweeps 1e-5…1e-2)",
        "pooling": "Sec. 2: average pooling instead of max pooling",
        "optimizer": "Sec. 2.3: L-BFGS",
        "iterations": "not stated in the paper; 1000 is what jcjohnson/neural-style uses",
        "image_size": "Sec. 3: 512 px (e.g. the Tübingen photo)",
        "init": "Sec. 2.3/Fig. 6: white noise (Fig. 6 compares content/style init)",
        "content_reduction": "Eq. 1: ½ Σ (F − P)²",
        "vgg_variant": "Sec. 2: 'a normalised version of the 16 convolutional and 5 pooling layers of the 19-layer VGG network' (mean activation of each filter 1); the authors' file vgg_conv.pth",
    },
)

AUTHORS_CODE = GatysHyperParams(
    content_layers={"relu4_2": 1.0},
    # weights 1e3/n² on mean((G/M − A/M)²) = 4 E_l, i.e. 4e3/n² on the paper's E_l (losses.style_layer_loss notes)
    style_layers={name: 4e3 / n**2 for name, n in zip(STYLE_LAYERS_5, (64, 128, 256, 512, 512))},
    alpha=1.0,
    beta=1.0,
    pooling="max",
    optimizer="lbfgs",
    iterations=500,
    image_size=512,
    init="content",
    content_reduction="mean",
    source={
        "content_layers": "NeuralStyleTransfer.ipynb: content_layers=['r42'], content_weights=[1e0]",
        "style_layers": "NeuralStyleTransfer.ipynb: style_layers r11…r51, weights 1e3/n² for n = 64,128,256,512,512 (×4, see notes)",
        "alpha/beta": "the weights above carry the balance; α = β = 1",
        "pooling": "NeuralStyleTransfer.ipynb: VGG(pool='max') by default",
        "optimizer": "NeuralStyleTransfer.ipynb: optim.LBFGS, max_iter=500",
        "iterations": "max_iter = 500",
        "image_size": "img_size = 512",
        "init": "opt_img initialised as a copy of the content image",
        "content_reduction": "GramMSELoss/MSELoss: mean squared error",
        "vgg_variant": "NeuralStyleTransfer.ipynb: vgg.load_state_dict(torch.load(model_dir + 'vgg_conv.pth')), the normalised VGG19, Caffe input",
    },
)

PRESETS: dict[str, GatysHyperParams] = {"paper": PAPER, "authors_code": AUTHORS_CODE}


def carry_over(hp: GatysHyperParams, scales: Mapping[str, float]) -> GatysHyperParams:
    """The preset's layer weights for a network whose activations are ``scales[l]`` times larger.

    Eq. 1 is quadratic and Eq. 4 quartic in the activations, so a network with activations
    r_l times those the preset was tuned on needs w_l / r_l² on content layers and
    w_l / r_l⁴ on style layers for the same balance. ``scales`` come from
    :func:`stylecore.nets.vgg.feature_scales` (measured, not guessed).
    """
    return hp.with_(
        content_layers={l: w / scales[l] ** 2 for l, w in hp.content_layers.items()},
        style_layers={l: w / scales[l] ** 4 for l, w in hp.style_layers.items()},
    )


def initial_image(kind: str, content: torch.Tensor, style: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Starting point of the optimisation: uniform white noise, the content image, or the style image resized to it."""
    if kind == "noise":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(content.shape, generator=gen)
    if kind == "content":
        return content.clone()
    if kind == "style":
        return torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    raise ValueError(f"init must be 'noise', 'content' or 'style', got {kind!r}")


class GatysLoss:
    """L_total(x) = α L_content(x, p) + β L_style(x, a) [+ λ_tv R(x)] (Gatys et al. 2016, Eq. 7).

    The targets P^l and A^l are computed once at construction, not at every step.
    Calling it returns the weighted terms, ready for :func:`stylecore.optim.optimize_pixels`.
    Either image may be None to reconstruct from content only or style only (Fig. 1).
    """

    def __init__(self, extractor: VGGFeatures, hp: GatysHyperParams, content: torch.Tensor | None, style: torch.Tensor | None) -> None:
        missing = [n for n in hp.layers if n not in extractor.layers]
        if missing:
            raise ValueError(f"the extractor does not compute layers {missing}; build it with vgg19_features({list(hp.layers)})")
        self.extractor, self.hp = extractor, hp
        with torch.no_grad():
            self.content_targets = {k: v for k, v in extractor(content).items() if k in hp.content_layers} if content is not None else {}
            style_feats = {k: v for k, v in extractor(style).items() if k in hp.style_layers} if style is not None else {}
            self.style_grams = {k: gram_matrix(v) for k, v in style_feats.items()}  # A^l, Eq. 3
            self.style_positions = {k: v.shape[-2] * v.shape[-1] for k, v in style_feats.items()}  # M_l of the style image

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.extractor(x)
        hp = self.hp
        terms: dict[str, torch.Tensor] = {}
        if self.content_targets:
            l_content = sum(w * content_loss(feats[k], self.content_targets[k], hp.content_reduction) for k, w in hp.content_layers.items())
            terms["content"] = hp.alpha * l_content
        if self.style_grams:
            terms["style"] = hp.beta * style_loss(feats, self.style_grams, hp.style_layers, self.style_positions)
        if hp.tv_weight:
            terms["tv"] = hp.tv_weight * total_variation(x)
        if not terms:
            raise ValueError("nothing to optimise: give a content image, a style image, or both")
        return terms


def coarse_to_fine(
    extractor: VGGFeatures,
    hp: GatysHyperParams,
    content: torch.Tensor,
    style: torch.Tensor,
    sizes: Sequence[int],
    steps: Sequence[int],
    init: str = "noise",
    seed: int = 0,
    target_loss: float | None = None,
    progress: bool = True,
    compile: CompileMode = "auto",  # noqa: A002 — per stage, see optim.optimize_pixels
) -> list[OptimResult]:
    """Optimise at a few resolutions, each stage starting from the previous result upsampled.

    Not the paper's method (Gatys et al. 2016 optimise at the output size from white noise): a
    documented speed-up that spends most iterations where they are cheap. ``sizes``: longest
    sides in ascending order, the last one that of ``content`` (1, 3, H, W) at full size;
    ``steps``: L-BFGS iterations per stage. The style image is resized by the same factor as the
    content at every stage; stage 0 starts from :func:`initial_image` (``init``), later ones from
    the previous result, bilinearly upsampled. ``target_loss`` stops the last stage once the
    paper's loss at full size reaches it. Returns one :class:`~stylecore.optim.OptimResult` per
    stage; the last one's history is the paper's loss at full size, so its values compare
    directly with a run made the paper's way (``benchmarks/bench_time_to_result.py``).

    ``compile`` is decided per stage (its pixels × its steps; each stage's size compiles anew).

    Notes: Eq. 1 sums over positions, so at a coarse stage the content term is smaller relative
    to the style term than at full size; the last stage optimises the paper's balance.
    """
    if len(sizes) != len(steps) or not sizes:
        raise ValueError(f"give one step count per size, got sizes {list(sizes)} and steps {list(steps)}")
    full = max(content.shape[-2:])
    if list(sizes) != sorted(sizes) or sizes[-1] != full:
        raise ValueError(f"sizes must ascend to the content's longest side {full}, got {list(sizes)}")
    results: list[OptimResult] = []
    x = None
    for stage, (size, n) in enumerate(zip(sizes, steps)):
        c = content if size == full else resize_longest(content, size)
        s = style if size == full else torch.nn.functional.interpolate(style, scale_factor=size / full, mode="bilinear", antialias=True, align_corners=False)
        if x is None:
            x = initial_image(init, c, s, seed)
        else:
            x = torch.nn.functional.interpolate(x, size=c.shape[-2:], mode="bilinear", align_corners=False)
        last = stage == len(sizes) - 1
        res = optimize_pixels(x, GatysLoss(extractor, hp, c, s), n, progress=progress, desc=f"stage {stage + 1}: {size} px",
                              seed=seed, target_loss=target_loss if last else None, clamp=last, compile=compile)
        results.append(res)
        x = res.image
    return results
