"""CLIPstyler (Kwon & Ye, CVPR 2022): a U-Net f trained so that f(I_c) moves along a text direction.

Notebook 05 teaches the losses (:mod:`stylecore.clip_guidance`); this module holds the style
network, the two hyper-parameter sets (paper / authors' code), the ablation settings of the
paper's Fig. 6, the total loss and the training loop (Adam, step decay, checkpoint + resume).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .clip_guidance import Augmentation, ClipGuide, augment_patches, clip_direction, directional_clip_loss, patch_clip_loss, random_patches, text_embedding
from .images import atomic_path
from .losses import content_loss
from .vgg import VGGFeatures

__all__ = ["ABLATIONS", "AUTHORS_CODE", "PAPER", "Ablation", "ClipStylerHyperParams", "ClipStylerLoss", "StyleNet", "TrainResult", "ablation_titles", "crop_to_multiple", "fit", "image_prior_loss", "train_clipstyler", "with_overrides"]


@dataclass(frozen=True)
class ClipStylerHyperParams:
    """Loss weights and training settings; ``source`` says where the values come from."""

    lambda_dir: float  # λ_d, global directional CLIP loss
    lambda_patch: float  # λ_p, PatchCLIP loss
    lambda_c: float  # λ_c, content loss
    lambda_tv: float  # λ_tv, total variation
    content_layers: tuple[str, ...]
    lr: float = 5e-4  # Adam
    lr_step: int = 100  # halve the learning rate every lr_step iterations
    lr_gamma: float = 0.5
    steps: int = 200
    patch_size: int = 128
    n_patches: int = 64  # n
    tau: float = 0.7  # τ of the threshold rejection
    source_text: str = "a Photo"
    source: str = ""


#: Kwon & Ye 2022, Sec. 4 "Implementation details" (values as we read the paper; see Notes in the notebook).
PAPER = ClipStylerHyperParams(500.0, 9000.0, 150.0, 2e-3, ("relu4_2", "relu5_2"), source="Kwon & Ye 2022, Sec. 4")
#: github.com/cyclomon/CLIPstyler train_CLIPstyler.py defaults: get_features indices '21' (conv4_2,
#: pre-ReLU) and '31' (named 'conv5_2' but torchvision index 31 is relu5_2).
AUTHORS_CODE = ClipStylerHyperParams(500.0, 9000.0, 150.0, 2e-3, ("conv4_2", "relu5_2"), source="official code (train_CLIPstyler.py)")


@dataclass(frozen=True)
class Ablation:
    """One column of the paper's ablation (Fig. 6): which terms and tricks are on."""

    title: str
    use_dir: bool = True
    use_patch: bool = True
    rejection: bool = True
    augmentation: Augmentation = "perspective"


ABLATIONS: dict[str, Ablation] = {
    "a": Ablation("(a) full"),
    "b": Ablation("(b) no L_dir", use_dir=False),
    "c": Ablation("(c) no rejection", rejection=False),
    "d": Ablation("(d) no augmentation", augmentation="none"),
    "e": Ablation("(e) affine aug.", augmentation="affine"),
    "f": Ablation("(f) no L_patch", use_patch=False),
}


class StyleNet(nn.Module):
    """The lightweight U-Net f: (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in (0, 1) (sigmoid output).

    Three stride-2 encoder stages with skip connections and bilinear upsampling; ``width``
    channels at full resolution, doubled per stage. H and W must be multiples of 8.

    Notes: the layer widths are our reading of the authors' ``StyleNet.UNet`` (16 base
    channels); the paper only says "lightweight CNN".
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.InstanceNorm2d(cout, affine=True), nn.LeakyReLU(0.2))

        c = (width, 2 * width, 4 * width, 8 * width)
        self.inc = block(3, c[0])
        self.down = nn.ModuleList([block(c[i], c[i + 1], 2) for i in range(3)])
        self.up = nn.ModuleList([block(c[i + 1] + c[i], c[i]) for i in reversed(range(3))])
        self.out = nn.Conv2d(c[0], 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"StyleNet expects (B, 3, H, W) with H, W multiples of 8, got {tuple(x.shape)}")
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            skip = skips.pop()
            y = nn.functional.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return torch.sigmoid(self.out(y))


def image_prior_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation as the authors' code computes it: Σ_k ‖D_k x‖₂ over 4 neighbour directions.

        L_tv = ‖x[:, :, :, :-1] − x[:, :, :, 1:]‖ + ‖x[:, :, :-1] − x[:, :, 1:]‖ + (both diagonals)

    Shapes: (B, 3, H, W) -> scalar. Notes: the paper only says "total variation
    regularization"; λ_tv = 2e-3 is tuned to this (unsquared) form, not to
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
    """L_total = λ_d L_dir + λ_p L_patch + λ_c L_c + λ_tv L_tv (Kwon & Ye 2022, Eq. 5).

    Built once per (content, text): stores the content features, E_I(I_c) and ΔT. Calling it on
    the output f(I_c) (1, 3, H, W) returns the dict of *weighted* terms (ablated terms are absent).
    All crops of a step go through CLIP in one batched call unless ``batched=False``.
    """

    def __init__(self, clip: ClipGuide, vgg: VGGFeatures, content: torch.Tensor, text: str, hp: ClipStylerHyperParams, ablation: Ablation = ABLATIONS["a"], batched: bool = True) -> None:
        missing = [n for n in hp.content_layers if n not in vgg.layers]
        if missing:
            raise ValueError(f"the VGG extractor lacks content layers {missing}; build it with vgg19_features({list(hp.content_layers)})")
        self.clip, self.vgg, self.hp, self.ablation, self.batched = clip, vgg, hp, ablation, batched
        with torch.no_grad():
            self.content_features = {k: v.detach() for k, v in vgg(content).items()}
            self.source_emb = clip.encode_images(content)  # E_I(I_c), (1, D)
            self.text_direction = clip_direction(text_embedding(clip, text), text_embedding(clip, hp.source_text))  # ΔT, (D,)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        if self.batched:
            return self.clip.encode_images(images)
        return torch.cat([self.clip.encode_images(x.unsqueeze(0)) for x in images])

    def __call__(self, output: torch.Tensor) -> dict[str, torch.Tensor]:
        hp, ab = self.hp, self.ablation
        feats = self.vgg(output)
        terms = {"content": hp.lambda_c * sum(content_loss(feats[n], self.content_features[n], reduction="mean") for n in hp.content_layers)}
        if ab.use_patch:
            crops = augment_patches(random_patches(output, hp.n_patches, hp.patch_size), ab.augmentation)  # (n, 3, S, S)
            terms["patch"] = hp.lambda_patch * patch_clip_loss(self._encode(crops), self.source_emb, self.text_direction, hp.tau if ab.rejection else None)
        if ab.use_dir:
            terms["dir"] = hp.lambda_dir * directional_clip_loss(self.clip.encode_images(output), self.source_emb, self.text_direction)
        terms["tv"] = hp.lambda_tv * image_prior_loss(output)
        return terms


@dataclass
class TrainResult:
    """Per-term history (weighted values, one entry per iteration), seconds and the final output."""

    history: dict[str, list[float]]
    seconds: float
    output: torch.Tensor
    steps_done: int
    lr: list[float] = field(default_factory=list)  # learning rate used at each iteration

    @property
    def final(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.history.items() if v}


def train_clipstyler(
    net: nn.Module,
    content: torch.Tensor,
    loss_fn: ClipStylerLoss,
    steps: int | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Fit f to one content image: Adam(lr), learning rate × γ every ``lr_step`` iterations.

    Kwon & Ye 2022, Sec. 4: 200 iterations, lr 5e-4 halved at iteration 100. The scheduler
    steps *after* the optimiser (the order PyTorch requires). With ``checkpoint`` the net,
    optimiser, scheduler, RNG and history are saved atomically every ``checkpoint_every``
    steps, and a later call with the same path resumes where it stopped.
    """
    hp = loss_fn.hp
    steps = hp.steps if steps is None else steps
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=hp.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=hp.lr_step, gamma=hp.lr_gamma)
    net.train()
    history, lrs, seconds = fit(lambda: loss_fn(net(content)), net, opt, sched, steps, checkpoint, checkpoint_every, "CLIPstyler", progress)
    net.eval()
    with torch.no_grad():
        output = net(content)
    return TrainResult(history, seconds, output, steps, lrs)


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
) -> tuple[dict[str, list[float]], list[float], float]:
    """The shared loop: total = Σ step_terms(); backward; optimiser step; then the scheduler step.

    Returns (per-term history, learning rate per iteration, seconds). With ``checkpoint`` the
    module, optimiser, scheduler, RNG state and history are written atomically every
    ``checkpoint_every`` steps and at the end; an existing file is resumed from.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    history: dict[str, list[float]] = {"total": []}
    lrs: list[float] = []
    start, seconds = 0, 0.0
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors, lists and floats only
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
