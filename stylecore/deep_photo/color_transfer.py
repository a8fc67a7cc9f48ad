"""Classic colour-transfer baselines of Luan et al. 2017, Fig. 5.

- Reinhard, Ashikhmin, Gooch & Shirley 2001, "Color Transfer between Images": match the
  per-channel mean and standard deviation in the decorrelated lαβ space.
- Pitié, Kokaram & Dahyot 2007, "Automated colour grading using colour distribution
  transfer": iterative distribution transfer (IDT), 1-D matching along random rotations
  until the whole 3-D colour distribution matches.

Both are global: they move colours, never edges, so they are photorealistic by construction
and cannot do local edits — the contrast notebook 02's "Baselines (Fig. 5)" shows.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["pitie_transfer", "reinhard_transfer", "rgb_to_lab_reinhard", "lab_reinhard_to_rgb"]

# Reinhard et al. 2001, Eq. 4 (RGB -> LMS) and Eq. 6 (log LMS -> lαβ)
_RGB2LMS = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]])
_LMS2LAB = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array([[1, 1, 1], [1, 1, -2], [1, -1, 0]])
_FLOOR = 1e-4  # log10 of 0 is −∞: black pixels are floored (not discussed in the paper)


def _pixels(image: torch.Tensor) -> np.ndarray:
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"expected one RGB image (1, 3, H, W), got {tuple(image.shape)}")
    return image[0].detach().cpu().double().reshape(3, -1).numpy()  # (3, N)


def _image(pixels: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(pixels.reshape(like.shape[1:])).to(like.dtype)[None].clamp(0, 1)


def rgb_to_lab_reinhard(rgb: np.ndarray) -> np.ndarray:
    """(3, N) linear-ish RGB in [0, 1] -> (3, N) lαβ (Reinhard et al. 2001, Eqs. 4-6)."""
    return _LMS2LAB @ np.log10(np.maximum(_RGB2LMS @ rgb, _FLOOR))


def lab_reinhard_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab_reinhard` (Reinhard et al. 2001, Eqs. 8-9, as exact inverses)."""
    return np.linalg.solve(_RGB2LMS, 10.0 ** np.linalg.solve(_LMS2LAB, lab))


def reinhard_transfer(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Colour transfer by lαβ statistics (Reinhard et al. 2001, Eq. 10).

        l' = σ_t / σ_s · (l − ⟨l⟩_s) + ⟨l⟩_t   for each of l, α, β

    Shapes: (1, 3, H, W), (1, 3, Hs, Ws) -> (1, 3, H, W) in [0, 1].
    Notes: the paper converts from display RGB without gamma handling; so do we. The result
    is clamped to [0, 1] (out-of-gamut colours), so its statistics match up to clipping.
    """
    src, tgt = rgb_to_lab_reinhard(_pixels(content)), rgb_to_lab_reinhard(_pixels(style))
    mu_s, sd_s = src.mean(1, keepdims=True), src.std(1, keepdims=True)
    mu_t, sd_t = tgt.mean(1, keepdims=True), tgt.std(1, keepdims=True)
    out = (src - mu_s) * (sd_t / np.maximum(sd_s, 1e-8)) + mu_t
    return _image(lab_reinhard_to_rgb(out), content)


def match_1d(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Map samples ``source`` (N,) so their empirical distribution is ``target``'s (quantile matching)."""
    order = np.argsort(source, kind="stable")
    quantiles = (np.arange(source.size) + 0.5) / source.size
    t_sorted = np.sort(target)
    out = np.empty_like(source)
    out[order] = np.interp(quantiles, (np.arange(target.size) + 0.5) / target.size, t_sorted)
    return out


def pitie_transfer(content: torch.Tensor, style: torch.Tensor, iterations: int = 20, seed: int = 0) -> torch.Tensor:
    """Iterative distribution transfer (Pitié et al. 2007, Sec. 3, Algorithm 1).

    Repeat: draw a random rotation R; project both colour clouds on its 3 axes; map each
    projection of the content onto the style's 1-D distribution; x ← x + Rᵀ(matched − Rx).
    The 3-D distributions converge (Pitié et al. 2007, Sec. 3.2).
    Shapes: (1, 3, H, W), (1, 3, Hs, Ws) -> (1, 3, H, W).
    Notes: 1-D matching by exact quantiles instead of the paper's 300-bin histograms; the
    grain-reducing post-process of Pitié et al. 2007 (Sec. 4) is not applied.
    """
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    x, y = _pixels(content).copy(), _pixels(style)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        q, r = np.linalg.qr(rng.standard_normal((3, 3)))
        rot = (q * np.sign(np.diag(r))).T  # (3, 3) uniformly random orthogonal
        px, py = rot @ x, rot @ y
        matched = np.stack([match_1d(px[i], py[i]) for i in range(3)])
        x = x + rot.T @ (matched - px)
    return _image(x, content)
