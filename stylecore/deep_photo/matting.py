"""The matting Laplacian and the photorealism regulariser of Deep Photo Style Transfer.

Levin, Lischinski & Weiss (2008) model the colours inside every small window w_k as an affine
function of the input colours; the quadratic cost of violating that model is Vᵀ M_I V with the
*matting Laplacian* M_I. Luan, Paris, Shechtman & Bala (CVPR 2017) use it per output channel as
the photorealism loss L_m (Eq. 2). Notebook 02, section "The matting Laplacian", derives it.

Pixels are flattened row-major: pixel (y, x) of an (H, W) image is index y·W + x.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["matting_laplacian", "photorealism_loss", "photorealism_per_pixel", "image_to_numpy_hwc"]

#: ε of the authors' code (``deep-photo-styletransfer/gen_laplacian/getLaplacian.m``: ``epsilon = 1e-7``).
EPSILON = 1e-7


def image_to_numpy_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(1, 3, H, W) / (3, H, W) tensor or (H, W, 3) array -> (H, W, 3) float64 array."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu().double()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected one image (1, 3, H, W), got {tuple(t.shape)}")
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"expected an RGB image tensor (1, 3, H, W), got {tuple(image.shape)}")
        return t.permute(1, 2, 0).numpy()
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {arr.shape}")
    return arr


def matting_laplacian(image: torch.Tensor | np.ndarray, eps: float = EPSILON, radius: int = 1) -> sp.csr_matrix:
    """Matting Laplacian M_I of an RGB image (Levin et al. 2008, Eq. 12; Luan et al. 2017, Sec. 3.1).

        M_ij = Σ_{k | (i,j) ∈ w_k} ( δ_ij − 1/|w_k| · (1 + (I_i − μ_k)ᵀ (Σ_k + ε/|w_k| · I₃)⁻¹ (I_j − μ_k)) )

    over all (2r+1)×(2r+1) windows w_k that fit in the image; μ_k, Σ_k are the window's colour
    mean (3,) and covariance (3, 3). Built vectorised (one batched 3×3 inverse per window).

    Shapes: image (1, 3, H, W) tensor or (H, W, 3) array in [0, 1] -> sparse (H·W, H·W) float64.
    Notes: like the authors' ``getLaplacian.m`` there is no constraint mask (every window is
    used) and ε = 1e-7; windows are only those fully inside the image (no padding).
    """
    img = image_to_numpy_hwc(image)
    h, w, _ = img.shape
    size = 2 * radius + 1
    if h < size or w < size:
        raise ValueError(f"image {h}x{w} is smaller than one {size}x{size} window")
    n_win = size * size
    index = np.arange(h * w).reshape(h, w)
    win_idx = sliding_window_view(index, (size, size)).reshape(-1, n_win)  # (K, |w|)
    colours = img.reshape(-1, 3)[win_idx]  # (K, |w|, 3)
    mu = colours.mean(axis=1, keepdims=True)  # (K, 1, 3)
    d = colours - mu  # (K, |w|, 3)
    cov = np.einsum("kni,knj->kij", d, d) / n_win  # (K, 3, 3)
    inv = np.linalg.inv(cov + (eps / n_win) * np.eye(3))  # (K, 3, 3)
    # 1/|w| (1 + d_iᵀ Σ⁻¹ d_j), for every pair (i, j) of the window
    affinity = (1.0 + np.einsum("kni,kij,kmj->knm", d, inv, d)) / n_win  # (K, |w|, |w|)
    values = np.eye(n_win)[None] - affinity
    rows = np.repeat(win_idx, n_win, axis=1).ravel()
    cols = np.tile(win_idx, (1, n_win)).ravel()
    lap = sp.coo_matrix((values.ravel(), (rows, cols)), shape=(h * w, h * w))
    return lap.tocsr()  # duplicates (pixels shared by windows) are summed here


class _QuadraticForm(torch.autograd.Function):
    """Σ_c V_cᵀ M V_c with gradient 2 M V_c (M symmetric), on scipy sparse mat-vecs."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, laplacian: sp.spmatrix) -> torch.Tensor:  # type: ignore[override]
        v64 = v.detach().cpu().double().numpy()  # (C, N)
        mv = np.asarray(laplacian @ v64.T).T  # (C, N)
        ctx.save_for_backward(torch.from_numpy(mv).to(device=v.device, dtype=v.dtype))
        return v.new_tensor(float((v64 * mv).sum()))

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (mv,) = ctx.saved_tensors
        return 2.0 * grad_out * mv, None


def photorealism_loss(image: torch.Tensor, laplacian: sp.spmatrix) -> torch.Tensor:
    """Photorealism regulariser L_m = Σ_{c=1}^{3} V_c[O]ᵀ M_I V_c[O] (Luan et al. 2017, Eq. 2).

    V_c[O] is channel c of the output, vectorised row-major; the gradient is 2 M_I V_c[O]
    (the paper's Eq. 2 derivative), computed with one sparse mat-vec per channel.
    Shapes: image (1, 3, H, W), laplacian (H·W, H·W) -> scalar tensor.
    Notes: the mat-vec runs on CPU in float64 whatever ``image.device`` is; the result and
    the gradient come back on the image's device and dtype.
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image (1, C, H, W), got {tuple(image.shape)}")
    n = image.shape[2] * image.shape[3]
    if laplacian.shape != (n, n):
        raise ValueError(
            f"Laplacian is {laplacian.shape} but the image has {n} pixels ({image.shape[2]}x{image.shape[3]}): "
            "build it with matting_laplacian(content) at the output's size"
        )
    return _QuadraticForm.apply(image[0].reshape(image.shape[1], n), laplacian)


def photorealism_per_pixel(image: torch.Tensor, laplacian: sp.spmatrix) -> float:
    """L_m divided by the number of pixels H·W: comparable across image sizes."""
    with torch.no_grad():
        return float(photorealism_loss(image, laplacian)) / (image.shape[2] * image.shape[3])
