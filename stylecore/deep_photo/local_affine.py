"""The authors' post-process of Deep Photo Style Transfer: smoothed best local affine (``SmoothLocalAffine``).

The published results of Luan et al. (CVPR 2017), ``best<N>_t_1000.png``, are not the raw
optimisation output: ``deepmatting_seg.lua`` passes it through ``SmoothLocalAffine``
(``cuda_utils.cu``), which

1. fits, at every pixel, the colour transform O ≈ A I + b (A 3×3, b 3) over the 3×3 window
   around it by ridge least squares — the same fit whose minimum defines the matting
   Laplacian (Levin et al. 2008, Eq. 5 and Theorem 1) — see :func:`local_affine_fit`;
2. smooths the 12 coefficients with a joint bilateral filter guided by the content photo
   (spatial σ = r/3, colour σ = 0.05, radius r = 7) — :func:`joint_bilateral_smooth`;
3. applies the smoothed transform to the *content* photo — :func:`apply_affine`.

The result is exactly a locally affine recolouring of the content (edges of the content,
colours of the stylised output). Notebook 02, section "The authors' post-process", shows it
beside the paper's results. CPU only (numpy + ``scipy.ndimage``); no GPU kernel needed.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from .matting import image_to_numpy_hwc

__all__ = ["RIDGE", "apply_affine", "joint_bilateral_smooth", "local_affine_fit", "smooth_local_affine"]

#: Ridge on A of the authors' kernel (``best_local_affine_kernel``: ``Mt_M[i][i] = 1e-3`` for the 3 colour
#: rows). Their ``-eps 1e-7`` is passed to the kernel but not used there.
RIDGE = 1e-3


def _window_sums(values: np.ndarray, radius: int) -> np.ndarray:
    """Σ over the (2r+1)² window around each pixel, clipped at the border: (H, W, ...) -> (H, W, ...)."""
    size = 2 * radius + 1
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    out = uniform_filter(flat, size=(size, size, 1), mode="constant", cval=0.0) * size**2
    return out.reshape(values.shape)


def local_affine_fit(output: torch.Tensor | np.ndarray, guide: torch.Tensor | np.ndarray, eps: float = RIDGE, radius: int = 1) -> np.ndarray:
    """Best affine colour map from ``guide`` to ``output`` in the window around every pixel.

        (A_k, b_k) = argmin Σ_{i ∈ w_k} ‖A I_i + b − O_i‖² + ε ‖A‖²_F
        A_kᵀ = (Σ_k + ε/|w_k| 𝟙₃)⁻¹ cov_k(I, O),   b_k = μ_k(O) − A_k μ_k(I)

    the closed form of Levin et al. 2008 (Eq. 5 ff.), whose minimum summed over all windows is
    Σ_c V_cᵀ M_I V_c (their Theorem 1, :func:`stylecore.deep_photo.matting.photorealism_loss`). Windows are
    (2r+1)×(2r+1), centred on every pixel and clipped at the image border (|w_k| = pixels inside),
    as in the authors' ``best_local_affine_kernel``.

    Shapes: output, guide (1, 3, H, W) tensors or (H, W, 3) arrays -> (H, W, 3, 4) float64:
    ``coeffs[y, x, c] = (A_c1, A_c2, A_c3, b_c)``, so O_c ≈ A_c · I + b_c.
    Notes: the authors solve the equivalent 4×4 system (MᵀM + ε diag(1,1,1,0))⁻¹ MᵀS on
    [0, 255/256]-scaled images; the difference of scale changes ε by 0.8 %.
    """
    o, g = image_to_numpy_hwc(output), image_to_numpy_hwc(guide)
    if o.shape != g.shape:
        raise ValueError(f"output {o.shape[:2]} and guide {g.shape[:2]} differ in size; fit the output of the same content photo")
    if eps < 0 or radius < 1:
        raise ValueError(f"need eps >= 0 and radius >= 1, got eps={eps}, radius={radius}")
    h, w, _ = g.shape
    n = _window_sums(np.ones((h, w)), radius)[..., None]  # (H, W, 1) pixels per window
    mu_i = _window_sums(g, radius) / n  # (H, W, 3)
    mu_o = _window_sums(o, radius) / n  # (H, W, 3)
    sigma = _window_sums(g[..., :, None] * g[..., None, :], radius) / n[..., None] - mu_i[..., :, None] * mu_i[..., None, :]  # (H, W, 3, 3)
    cov_io = _window_sums(g[..., :, None] * o[..., None, :], radius) / n[..., None] - mu_i[..., :, None] * mu_o[..., None, :]  # (H, W, 3 in, 3 out)
    ridge = (eps / n)[..., None] * np.eye(3)  # (H, W, 3, 3)
    a = np.linalg.solve(sigma + ridge, cov_io)  # (H, W, 3 in, 3 out)
    a = np.swapaxes(a, -1, -2)  # (H, W, 3 out, 3 in): row c maps I to O_c
    b = mu_o - np.einsum("hwci,hwi->hwc", a, mu_i)  # (H, W, 3)
    return np.concatenate([a, b[..., None]], axis=-1)


def joint_bilateral_smooth(values: np.ndarray, guide: torch.Tensor | np.ndarray, radius: int = 7, sigma_space: float | None = None, sigma_range: float = 0.05) -> np.ndarray:
    """Edge-aware average of ``values`` guided by an image (the authors' ``bilateral_smooth_kernel``).

        v'_p = Σ_q w_pq v_q / Σ_q w_pq,   w_pq = exp(−‖p − q‖² / 2σ_s²) · exp(−(‖I_p − I_q‖² / 3) / 2σ_r²)

    over the (2r+1)² pixels q around p that lie inside the image; ‖I_p − I_q‖²/3 is the mean
    squared difference over the three channels. Defaults: r = 7, σ_s = r/3, σ_r = 0.05
    (``deepmatting_seg.lua``: ``-f_radius 7``, ``-f_edge 0.05``, ``sigma1 = filter_radius / 3``).

    Shapes: values (H, W, ...) any trailing shape, guide (1, 3, H, W) or (H, W, 3) -> like values.
    """
    g = image_to_numpy_hwc(guide)
    h, w = g.shape[:2]
    if values.shape[:2] != (h, w):
        raise ValueError(f"values {values.shape[:2]} and guide {(h, w)} differ in size")
    if radius < 0 or sigma_range <= 0 or (sigma_space is not None and sigma_space <= 0):
        raise ValueError(f"need radius >= 0 and positive sigmas, got radius={radius}, sigma_space={sigma_space}, sigma_range={sigma_range}")
    if radius == 0:
        return values.astype(np.float64, copy=True)
    sigma_space = radius / 3 if sigma_space is None else sigma_space
    v = values.reshape(h, w, -1).astype(np.float64)
    r = radius
    pad = ((r, r), (r, r), (0, 0))
    v_pad, g_pad = np.pad(v, pad), np.pad(g, pad)
    inside = np.pad(np.ones((h, w)), r)  # 1 where the shifted pixel is in the image
    num, den = np.zeros_like(v), np.zeros((h, w))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            sl = (slice(r + dy, r + dy + h), slice(r + dx, r + dx + w))
            spatial = np.exp(-(dx * dx + dy * dy) / (2 * sigma_space**2))
            colour = ((g_pad[sl] - g) ** 2).mean(-1)  # (H, W)
            weight = spatial * np.exp(-colour / (2 * sigma_range**2)) * inside[sl]
            num += weight[..., None] * v_pad[sl]
            den += weight
    return (num / den[..., None]).reshape(values.shape)


def apply_affine(coeffs: np.ndarray, guide: torch.Tensor | np.ndarray) -> np.ndarray:
    """O_c = A_c · I + b_c at every pixel: coeffs (H, W, 3, 4), guide -> (H, W, 3)."""
    g = image_to_numpy_hwc(guide)
    return np.einsum("hwci,hwi->hwc", coeffs[..., :3], g) + coeffs[..., 3]


def smooth_local_affine(
    output: torch.Tensor,
    content: torch.Tensor,
    eps: float = RIDGE,
    patch: int = 3,
    filter_radius: int = 7,
    edge_sigma: float = 0.05,
) -> torch.Tensor:
    """The authors' post-process (``SmoothLocalAffine``, deepmatting_seg.lua / cuda_utils.cu).

        coeffs = local_affine_fit(O, I);  coeffs' = joint_bilateral_smooth(coeffs, I);  O' = coeffs' · [I; 1]

    Shapes: output, content (1, 3, H, W) in [0, 1] -> (1, 3, H, W) in [0, 1], on output's device/dtype.
    Notes: not in the paper's text (Sec. 4 describes only the optimisation); the paper's figures
    and the repository's ``best*_t_1000.png`` are made with it. The result is clipped to [0, 1]
    (the Lua code clips when it saves the PNG).
    """
    if output.shape != content.shape:
        raise ValueError(f"output {tuple(output.shape)} and content {tuple(content.shape)} differ in shape")
    if patch < 3 or patch % 2 == 0:
        raise ValueError(f"patch must be an odd window size >= 3, got {patch}")
    g = image_to_numpy_hwc(content)
    coeffs = local_affine_fit(output, g, eps, (patch - 1) // 2)
    smoothed = joint_bilateral_smooth(coeffs, g, filter_radius, filter_radius / 3, edge_sigma)
    out = np.clip(apply_affine(smoothed, g), 0.0, 1.0)
    return torch.from_numpy(out).permute(2, 0, 1)[None].to(device=output.device, dtype=output.dtype)
