"""Real photographs into StyleGAN2's W+: load an encoder's latents, or project by optimisation.

StyleCLIP edits real images through e4e inversions (Tov et al. 2021; StyleCLIP README,
"Editing real images"); e4e's ``scripts/inference.py`` writes ``latents.pt``, a tensor
(N, 18, 512). Without the encoder weights the projector here optimises a W+ latent and the
noise maps against the photo (Karras et al. 2020, Sec. 5 / rosinality ``projector.py``:
Adam, lr 0.1 with the same cosine ramp, noise regularisation 1e5, noise strength 0.05
decaying over the first 75 %).
Notes: rosinality's projector uses LPIPS (a learned VGG16 metric); here VGG19 feature MSE
plus a pixel MSE, with the project's VGG19 under the weights policy.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .latent import cosine_lr
from ..nets.stylegan2 import Generator
from ..nets.vgg import VGGFeatures

__all__ = ["ProjectionResult", "load_latents", "noise_regularization", "project"]


def load_latents(path: str | os.PathLike[str], generator: Generator) -> torch.Tensor:
    """W+ latents from an e4e-style file: a tensor (N, n_latent, D) or (n_latent, D), or a dict with ``"latents"``."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"latent file {path} does not exist; make one with e4e's scripts/inference.py or with stylecore.styleclip.projector.project") from None
    if isinstance(obj, dict):
        obj = obj.get("latents", obj.get("latent"))
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{path} holds no latent tensor; expected (N, {generator.n_latent}, {generator.style_dim}) as e4e writes")
    lat = obj.float().unsqueeze(0) if obj.ndim == 2 else obj.float()
    if lat.ndim != 3 or lat.shape[1:] != (generator.n_latent, generator.style_dim):
        raise ValueError(f"{path} holds latents of shape {tuple(obj.shape)}; this generator needs (N, {generator.n_latent}, {generator.style_dim})")
    return lat


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """Σ over noise maps and scales of (mean(n·roll(n, 1, W)))² + (mean(n·roll(n, 1, H)))², halving until 8 px (Karras et al. 2020, Sec. 5)."""
    loss = torch.zeros(())
    for n in noises:
        size = n.shape[2]
        while True:
            loss = loss + (n * torch.roll(n, 1, dims=3)).mean() ** 2 + (n * torch.roll(n, 1, dims=2)).mean() ** 2
            if size <= 8:
                break
            n = F.avg_pool2d(n.reshape(-1, 1, size, size), 2)
            size //= 2
    return loss


@dataclass
class ProjectionResult:
    w: torch.Tensor  # (1, n_latent, D)
    noise: list[torch.Tensor]
    image: torch.Tensor  # (1, 3, size, size) in [-1, 1]
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def project(
    generator: Generator,
    vgg: VGGFeatures,
    target: torch.Tensor,
    w_avg: torch.Tensor,
    steps: int = 1000,
    lr: float = 0.1,
    perceptual_weight: float = 1.0,
    pixel_weight: float = 1.0,
    noise_regularize: float = 1e5,
    noise_strength: float = 0.05,
    w_std: float | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> ProjectionResult:
    """argmin_{w+, n} λ_p Σ_l ‖φ_l(G(w+, n)) − φ_l(x)‖² + λ_pix ‖G − x‖² + λ_n R(n); x: (1, 3, H, W) in [0, 1].

    Starts from w̄ in every W+ entry; per-step latent noise σ_w · strength · max(0, 1 − t/0.75)²
    (σ_w: std of sampled w, estimated when not given), as rosinality's projector.
    """
    if target.ndim != 4 or target.shape[:2] != (1, 3):
        raise ValueError(f"target must be one RGB image (1, 3, H, W) in [0, 1], got {tuple(target.shape)}")
    size = generator.size
    x = F.interpolate(target, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    gen = torch.Generator().manual_seed(seed)
    if w_std is None:
        with torch.no_grad():
            ws = generator.get_latent(torch.randn(2048, generator.style_dim, generator=gen))
            w_std = float(((ws - ws.mean(0)) ** 2).sum() / ws.shape[0]) ** 0.5
    with torch.no_grad():
        feats_target = vgg(x)
    w = generator.w_plus(w_avg.detach().clone().reshape(1, -1)).clone().requires_grad_(True)
    noise = [torch.randn(n.shape, generator=gen).requires_grad_(True) for n in generator.fixed_noise()]
    opt = torch.optim.Adam([w, *noise], lr=lr)
    hist: dict[str, list[float]] = {"total": [], "perceptual": [], "pixel": [], "noise": []}
    start = time.perf_counter()
    for i in tqdm(range(steps), desc="projection", disable=not show_progress):
        t = i / steps
        opt.param_groups[0]["lr"] = cosine_lr(t, lr)
        strength = w_std * noise_strength * max(0.0, 1 - t / 0.75) ** 2
        w_in = w + torch.randn(w.shape, generator=gen) * strength
        img = generator.synthesis(generator.w_to_s(w_in), noise)
        img01 = (img + 1) / 2
        feats = vgg(img01)
        perc = sum(F.mse_loss(feats[k], feats_target[k]) for k in feats_target)
        pix = F.mse_loss(img01, x)
        nreg = noise_regularization(noise)
        loss = perceptual_weight * perc + pixel_weight * pix + noise_regularize * nreg
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():  # keep the noise maps at zero mean, unit variance
            for n in noise:
                n.sub_(n.mean()).div_(n.std() + 1e-8)
        for k, v in (("total", loss), ("perceptual", perc), ("pixel", pix), ("noise", nreg)):
            hist[k].append(float(v.detach()))
    noise_out = [n.detach() for n in noise]
    with torch.no_grad():
        final = generator.synthesis(generator.w_to_s(w.detach()), noise_out)
    return ProjectionResult(w.detach(), noise_out, final, hist, time.perf_counter() - start)
