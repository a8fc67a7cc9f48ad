"""CLIPstyler (Kwon & Ye, CVPR 2022): a U-Net f trained so that f(I_c) moves along a text direction.

Notebook 05 teaches the losses (:mod:`stylecore.clip_guidance`); this module holds the
hyper-parameter sets (the paper's, the official code's, and the "review values" balance of the collection's review,
each with its source), the ablation settings of the paper's Fig. 6, the total loss (Eq. 4), the training loop
(Adam, step decay, checkpoint + resume), the pixel-optimisation alternative of Fig. 7 and the
authors' pre- and post-processing (square resizing, ×1.5 contrast). The networks f live in
:mod:`stylecore.clipstyler.stylenet`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ..compiling import CompileMode, maybe_compile, should_compile
from ..clip_guidance import (
    Augmentation,
    ClipGuide,
    CropResize,
    Ensemble,
    PerspectiveFill,
    augment_patches,
    clip_direction,
    directional_clip_loss,
    global_clip_loss,
    global_clip_loss_crops,
    random_patches,
    resize_crops,
    text_embedding,
    threshold_rejection,
)
from ..cache import load_checked
from ..images import atomic_path
from ..losses import content_loss
from .stylenet import LiteUNet, StyleNet, style_network
from ..nets.vgg import VGGFeatures

__all__ = [
    "ABLATIONS", "AUTHORS_CODE", "CLIPSTYLER_BREAK_EVEN", "GLOBAL_LOSS", "PAPER", "PRESETS", "REVIEW_VALUES", "Ablation", "ClipStylerHyperParams", "ClipStylerLoss",
    "LiteUNet", "StyleNet", "TrainResult", "ablation_titles", "authors_postprocess", "crop_to_multiple", "fit", "image_prior_loss",
    "resize_square", "step_decay", "style_network", "train_clipstyler", "train_pixels", "with_overrides",
]  # fmt: skip


@dataclass(frozen=True)
class ClipStylerHyperParams:
    """Loss weights and training settings; ``source`` says where the values come from."""

    lambda_dir: float  # λ_d, global directional CLIP loss
    lambda_patch: float  # λ_p, PatchCLIP loss
    lambda_c: float  # λ_c, content loss
    lambda_tv: float  # λ_tv, total variation
    content_layers: tuple[str, ...]
    pooling: Literal["max", "avg"] = "max"  # VGG19's own max pooling (torchvision's vgg19 in the official code)
    lr: float = 5e-4  # Adam
    lr_step: int = 100  # multiply the learning rate by lr_gamma every lr_step iterations
    lr_gamma: float = 0.5
    lr_offset: int = 0  # lr at iteration i (from 0) = lr · γ^((i + lr_offset) // lr_step); 1 = the official order (see AUTHORS_CODE)
    steps: int = 200
    patch_size: int = 128
    n_patches: int = 64  # n
    tau: float = 0.7  # τ of the threshold rejection
    strict_rejection: bool = False  # False: R zeroes s ≤ τ (paper, Eq. 3); True: s < τ (official code)
    ensemble: Ensemble = "unnormalised_mean"  # prompt ensembling (stylecore.clip_guidance.text_embedding)
    source_text: str = "a Photo"  # t_src: "Photo" in the paper (Sec. 3.2), "a Photo" in the official code
    image_size: int = 512  # square side the content image is resized to
    crop_resize: CropResize = "bilinear"  # crops -> CLIP's side: the official transforms.Resize(224) (clip_guidance.resize_crops)
    perspective_fill: PerspectiveFill = "zeros"  # RandomPerspective(fill=0) in torchvision 0.8.2 (the code's pin); "mask": ≥ 0.9
    source: str = ""


#: Kwon & Ye 2022 (arXiv 2112.00374v3), the text itself:
#: Sec. 4.1 "Experiment settings": 512×512 content images; "we set λ_d, λ_p, λ_c, and λ_tv as 5×10², 9×10³, 150,
#: and 2×10⁻³"; content layers "conv4_2" and "conv5_2"; Adam, lr 5×10⁻⁴; "the total training iteration is set
#: as 200, and we decreased the learning rate to half at the iteration of 100"; patch size 128, n = 64; τ = 0.7.
#: Sec. 3.2 / Eq. 3: R(s, τ) = 0 if s ≤ τ (so ``strict_rejection=False``); Sec. 3.2 after Eq. 2: "t_src is
#: simply set as 'Photo'". The paper's "conv4_2"/"conv5_2" are the official code's dictionary keys, which hold
#: relu4_2/relu5_2 (see AUTHORS_CODE); ``with_overrides(PAPER, content_layers=("conv4_2", "conv5_2"))`` gives the
#: literal pre-ReLU reading. Max pooling: the paper says "VGG-19"; pooling as torchvision's (the code's).
PAPER = ClipStylerHyperParams(
    500.0, 9000.0, 150.0, 2e-3, ("relu4_2", "relu5_2"), source_text="Photo",
    source="Kwon & Ye 2022 (arXiv 2112.00374v3) Sec. 4.1 'Experiment settings': λ_d 5×10², λ_p 9×10³, λ_c 150, λ_tv 2×10⁻³; "
    "content 512×512; layers 'conv4_2', 'conv5_2' (the code's names for relu4_2/relu5_2); Adam lr 5×10⁻⁴, 200 iterations, "
    "lr halved at iteration 100; crop 128, n 64; τ 0.7. Sec. 3.2, Eq. 3: R(s, τ) = 0 if s ≤ τ. Sec. 3.2: t_src 'Photo'",
)  # fmt: skip
#: github.com/cyclomon/CLIPstyler ``train_CLIPstyler.py`` (commit 4843cec), argparse defaults: --lambda_dir 500,
#: --lambda_patch 9000, --lambda_c 150, --lambda_tv 2e-3, --crop_size 128, --num_crops 64, --img_width/--img_height
#: 512, --max_step 200, --lr 5e-4, --thresh 0.7; ``StepLR(step_size=100, gamma=0.5)``; ``source = "a Photo"``;
#: rejection ``loss_temp[loss_temp < args.thresh] = 0`` (strict). Content features: ``utils.get_features``
#: records torchvision ``vgg19().features`` indices '21' ("conv4_2") and '31' ("conv5_2"); torchvision's VGG19
#: runs ReLU *in place*, so the tensor stored at index 21 is overwritten by the ReLU at index 22 (relu4_2), and
#: index 31 is the ReLU relu5_2 itself. Max pooling (torchvision's). The loop is ``for epoch in range(0,
#: max_step + 1)`` (201 iterations) with ``scheduler.step()`` *before* ``optimizer.step()``, so the lr is halved
#: after 99 updates (lr_offset = 1); the last saved image (``epoch % 50 == 0`` at epoch 200) is f computed at the
#: top of iteration 200, i.e. after 200 updates: the 201st update is never saved. ``steps=200`` therefore
#: reproduces the saved result; ``with_overrides(AUTHORS_CODE, steps=201)`` runs the loop's full length.
AUTHORS_CODE = ClipStylerHyperParams(
    500.0, 9000.0, 150.0, 2e-3, ("relu4_2", "relu5_2"), pooling="max", steps=200, lr_offset=1, strict_rejection=True, source_text="a Photo",
    source="official code cyclomon/CLIPstyler train_CLIPstyler.py (argparse defaults --lambda_dir 500 --lambda_patch 9000 --lambda_c 150 "
    "--lambda_tv 2e-3 --crop_size 128 --num_crops 64 --max_step 200 --lr 5e-4 --thresh 0.7; StepLR(100, 0.5) stepped before the optimiser; "
    "loss < thresh rejected; source 'a Photo'; get_features indices 21/31 = relu4_2/relu5_2 via in-place ReLU; loop range(0, 201) "
    "but the saved image is f after 200 updates)",
)  # fmt: skip
#: λ_d = 1, λ_p = 0.5, λ_c = 5, λ_tv = 0.01: the λ values of the review this collection was built from (as issue 9
#: records them). The review gives no source for them; they appear nowhere in the paper (Sec. 4.1 gives
#: 500 / 9000 / 150 / 2e-3; Suppl. A's fast variant 1 / 10 / 1 / 1e-4), nor in train_CLIPstyler.py or train_fast.py. Kept, labelled, as a
#: contrast: a balance where content dominates the CLIP terms (λ_c/λ_p = 10 against the paper's 1/60).
REVIEW_VALUES = replace(
    PAPER, lambda_dir=1.0, lambda_patch=0.5, lambda_c=5.0, lambda_tv=0.01,
    source="REVIEW VALUES: the λs of the review this collection was built from, which names no source for them; not in the paper (Sec. 4.1: 500/9000/150/2e-3; "
    "Suppl. A fast variant: 1/10/1/1e-4) nor in train_CLIPstyler.py / train_fast.py; no published source found. "
    "Other settings as the paper preset",
)  # fmt: skip
PRESETS: dict[str, ClipStylerHyperParams] = {"paper": PAPER, "authors_code": AUTHORS_CODE, "review_values": REVIEW_VALUES}


@dataclass(frozen=True)
class Ablation:
    """One column of the paper's ablation (Sec. 4.4, Fig. 6 (a)-(f)): which terms and tricks are on.

    ``objective="global"`` swaps the directional losses for the global CLIP loss of Eq. 1
    (on the whole output and on every crop): the paper's argument for L_dir (Sec. 3.2).
    """

    title: str
    use_dir: bool = True
    use_patch: bool = True
    rejection: bool = True
    augmentation: Augmentation = "perspective"
    objective: Literal["directional", "global"] = "directional"


ABLATIONS: dict[str, Ablation] = {
    "a": Ablation("(a) full"),
    "b": Ablation("(b) no L_dir", use_dir=False),
    "c": Ablation("(c) no rejection", rejection=False),
    "d": Ablation("(d) no augmentation", augmentation="none"),
    "e": Ablation("(e) affine aug.", augmentation="affine"),
    "f": Ablation("(f) no L_patch", use_patch=False),
}
#: Eq. 1 instead of Eq. 2-3: L_dir -> 1 − cos(E_I(f(I_c)), E_T(t_sty)), each crop likewise.
GLOBAL_LOSS = Ablation("global CLIP loss (Eq. 1)", objective="global")


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, 3, H, W) to size × size ignoring the aspect ratio, as the authors' ``utils.load_image2``.

    Bicubic with antialiasing (PIL's ``Image.resize`` default), clamped to [0, 1]. Notes: the
    official code resizes every content image to 512×512 (``--img_width``/``--img_height``).
    """
    if size < 8 or size % 8:
        raise ValueError(f"square size must be a positive multiple of 8 (the U-Net halves 3 times), got {size}")
    return F.interpolate(image, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def authors_postprocess(image: torch.Tensor, contrast: float = 1.5, minmax: bool = True) -> torch.Tensor:
    """The official code's saved result: clamp to [0, 1], ``adjust_contrast(·, 1.5)``, then min-max rescale.

    ``train_CLIPstyler.py`` saves ``adjust_contrast(clamp(f(I_c)), 1.5)`` through
    ``torchvision.utils.save_image(..., normalize=True)``, which stretches the image's own
    [min, max] to [0, 1] (``minmax``). ``contrast=1`` and ``minmax=False`` give the raw output.
    Notes: Sec. 4.1 says only "for better visualization for readers, we apply same contrast
    enhancement techniques for all outputs including baselines"; the factor 1.5 is the code's.
    """
    out = TF.adjust_contrast(image.clamp(0, 1), contrast) if contrast != 1 else image.clamp(0, 1)
    if minmax:
        lo, hi = out.amin(dim=(1, 2, 3), keepdim=True), out.amax(dim=(1, 2, 3), keepdim=True)
        out = (out - lo) / (hi - lo).clamp_min(1e-5)
    return out


def image_prior_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation as the authors' code computes it: Σ_k ‖D_k x‖₂ over 4 neighbour directions.

        L_tv = ‖x[:, :, :, :-1] − x[:, :, :, 1:]‖ + ‖x[:, :, :-1] − x[:, :, 1:]‖ + (both diagonals)

    Shapes: (B, 3, H, W) -> scalar. Notes: the paper (Sec. 3.2) only says "total variation
    regularization loss"; this form is ``get_image_prior_losses`` of train_CLIPstyler.py; λ_tv = 2e-3 is tuned to this (unsquared) form, not to
    :func:`stylecore.losses.total_variation`.
    """
    d = (
        image[..., :, :-1] - image[..., :, 1:],
        image[..., :-1, :] - image[..., 1:, :],
        image[..., 1:, :-1] - image[..., :-1, 1:],
        image[..., :-1, :-1] - image[..., 1:, 1:],
    )
    return sum(torch.linalg.vector_norm(x) for x in d)  # type: ignore[return-value]


class ClipStylerLoss:
    """L_total = λ_d L_dir + λ_p L_patch + λ_c L_c + λ_tv L_tv (Kwon & Ye 2022, Sec. 3.2, Eq. 4).

    Built once per (content, text): stores the content features, E_I(I_c) and ΔT. Calling it on
    the output f(I_c) (1, 3, H, W) returns the dict of *weighted* terms (ablated terms are absent).
    All crops of a step go through CLIP in one batched call, the whole output for L_dir in one of
    its own (as E_I(I_c) was computed); ``batched=False``: one call per crop.

    After each call ``last`` holds what the step fed CLIP (``crops_raw``: the random crops,
    ``crops``: after augmentation, ``clip_crops``: resized to CLIP's side (``hp.crop_resize``), ``per_patch``: l_patch of each crop before rejection) and
    ``records`` gains one dict of diagnostics: ``patch_unrejected`` (λ_p · mean l_patch, no
    rejection), ``rejected`` (crops R zeroed), ``aug_change`` (mean |crops − crops_raw|).
    """

    def __init__(self, clip: ClipGuide, vgg: VGGFeatures, content: torch.Tensor, text: str, hp: ClipStylerHyperParams, ablation: Ablation = ABLATIONS["a"], batched: bool = True) -> None:
        missing = [n for n in hp.content_layers if n not in vgg.layers]
        if missing:
            raise ValueError(f"the VGG extractor lacks content layers {missing}; build it with vgg19_features({list(hp.content_layers)})")
        pooling = getattr(vgg, "pooling", hp.pooling)
        if pooling != hp.pooling:
            raise ValueError(f"the VGG extractor uses {pooling!r} pooling but the hyper-parameters ask for {hp.pooling!r}; build it with vgg19_features(..., pooling={hp.pooling!r})")
        self.clip, self.vgg, self.hp, self.ablation, self.batched = clip, vgg, hp, ablation, batched
        self.last: dict[str, torch.Tensor] = {}
        self.records: list[dict[str, float]] = []
        with torch.no_grad():
            self.content_features = {k: v.detach() for k, v in vgg(content).items()}
            self.source_emb = clip.encode_images(content)  # E_I(I_c), (1, D)
            self.text_emb = text_embedding(clip, text, ensemble=hp.ensemble)  # E_T(t_sty), (D,)
            self.text_direction = clip_direction(self.text_emb, text_embedding(clip, hp.source_text, ensemble=hp.ensemble))  # ΔT, (D,)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        if self.batched:
            return self.clip.encode_images(images)
        return torch.cat([self.clip.encode_images(x.unsqueeze(0)) for x in images])

    def __call__(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        hp, ab = self.hp, self.ablation
        feats = self.vgg(output)
        terms = {"content": hp.lambda_c * sum(content_loss(feats[n], self.content_features[n], reduction="mean") for n in hp.content_layers)}
        record: dict[str, float] = {}
        if ab.use_patch:
            raw = random_patches(output, hp.n_patches, hp.patch_size)  # (n, 3, S, S)
            crops = augment_patches(raw, ab.augmentation, hp.perspective_fill)
            clip_crops = resize_crops(crops, self.clip.image_size, hp.crop_resize)  # the official augment's Resize(224)
            # The crops in one CLIP call; the whole output in a call of its own, as its reference E_I(I_c) was
            # made: batched with the crops, float rounding would make ΔI = E_I(f(I_c)) − E_I(I_c) noise at f = id.
            emb = self._encode(clip_crops)  # (n, D)
            if ab.objective == "global":
                per_patch = global_clip_loss_crops(emb, self.text_emb)  # (n,)
            else:
                per_patch = directional_clip_loss(emb, self.source_emb, self.text_direction, reduction="none")  # l_patch^(i), (n,)
            kept = threshold_rejection(per_patch, hp.tau, hp.strict_rejection) if ab.rejection else per_patch  # R(l, τ), Eq. 3
            terms["patch"] = hp.lambda_patch * kept.mean()  # Eq. 3
            self.last = {"crops_raw": raw.detach(), "crops": crops.detach(), "clip_crops": clip_crops.detach(), "per_patch": per_patch.detach()}
            record = {"patch_unrejected": hp.lambda_patch * per_patch.mean().item(), "rejected": int((kept == 0).sum() - (per_patch == 0).sum()),
                      "aug_change": (crops - raw).abs().mean().item()}  # fmt: skip
        if ab.use_dir:
            emb = self.clip.encode_images(output)
            terms["dir"] = hp.lambda_dir * (global_clip_loss(emb, self.text_emb) if ab.objective == "global" else directional_clip_loss(emb, self.source_emb, self.text_direction))
        terms["tv"] = hp.lambda_tv * image_prior_loss(output)
        self.records.append(record)
        return terms


@dataclass
class TrainResult:
    """Per-term history (weighted values, one entry per iteration), seconds and the final output."""

    history: dict[str, list[float]]
    seconds: float
    output: torch.Tensor
    steps_done: int
    lr: list[float] = field(default_factory=list)  # learning rate used at each iteration
    diagnostics: list[dict[str, float]] = field(default_factory=list)  # ClipStylerLoss.records of the steps run in this call

    @property
    def final(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.history.items() if v}


def step_decay(hp: ClipStylerHyperParams) -> Callable[[int], float]:
    """Multiplier of the base lr at iteration i: γ^((i + lr_offset) // lr_step) (for ``LambdaLR``)."""
    return lambda i: hp.lr_gamma ** ((i + hp.lr_offset) // hp.lr_step)


#: H·W × steps above which ``train_clipstyler(compile="auto")`` compiles: 100 × 512², i.e. a paper
#: run (512², 200 steps) compiles and a quick run (≤ 256², ≤ 100 steps) stays eager. An estimate
#: scaled from the Gatys measurement (stylecore.compiling); ``benchmarks/bench_clipstyler.py``
#: prints the measured compile time and break-even step count beside it.
CLIPSTYLER_BREAK_EVEN: int = 100 * 512 * 512


def train_clipstyler(
    net: nn.Module,
    content: torch.Tensor,
    loss_fn: ClipStylerLoss,
    steps: int | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[int], None] | None = None,
    compile: CompileMode = "auto",  # noqa: A002 — the torch.compile option, see stylecore.compiling
) -> TrainResult:
    """Fit f to one content image: Adam(lr), learning rate × γ every ``lr_step`` iterations.

    Kwon & Ye 2022, Sec. 4.1: 200 iterations, lr 5e-4, halved at iteration 100. Our
    scheduler steps *after* the optimiser (the order PyTorch requires); ``hp.lr_offset = 1``
    reproduces the official order's learning rates exactly (there the scheduler steps first).
    With ``checkpoint`` the net, optimiser, scheduler, RNG and history are saved atomically every
    ``checkpoint_every`` steps, and a later call with the same path resumes where it stopped.

    ``compile``: ``True`` runs f, the VGG content path and CLIP's image encoder (the 64 crops'
    batch and the whole output) through ``torch.compile`` for this call (the random crops and
    the optimiser stay eager, so the RNG stream is the eager one); ``"auto"`` does so when
    H·W × steps ≥ :data:`CLIPSTYLER_BREAK_EVEN` (an estimate, see there), so quick runs stay
    eager. Unavailable compile: one warning, then eager.
    """
    hp = loss_fn.hp
    steps = hp.steps if steps is None else steps
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=hp.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, step_decay(hp))
    net.train()
    n_records = len(loss_fn.records)
    use = should_compile(compile, content.shape[-2] * content.shape[-1], steps, CLIPSTYLER_BREAK_EVEN)
    forward = maybe_compile(net, use)
    vgg, had_encode = loss_fn.vgg, "encode_images" in vars(loss_fn.clip)
    try:  # compiled stand-ins for this call only; the caller's modules are left as they were
        if use:
            loss_fn.vgg = maybe_compile(vgg, True)  # type: ignore[assignment]
            loss_fn.clip.encode_images = maybe_compile(loss_fn.clip.encode_images, True)  # type: ignore[method-assign]
        history, lrs, seconds = fit(lambda: loss_fn(forward(content)), net, opt, sched, steps, checkpoint, checkpoint_every, "CLIPstyler", progress, callback)
    finally:
        loss_fn.vgg = vgg
        if use and not had_encode:
            del loss_fn.clip.encode_images
    net.eval()
    with torch.no_grad():
        output = net(content)
    return TrainResult(history, seconds, output, steps, lrs, loss_fn.records[n_records:])


class PixelImage(nn.Module):
    """The output image itself as the only parameter (Fig. 7's "CLIP + pixel optimisation"), started at I_c."""

    def __init__(self, content: torch.Tensor) -> None:
        super().__init__()
        self.pixels = nn.Parameter(content.detach().clone())

    def forward(self) -> torch.Tensor:
        return self.pixels.clamp(0, 1)


def train_pixels(content: torch.Tensor, loss_fn: ClipStylerLoss, steps: int, lr: float = 0.02, seed: int = 0, progress: bool = True, module: nn.Module | None = None) -> TrainResult:
    """The same loss (Eq. 4) minimised over the pixels of the output directly, no network f (paper Fig. 7, pixel optimisation).

    Adam at ``lr`` (ours: the paper gives no setting for this baseline), no decay; the output is
    clamped to [0, 1] in the forward pass. ``module``: any parameterised image ``module()`` instead
    of the pixels, e.g. :class:`stylecore.nets.adain.AdaINCode` (Fig. 7's "CLIP + AdaIN code").
    """
    torch.manual_seed(seed)
    image = PixelImage(content) if module is None else module
    opt = torch.optim.Adam(image.parameters(), lr=lr)
    n_records = len(loss_fn.records)
    history, lrs, seconds = fit(lambda: loss_fn(image()), image, opt, None, steps, desc="pixels", progress=progress)
    return TrainResult(history, seconds, image().detach(), steps, lrs, loss_fn.records[n_records:])


def fit(
    step_terms: Callable[[], dict[str, torch.Tensor]],
    module: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    steps: int,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    desc: str = "training",
    progress: bool = True,
    callback: Callable[[int], None] | None = None,
) -> tuple[dict[str, list[float]], list[float], float]:
    """The shared loop: total = Σ step_terms(); backward; optimiser step; then the scheduler step.

    Returns (per-term history, learning rate per iteration, seconds). With ``checkpoint`` the
    module, optimiser, scheduler, RNG state and history are written atomically every
    ``checkpoint_every`` steps and at the end; an existing file is resumed from. ``callback(step)``
    is called after each step (a notebook's progress bar).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    history: dict[str, list[float]] = {"total": []}
    lrs: list[float] = []
    start, seconds = 0, 0.0
    path = Path(checkpoint) if checkpoint else None
    if path is not None and (state := load_checked(path, "CLIPstyler checkpoint")) is not None:  # tensors, lists and floats only
        module.load_state_dict(state["module"])
        opt.load_state_dict(state["opt"])
        if sched is not None:
            sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        history, lrs, start, seconds = state["history"], state["lr"], state["step"], state["seconds"]
    t0 = time.perf_counter()
    for step in tqdm(range(start, steps), desc=desc, disable=not progress, initial=start, total=steps):
        terms = step_terms()
        total = torch.stack(list(terms.values())).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()  # after the optimiser
        for k, v in terms.items():
            history.setdefault(k, []).append(v.item())
        history["total"].append(total.item())
        if callback is not None:
            callback(step + 1)
        if path is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            state = {"module": module.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict() if sched is not None else {}, "rng": torch.get_rng_state(),
                     "history": history, "lr": lrs, "step": step + 1, "seconds": seconds + time.perf_counter() - t0}  # fmt: skip
            with atomic_path(path) as tmp:
                torch.save(state, tmp)
    return history, lrs, seconds + time.perf_counter() - t0


def crop_to_multiple(image: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Centre-crop (B, C, H, W) so that H and W are multiples of ``k`` (the U-Net halves 3 times)."""
    h, w = image.shape[-2:]
    nh, nw = h // k * k, w // k * k
    if nh == 0 or nw == 0:
        raise ValueError(f"image {h}×{w} is smaller than {k} px; use a larger image_size")
    top, left = (h - nh) // 2, (w - nw) // 2
    return image[..., top : top + nh, left : left + nw]


def with_overrides(hp: ClipStylerHyperParams, **changes: object) -> ClipStylerHyperParams:
    """A copy of ``hp`` with some fields changed (the notebook's sliders and quick mode)."""
    return replace(hp, **changes)  # type: ignore[arg-type]


def ablation_titles(letters: Sequence[str]) -> list[str]:
    """Titles of ablation letters, with a clear error for unknown ones."""
    bad = [x for x in letters if x not in ABLATIONS]
    if bad:
        raise ValueError(f"unknown ablation(s) {bad}; choose from {sorted(ABLATIONS)} (paper Fig. 6 (a)-(f))")
    return [ABLATIONS[x].title for x in letters]
