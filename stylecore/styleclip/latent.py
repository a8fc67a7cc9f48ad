"""StyleCLIP's text-driven latent optimisation and latent mapper (Patashnik et al., ICCV 2021).

Sec. 4 (optimisation) and Sec. 5 (mapper) of the paper; the official code is
``optimization/run_optimization.py``, ``criteria/clip_loss.py`` and ``mapper/`` in
orpatashnik/StyleCLIP. Global directions (Sec. 6) live in :mod:`stylecore.styleclip.global_directions`.
Notebook 04 derives each objective; ``tests/test_styleclip.py`` pins them to naive formulas.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..nets.arcface import IRSE50, face_crop, identity_loss
from ..clip_guidance import ClipGuide
from ..cache import load_checked
from ..images import atomic_path
from ..nets.stylegan2 import EqualLinear, Generator, PixelNorm

__all__ = [
    "MAPPER_DEFAULTS",
    "MAPPER_TRUMP",
    "OPTIMIZATION_DEFAULTS",
    "OPTIMIZATION_PRESETS",
    "LevelsMapper",
    "MapperTraining",
    "clip_distance",
    "cosine_lr",
    "mapper_loss",
    "optimize_latent",
    "train_mapper",
]

ClipInput = Literal["official", "normalized"]

#: Where the official values live (orpatashnik/StyleCLIP, the commit "global torch", f87a47f).
_OPT = "optimization/run_optimization.py"
_PLAY = "notebooks/optimization_playground.ipynb"
_MAP = "mapper/options/train_options.py"

#: Latent optimisation (Sec. 4), two official sets: the script's argparse defaults and the values the
#: playground notebook fills in. value, source. The paper (Sec. 4) gives no single λ_L2 or λ_ID: "the values
#: of λ_L2 and λ_ID depend on the nature of the desired edit" (per-edit values only inside its Fig. 3) and
#: "200-300 iterations"; the README: "It is recommended to adjust the --l2_lambda according to the desired edit".
OPTIMIZATION_PRESETS: dict[str, dict[str, tuple[Any, str]]] = {
    "script": {
        "lr": (0.1, f"{_OPT} --lr default 0.1"),
        "steps": (300, f"{_OPT} --step default 300 (paper Sec. 4: 200-300 iterations)"),
        "lr_rampup": (0.05, f"{_OPT} --lr_rampup default 0.05, get_lr(rampup=0.05)"),
        "lr_rampdown": (0.25, f"{_OPT} get_lr(rampdown=0.25)"),
        "l2_lambda": (0.008, f"{_OPT} --l2_lambda default 0.008 (paper Sec. 4: no single value)"),
        "id_lambda": (0.0, f"{_OPT} --id_lambda default 0.000 (paper Sec. 4: no single value)"),
        "truncation": (0.7, f"{_OPT} --truncation default 0.7 (initial latent only)"),
    },
    "playground": {
        "lr": (0.1, f"{_PLAY} runs {_OPT} with its --lr default 0.1"),
        "steps": (40, f"{_PLAY} optimization_steps = 40"),
        "lr_rampup": (0.05, f"{_PLAY} runs {_OPT} with its --lr_rampup default 0.05"),
        "lr_rampdown": (0.25, f"{_OPT} get_lr(rampdown=0.25)"),
        "l2_lambda": (0.008, f"{_PLAY} l2_lambda = 0.008"),
        "id_lambda": (0.005, f"{_PLAY} id_lambda = 0.005"),
        "truncation": (0.7, f"{_PLAY} runs {_OPT} with its --truncation default 0.7"),
    },
}
#: The script's set, which :func:`optimize_latent`'s defaults follow.
OPTIMIZATION_DEFAULTS = OPTIMIZATION_PRESETS["script"]
#: Latent mapper (Sec. 5). value, source.
MAPPER_DEFAULTS: dict[str, tuple[Any, str]] = {
    "l2_lambda": (0.8, f"paper Sec. 5 (λ_L2 = 0.8) and {_MAP} --latent_l2_lambda default 0.8"),
    "id_lambda": (0.1, f"paper Sec. 5 (λ_ID = 0.1) and {_MAP} --id_lambda default 0.1"),
    "clip_lambda": (1.0, f"{_MAP} --clip_lambda default 1.0"),
    "lr": (0.5, f"{_MAP} --learning_rate default 0.5 (with --optim_name default 'ranger')"),
    "batch_size": (2, f"{_MAP} --batch_size default 2"),
    "max_steps": (50000, f"{_MAP} --max_steps default 50000"),
    "train_size": (5000, f"{_MAP} --train_dataset_size default 5000, 'used only if no latents are given' (--latents_train_path "
                         "default train_faces.pt); then mapper/training/coach.py draws w from z with truncation=0.7"),
    "step_scale": (0.1, "mapper/training/coach.py: w_hat = w + 0.1 * self.net.mapper(w)"),
}
#: The paper's one exception (Sec. 5): the "Trump" mapper of its Fig. 9 used λ_L2 = 2, λ_ID = 0.
MAPPER_TRUMP: dict[str, tuple[Any, str]] = {
    "l2_lambda": (2.0, "paper Sec. 5: the 'Trump' manipulation in Figure 9 uses λ_L2 = 2"),
    "id_lambda": (0.0, "paper Sec. 5: the 'Trump' manipulation in Figure 9 uses λ_ID = 0"),
}


def clip_distance(guide: ClipGuide, images: torch.Tensor, text_emb: torch.Tensor, clip_input: ClipInput = "official") -> torch.Tensor:
    """D_CLIP(G(w), t) = 1 − logit_scale · cos(E_I(x), E_T(t)) / 100 per image, shape (B,).

    Patashnik et al. 2021, Eq. 1 (cosine distance); ``criteria/clip_loss.py``: nearest
    upsampling ×7, average pooling to CLIP's input size (kernel size/32 at 224 px), then
    ``1 − model(image, text)[0] / 100``; OpenAI's logit scale is exactly 100, so this is
    1 − cos there. ``clip_input="official"`` feeds the [-1, 1] generator output to CLIP
    without CLIP's mean/std (as that code does); ``"normalized"`` maps to [0, 1] and normalises.
    Shapes: images (B, 3, H, W), text_emb (D,) unit -> (B,).
    """
    size = guide.image_size
    x = F.interpolate(images, scale_factor=7, mode="nearest")
    k = x.shape[-1] // size
    x = F.avg_pool2d(x, k) if k * size == x.shape[-1] else F.adaptive_avg_pool2d(x, size)
    if clip_input == "official":
        feats = F.normalize(guide.model.encode_image(x), dim=-1)
    elif clip_input == "normalized":
        feats = guide.encode_images(((x + 1) / 2).clamp(0, 1))
    else:
        raise ValueError(f"clip_input must be 'official' or 'normalized', got {clip_input!r}")
    scale = guide.model.logit_scale.exp()
    return 1 - scale * (feats @ text_emb) / 100


def cosine_lr(t: float, lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Learning rate at progress t ∈ [0, 1): lr · ½(1 − cos(π·min(1, (1 − t)/rampdown))) · min(1, t/rampup).

    ``run_optimization.py`` ``get_lr`` (the StyleGAN2 projector's schedule). Note: at t = 0 it is 0.
    """
    ramp = min(1.0, (1 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * min(1.0, t / rampup)


@dataclass
class OptimizationResult:
    w: torch.Tensor  # (1, n_latent, D) final latent
    image: torch.Tensor  # (1, 3, H, W) in [-1, 1]
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def optimize_latent(
    generator: Generator,
    guide: ClipGuide,
    text_emb: torch.Tensor,
    w_source: torch.Tensor,
    steps: int = 300,
    lr: float = 0.1,
    l2_lambda: float = 0.008,
    id_lambda: float = 0.0,
    id_net: IRSE50 | None = None,
    mode: Literal["edit", "free_generation"] = "edit",
    clip_input: ClipInput = "official",
    show_progress: bool = True,
) -> OptimizationResult:
    """argmin_w D_CLIP(G(w), t) + λ_L2 ‖w − w_s‖² + λ_ID L_ID(w)  (Patashnik et al. 2021, Eq. 1; L_ID is Eq. 2).

    Adam on the W+ latent with :func:`cosine_lr`, fixed noise (``randomize_noise=False``).
    ``mode="free_generation"`` minimises D_CLIP alone (the script's second mode; start from w̄).
    ‖·‖² is the plain sum of squares over all 18×512 entries, as in the script (the paper writes ‖w − w_s‖₂). Defaults: the
    script's argparse values (:data:`OPTIMIZATION_PRESETS` ``"script"``; λ_ID 0, the playground's 0.005).
    """
    if mode not in ("edit", "free_generation"):
        raise ValueError(f"mode must be 'edit' or 'free_generation', got {mode!r}")
    if id_lambda > 0 and id_net is None and mode == "edit":
        raise ValueError("id_lambda > 0 needs the identity network (id_net=load_ir_se50(...)[0]); or set id_lambda=0")
    w_s = generator.w_plus(w_source).detach()
    noise = generator.fixed_noise()
    with torch.no_grad():
        img_source = generator.synthesis(generator.w_to_s(w_s), noise)
        ref_feats = id_net(face_crop(img_source)) if (id_net is not None and id_lambda > 0) else None
    w = w_s.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    hist: dict[str, list[float]] = {"total": [], "clip": [], "l2": [], "id": [], "lr": []}
    start = time.perf_counter()
    for i in tqdm(range(steps), desc="StyleCLIP optimisation", disable=not show_progress):
        opt.param_groups[0]["lr"] = cosine_lr(i / steps, lr)
        img = generator.synthesis(generator.w_to_s(w), noise)
        c = clip_distance(guide, img, text_emb, clip_input).mean()
        l2 = ((w_s - w) ** 2).sum()
        idl = identity_loss(id_net, img, img_source, ref_feats) if ref_feats is not None else torch.zeros(())
        loss = c + l2_lambda * l2 + id_lambda * idl if mode == "edit" else c
        opt.zero_grad()
        loss.backward()
        opt.step()
        for k, v in (("total", loss), ("clip", c), ("l2", l2), ("id", idl)):
            hist[k].append(float(v.detach()))
        hist["lr"].append(opt.param_groups[0]["lr"])
    with torch.no_grad():
        final = generator.synthesis(generator.w_to_s(w), noise)
    return OptimizationResult(w.detach(), final, hist, time.perf_counter() - start)


# --- latent mapper (Sec. 5) -------------------------------------------------------------------
class Mapper(nn.Module):
    """PixelNorm + 4 × EqualLinear(D, D, lr_mul 0.01, leaky ReLU): ``mapper/latent_mappers.py`` ``Mapper``."""

    def __init__(self, dim: int = 512, n_layers: int = 4) -> None:
        super().__init__()
        self.mapping = nn.Sequential(PixelNorm(), *[EqualLinear(dim, dim, lr_mul=0.01, activation="fused_lrelu") for _ in range(n_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mapping(x)


#: W+ slices of the three mappers (``LevelsMapper.forward``): coarse [:4], medium [4:8], fine [8:].
LEVEL_SLICES = {"coarse": slice(0, 4), "medium": slice(4, 8), "fine": slice(8, None)}


class LevelsMapper(nn.Module):
    """M_t(w) = (M_c(w_c), M_m(w_m), M_f(w_f)) on the W+ slices (Patashnik et al. 2021, Sec. 5).

    State-dict keys as the official ``LevelsMapper`` (``course_mapping`` is its spelling).
    A level switched off outputs zeros there (``--no_coarse_mapper`` etc.).
    Notes: the official PixelNorm normalises over dim 1, which for a (B, L, D) slice is the
    layer axis L, not the 512 features; kept as is, so the entries of one slice interact.
    """

    def __init__(self, dim: int = 512, coarse: bool = True, medium: bool = True, fine: bool = True) -> None:
        super().__init__()
        self.levels = {"coarse": coarse, "medium": medium, "fine": fine}
        if coarse:
            self.course_mapping = Mapper(dim)
        if medium:
            self.medium_mapping = Mapper(dim)
        if fine:
            self.fine_mapping = Mapper(dim)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        modules = {"coarse": "course_mapping", "medium": "medium_mapping", "fine": "fine_mapping"}
        parts = []
        for level, sl in LEVEL_SLICES.items():
            x = w[:, sl, :]
            parts.append(getattr(self, modules[level])(x) if self.levels[level] else torch.zeros_like(x))
        return torch.cat(parts, dim=1)


def mapper_loss(
    w: torch.Tensor, w_hat: torch.Tensor, clip_d: torch.Tensor, id_l: torch.Tensor | None, clip_lambda: float = 1.0, l2_lambda: float = 0.8, id_lambda: float = 0.1
) -> dict[str, torch.Tensor]:
    """L(w) = λ_CLIP L_CLIP + λ_L2 ‖M_t(w)‖ + λ_ID L_ID (Patashnik et al. 2021, Eqs. 4-5).

    Notes: as ``coach.py calc_loss``, the L2 term is ``MSELoss(w_hat, w)``: the *mean* of
    (0.1·M_t(w))² over all entries, not the norm ‖M_t(w)‖₂ the paper writes.
    """
    l2 = F.mse_loss(w_hat, w)
    idl = id_l if id_l is not None else torch.zeros((), device=w.device)
    total = clip_lambda * clip_d.mean() + l2_lambda * l2 + id_lambda * idl
    return {"total": total, "clip": clip_d.mean(), "l2": l2, "id": idl}


@dataclass
class MapperTraining:
    """Settings of one mapper training run (defaults: :data:`MAPPER_DEFAULTS` except the size)."""

    steps: int = 50000
    batch_size: int = 2
    lr: float = 0.5
    clip_lambda: float = 1.0
    l2_lambda: float = 0.8
    id_lambda: float = 0.1
    checkpoint_every: int = 2000
    clip_input: ClipInput = "official"
    seed: int = 0


def train_mapper(
    mapper: LevelsMapper,
    generator: Generator,
    guide: ClipGuide,
    text_emb: torch.Tensor,
    w_train: torch.Tensor,
    cfg: MapperTraining,
    id_net: IRSE50 | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    stop_after: int | None = None,
    show_progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, list[float]]:
    """Train the mapper for one prompt over W+ codes ``w_train`` (N, n_latent, D); resumable.

    w_hat = w + 0.1·M_t(w) (``coach.py``), fixed noise, Adam (the official optimiser is Ranger).
    Batches are drawn by a seeded generator whose state is checkpointed with the mapper, the
    optimiser, the step and the loss history (atomically, every ``checkpoint_every`` steps and
    at the end), so a run killed and restarted from ``checkpoint`` ends bit-for-bit where an
    uninterrupted run ends. ``stop_after`` halts after that many steps of this call (for tests).
    Returns the loss history {"total", "clip", "l2", "id"} over all steps so far.
    """
    if cfg.id_lambda > 0 and id_net is None:
        raise ValueError("id_lambda > 0 needs the identity network (id_net=...); or set id_lambda=0")
    opt = torch.optim.Adam([p for p in mapper.parameters() if p.requires_grad], lr=cfg.lr)
    rng = torch.Generator().manual_seed(cfg.seed)
    hist: dict[str, list[float]] = {"total": [], "clip": [], "l2": [], "id": []}
    step = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and (state := load_checked(path, "mapper checkpoint")) is not None:
        if state["levels"] != mapper.levels:
            raise ValueError(f"checkpoint {path} was trained with levels {state['levels']}, this mapper has {mapper.levels}; use another checkpoint path")
        mapper.load_state_dict(state["mapper"])
        opt.load_state_dict(state["optimizer"])
        rng.set_state(state["rng"])
        hist, step = state["history"], int(state["step"])

    def save() -> None:
        if path is not None:
            with atomic_path(path) as tmp:
                torch.save({"mapper": mapper.state_dict(), "optimizer": opt.state_dict(), "rng": rng.get_state(), "history": hist, "step": step, "levels": mapper.levels}, tmp)

    noise = generator.fixed_noise()
    done_here = 0
    bar = tqdm(total=cfg.steps, initial=step, desc="mapper training", disable=not show_progress)
    while step < cfg.steps and (stop_after is None or done_here < stop_after):
        idx = torch.randint(0, w_train.shape[0], (cfg.batch_size,), generator=rng)
        w = w_train[idx]
        with torch.no_grad():
            x = generator.synthesis(generator.w_to_s(w), noise)
        w_hat = w + 0.1 * mapper(w)
        x_hat = generator.synthesis(generator.w_to_s(w_hat), noise)
        idl = identity_loss(id_net, x_hat, x) if (id_net is not None and cfg.id_lambda > 0) else None
        losses = mapper_loss(w, w_hat, clip_distance(guide, x_hat, text_emb, cfg.clip_input), idl, cfg.clip_lambda, cfg.l2_lambda, cfg.id_lambda)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        for k in hist:
            hist[k].append(float(losses[k].detach()))
        step += 1
        done_here += 1
        bar.update(1)
        if on_step is not None:
            on_step(step, {k: v[-1] for k, v in hist.items()})
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save()
    bar.close()
    if stop_after is None:
        save()
    return hist
