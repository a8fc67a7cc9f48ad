"""Training a feed-forward style network with perceptual losses, checkpointed and resumable.

Losses (Johnson et al. 2016; Dumoulin et al. 2017, Sec. 2 and appendix), with F^l the VGG
responses and G the Gram matrix normalised by H_l·W_l (``losses.gram_matrix(normalize=True)``):

    L_c = λ_c Σ_{l ∈ C} mean((F^l(T(x, s)) − F^l(x))²)
    L_s = λ_s Σ_{l ∈ S} w_l mean((G(F^l(T(x, s))) − G(F^l(a_s)))²)

(w_l = 1 unless the weights were carried over to another loss network, :func:`carry_over`).

Training: Adam (lr 1e-3), random crops + horizontal flips of the content photos, one style
per batch drawn uniformly. Every ``checkpoint_every`` steps the model, the optimiser, the
data RNG and the loss history are written atomically; a run killed at any point and started
again with the same arguments resumes from its last checkpoint and ends bit-for-bit where an
uninterrupted run would. A finished run is cached under a hash of everything that determines
its result (initial weights, config, images, VGG weights), so a rerun only loads it.
Notebook 03, section "Training", shows the loop.

Notes: the paper used VGG-16 and ImageNet photos; we use the project's VGG19 (one extractor
for the whole collection) with the paper's layers mapped to the same depth (block ends), and
the few offline sample photos.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .network import StyleTransferNetwork
from ..images import atomic_path
from ..losses import gram_matrix
from ..nets.vgg import VGGFeatures
from ..weights import WeightsUnavailableError, load_state_dict_file

__all__ = [
    "PAPER_TRAINING",
    "PAPER_LOSS_NETWORK",
    "TrainConfig",
    "TrainResult",
    "carry_over",
    "evaluate_losses",
    "evaluation_batches",
    "perceptual_losses",
    "random_crops",
    "relative_change",
    "style_grams",
    "train_style_network",
    "training_key",
]

#: Dumoulin et al. 2017 used VGG-16 conv1…conv4 (style) and conv3 (content) block outputs; the
#: VGG19 layers at the same depth are the ends of blocks 1–4.
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
#: Bump when the training code changes what a run produces: old cached networks are then ignored.
CACHE_VERSION = 2
CONTENT_LAYERS = ("relu3_4",)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (hashed into the cache key)."""

    steps: int
    batch_size: int = 16  # appendix: batch size 16
    crop_size: int = 256  # appendix: 256×256 training crops
    lr: float = 1e-3  # appendix: Adam, learning rate 1e-3
    content_weight: float = 1.0  # λ_c
    style_weight: float = 1e-4  # λ_s per layer, on a VGG fed 0–255 input (Magenta; see PAPER_TRAINING.source)
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] = ()  # w_l per style layer (empty: all 1); set by carry_over
    trainable: Literal["all", "cin"] = "all"  # "cin": only γ, β learn (Sec. 4, new styles)
    styles_trained: tuple[int, ...] | None = None  # indices drawn per batch; None = all styles
    seed: int = 0
    checkpoint_every: int = 50
    source: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "crop_size", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "steps" else 1):
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {v!r}")
        if self.crop_size % 4:
            raise ValueError(f"crop_size must be a multiple of 4, got {self.crop_size}")
        if self.trainable not in ("all", "cin"):
            raise ValueError(f"trainable must be 'all' or 'cin', got {self.trainable!r}")
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.style_layers):
            raise ValueError(f"style_layer_weights needs one weight per style layer {self.style_layers}, got {self.style_layer_weights}")

    @property
    def layer_weights(self) -> dict[str, float]:
        """{style layer: w_l}."""
        return dict(zip(self.style_layers, self.style_layer_weights or (1.0,) * len(self.style_layers)))


#: The loss network Magenta's weights were tuned on: VGG fed 255·x minus the mean pixel. The
#: nearest VGG19 of ``stylecore.nets.vgg.VGG19_VARIANTS`` at that input scale is ``"caffe"``.
PAPER_LOSS_NETWORK = "caffe"


def carry_over(config: TrainConfig, scales: dict[str, float]) -> TrainConfig:
    """``config``'s weights for a loss network whose activations are ``scales[l]`` times larger.

    The content term is quadratic and the Gram term quartic in the activations (both are mean
    squared errors), so the same balance needs λ_c / r_c² and λ_s w_l / r_l⁴. The result is
    rescaled so that λ_c is unchanged (Adam's steps do not depend on the overall scale):
    w_l ← w_l · r_c² / r_l⁴. ``scales`` come from :func:`stylecore.nets.vgg.feature_scales`
    (measured, not guessed); one content layer is assumed, as in the paper.
    """
    if len(config.content_layers) != 1:
        raise ValueError(f"carry_over assumes one content layer, got {config.content_layers}")
    r_c = scales[config.content_layers[0]]
    weights = tuple(w * r_c**2 / scales[l] ** 4 for l, w in config.layer_weights.items())
    return replace(config, style_layer_weights=weights)


PAPER_TRAINING = TrainConfig(
    steps=40_000,
    source={
        "steps": "Magenta image_stylization_train.py: train_steps 40000 (the paper's Fig. 6 caption: 40,000 steps from scratch)",
        "batch_size/crop_size/lr": "Magenta image_stylization_train.py: batch_size 16, image_size 256, Adam learning_rate 1e-3 "
        "(ImageNet photos resized to 258 and centre-cropped to 256, image_utils.imagenet_inputs)",
        "layers": "Magenta: content vgg_16/conv3, style vgg_16/conv1…conv4 (block outputs after ReLU, i.e. relu1_2, relu2_2, "
        "relu3_3, relu4_3 of VGG-16), mapped to the VGG19 block ends relu1_2, relu2_2, relu3_4, relu4_4",
        "weights": "Magenta image_stylization_train.py: content 1.0, style 1e-4 per layer, on a VGG-16 fed 255·x − RGB mean "
        "(nets/vgg.py), i.e. the 0–255 scale of PAPER_LOSS_NETWORK. On another network (torchvision's (x − mean)/std input: "
        "activations ≈ 58× smaller) the per-layer weights are carried over with carry_over() from measured activation "
        "ratios (notebook 03 prints them); Magenta's style weight on its VGG-16 is 1e-4 per layer, the same here",
        "style per batch": "Magenta draws a style label per image of the batch; here one style per batch",
    },
)


@dataclass
class TrainResult:
    """The trained network, per-step history ('content', 'style', 'total', 'style_index') and timing."""

    model: StyleTransferNetwork
    history: dict[str, list[float]]
    key: str
    seconds: float
    from_cache: bool = False
    resumed_from: int = 0

    def final(self, last: int = 10) -> dict[str, float]:
        """Mean of the last ``last`` recorded values of each loss term."""
        return {k: sum(v[-last:]) / len(v[-last:]) for k, v in self.history.items() if v and k != "style_index"}


def random_crops(images: Sequence[torch.Tensor], batch: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """A batch of random ``size``² crops, each from a random image, flipped left–right with p = ½.

    Shapes: images (1, 3, H_i, W_i) with H_i, W_i ≥ size -> (batch, 3, size, size).
    """
    out = []
    for _ in range(batch):
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        h, w = img.shape[-2:]
        if min(h, w) < size:
            raise ValueError(f"a training photo of {h}×{w} px is smaller than the crop size {size}; resize it first")
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = img[0, :, top : top + size, left : left + size]
        if bool(torch.rand((), generator=gen) < 0.5):
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out)


def perceptual_losses(extractor: VGGFeatures, output: torch.Tensor, content: torch.Tensor, style_grams: dict[str, torch.Tensor], config: TrainConfig) -> dict[str, torch.Tensor]:
    """Weighted {"content": L_c, "style": L_s} of the module docstring; ``style_grams`` {layer: (1 or B, C, C)}.

    Notes: Dumoulin et al. 2017, Sec. 2, write Σ_l ‖·‖² / U_l with U_l = C_l·H_l·W_l and an unnormalised Gram.
    The content term here is that Eq. 3 exactly (batch-averaged); the style layer term is Eq. 2 divided once
    more by U_l (Magenta's mean form, the one its λ_s = 1e-4 belongs to). ``tests/test_feedforward.py`` checks both.
    """
    feats = extractor(output)
    with torch.no_grad():
        targets = extractor(content)
    l_c = sum(F.mse_loss(feats[k], targets[k]) for k in config.content_layers)
    l_s = sum(w * F.mse_loss(gram_matrix(feats[k], normalize=True), style_grams[k].expand(output.shape[0], -1, -1)) for k, w in config.layer_weights.items())
    return {"content": config.content_weight * l_c, "style": config.style_weight * l_s}


def style_grams(extractor: VGGFeatures, style_image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """{layer: G(F^l(a_s))} of one style image (1, 3, H, W), Grams divided by H_l·W_l; no gradient."""
    with torch.no_grad():
        return {k: gram_matrix(v, normalize=True) for k, v in extractor(style_image).items() if k in layers}


def evaluation_batches(contents: Sequence[torch.Tensor], n_batches: int, batch_size: int, size: int, seed: int = 2017) -> list[torch.Tensor]:
    """Fixed batches of crops on which trained networks are compared (the same for every network).

    Dumoulin et al. 2017, Sec. 3.2: "The losses were averaged over 32 random batches of content
    images". Shapes: n_batches × (batch_size, 3, size, size).

    Notes: the crops come from the training photos (the paper drew ImageNet batches); their
    generator is separate from the training one, so they are not the batches a run trained on.
    """
    if n_batches < 1:
        raise ValueError(f"need at least 1 evaluation batch, got {n_batches}")
    gen = torch.Generator().manual_seed(seed)
    return [random_crops(contents, batch_size, size, gen) for _ in range(n_batches)]


def evaluate_losses(
    model: StyleTransferNetwork,
    extractor: VGGFeatures,
    batches: Sequence[torch.Tensor],
    grams: dict[str, torch.Tensor],
    style: int,
    config: TrainConfig,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Weighted losses of ``model(·, style)`` (as in training, Eq. 4) averaged over fixed ``batches``.

    ``grams`` from :func:`style_grams` of the style image. Returns {"content", "style", "total"}.
    """
    sums = {"content": 0.0, "style": 0.0}
    with torch.no_grad():
        for batch in batches:
            batch = batch.to(device)
            terms = perceptual_losses(extractor, model(batch, style), batch, grams, config)
            for k in sums:
                sums[k] += float(terms[k]) / len(batches)
    return sums | {"total": sums["content"] + sums["style"]}


def relative_change(value: float, reference: float) -> float:
    """(value − reference) / reference: +0.087 means 8.7 % higher (the paper's Fig. 5 convention)."""
    if reference == 0:
        raise ValueError("relative change against a zero reference is undefined")
    return (value - reference) / reference


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            h.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def training_key(model: StyleTransferNetwork, config: TrainConfig, contents: Sequence[torch.Tensor], styles: Sequence[torch.Tensor], extractor: VGGFeatures) -> str:
    """16 hex digits identifying a run: initial weights, config, images, VGG weights."""
    cfg = {k: v for k, v in asdict(config).items() if k not in ("source", "checkpoint_every")}
    info = extractor.weights_info.to_dict() if extractor.weights_info else None
    net = [list(extractor.layers), extractor.preprocessing, extractor.pooling]
    return _digest(CACHE_VERSION, model.config, cfg, info, net, *model.state_dict().values(), *contents, *styles)


def _save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _load_run_file(path: Path) -> dict | None:
    """A finished network or checkpoint of a run; None when absent, or damaged (one CacheWarning, then retrained)."""
    from ..cache import load_checked

    return load_checked(path, "trained style network" if path.name == "final.pt" else "training checkpoint")


def load_style_network(path: str | os.PathLike[str], model: StyleTransferNetwork) -> StyleTransferNetwork:
    """Load trained weights (a ``final.pt`` of :func:`train_style_network`, or a plain state dict) into ``model``."""
    state = load_state_dict_file(path)
    state = state.get("model", state) if isinstance(state.get("model"), dict) else state
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsUnavailableError(f"{path} does not fit this network ({model.config}): {exc}") from None
    return model


def train_style_network(
    model: StyleTransferNetwork,
    config: TrainConfig,
    contents: Sequence[torch.Tensor],
    styles: Sequence[torch.Tensor],
    extractor: VGGFeatures,
    checkpoint_dir: str | os.PathLike[str],
    callback: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
    desc: str = "training",
    device: str | torch.device = "cpu",
) -> TrainResult:
    """Train ``model`` in place on random crops of ``contents`` towards ``styles`` (one per style index).

    ``checkpoint_dir/<key>/last.pt`` is written every ``config.checkpoint_every`` steps and
    ``final.pt`` at the end; an existing ``final.pt`` is loaded instead of training, an
    existing ``last.pt`` is resumed. ``callback(step, terms)`` runs after every step (an
    exception there stops the run like a kill would).
    """
    if len(styles) != model.n_styles:
        raise ValueError(f"{len(styles)} style images for a network with {model.n_styles} styles")
    missing = [k for k in (*config.content_layers, *config.style_layers) if k not in extractor.layers]
    if missing:
        raise ValueError(f"the extractor does not compute {missing}; build it with vgg19_features({list(dict.fromkeys((*config.content_layers, *config.style_layers)))})")
    key = training_key(model, config, contents, styles, extractor)
    run_dir = Path(checkpoint_dir).expanduser() / key
    final_path, last_path = run_dir / "final.pt", run_dir / "last.pt"
    model.to(device)
    if (saved := _load_run_file(final_path)) is not None:
        model.load_state_dict(saved["model"])
        return TrainResult(model, saved["history"], key, float(saved["seconds"]), from_cache=True)

    params = model.cin_parameters() if config.trainable == "cin" else list(model.parameters())
    model.requires_grad_(config.trainable == "all")
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"content": [], "style": [], "total": [], "style_index": []}
    step, seconds, resumed = 0, 0.0, 0
    if (saved := _load_run_file(last_path)) is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
        history, step, seconds, resumed = saved["history"], int(saved["step"]), float(saved["seconds"]), int(saved["step"])

    grams = {i: style_grams(extractor, s.to(device), config.style_layers) for i, s in enumerate(styles)}
    pool = list(config.styles_trained) if config.styles_trained is not None else list(range(model.n_styles))
    model.train()
    start = time.perf_counter() - seconds
    for step in tqdm(range(step, config.steps), desc=desc, disable=not progress, initial=step, total=config.steps):
        s = pool[int(torch.randint(len(pool), (1,), generator=gen))]
        batch = random_crops(contents, config.batch_size, config.crop_size, gen).to(device)  # (B, 3, S, S)
        terms = perceptual_losses(extractor, model(batch, s), batch, grams[s], config)
        total = terms["content"] + terms["style"]
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        record = {k: float(v.detach()) for k, v in terms.items()} | {"total": float(total.detach()), "style_index": float(s)}
        for k, v in record.items():
            history[k].append(v)
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(), "history": history, "step": step + 1, "seconds": time.perf_counter() - start}, last_path)
        if callback is not None:
            callback(step + 1, record)
    model.eval()
    model.requires_grad_(False)
    seconds = time.perf_counter() - start
    _save({"model": model.state_dict(), "history": history, "seconds": seconds, "config": {k: v for k, v in asdict(config).items() if k != "source"}}, final_path)
    if last_path.exists():
        last_path.unlink()
    return TrainResult(model, history, key, seconds, resumed_from=resumed)
