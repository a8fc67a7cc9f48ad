"""The authors' post-process SmoothLocalAffine (deepmatting_seg.lua / cuda_utils.cu) against naive formulas."""

import numpy as np
import pytest
import torch

from stylecore.deep_photo.local_affine import RIDGE, apply_affine, joint_bilateral_smooth, local_affine_fit, smooth_local_affine
from stylecore.deep_photo.matting import matting_laplacian, photorealism_loss


def rand_hwc(h, w, seed):
    return np.random.default_rng(seed).random((h, w, 3))


def test_local_affine_fit_equals_the_authors_4x4_ridge_system_per_pixel():
    # best_local_affine_kernel: M = [I 1] over the clipped 3x3 window, A = (MᵀM + ε diag(1,1,1,0))⁻¹ MᵀS
    guide, output = rand_hwc(5, 7, 0), rand_hwc(5, 7, 1)
    eps = 1e-2
    got = local_affine_fit(output, guide, eps)
    h, w, _ = guide.shape
    for y in range(h):
        for x in range(w):
            rows = [(yy, xx) for yy in range(y - 1, y + 2) for xx in range(x - 1, x + 2) if 0 <= yy < h and 0 <= xx < w]
            m = np.array([[*guide[p], 1.0] for p in rows])  # (n, 4)
            s = np.array([output[p] for p in rows])  # (n, 3)
            coeffs = np.linalg.solve(m.T @ m + eps * np.diag([1.0, 1, 1, 0]), m.T @ s)  # (4, 3)
            np.testing.assert_allclose(got[y, x], coeffs.T, rtol=1e-7, atol=1e-9)


def test_fit_residual_summed_over_windows_is_the_matting_laplacian_quadratic_form():
    # Levin et al. 2008, Theorem 1: Σ_k min_{A,b} Σ_{i∈w_k} ‖A I_i + b − O_i‖² + ε‖A‖² = Σ_c V_cᵀ M_I V_c
    guide, output = rand_hwc(6, 8, 2), rand_hwc(6, 8, 3)
    eps = 1e-3
    coeffs = local_affine_fit(output, guide, eps)
    h, w, _ = guide.shape
    energy = 0.0
    for y in range(1, h - 1):  # the Laplacian uses the windows that fit inside the image
        for x in range(1, w - 1):
            a, b = coeffs[y, x, :, :3], coeffs[y, x, :, 3]
            win = (slice(y - 1, y + 2), slice(x - 1, x + 2))
            pred = guide[win] @ a.T + b  # (3, 3, 3)
            energy += ((pred - output[win]) ** 2).sum() + eps * (a**2).sum()
    lm = photorealism_loss(torch.from_numpy(output).permute(2, 0, 1)[None], matting_laplacian(guide, eps=eps))
    assert energy == pytest.approx(float(lm), rel=1e-6)


def test_an_affine_recolouring_is_recovered_and_left_unchanged():
    guide = rand_hwc(12, 15, 4)
    a, b = np.array([[0.5, 0.2, 0.0], [0.1, 0.6, 0.1], [0.0, 0.2, 0.7]]), np.array([0.1, 0.05, 0.05])
    output = guide @ a.T + b  # (H, W, 3), inside [0, 1]
    coeffs = local_affine_fit(output, guide, eps=1e-12)
    np.testing.assert_allclose(coeffs[..., :3], np.broadcast_to(a, coeffs[..., :3].shape), atol=1e-5)
    np.testing.assert_allclose(coeffs[..., 3], np.broadcast_to(b, coeffs[..., 3].shape), atol=1e-5)
    t = lambda arr: torch.from_numpy(arr).permute(2, 0, 1)[None]  # noqa: E731
    out = smooth_local_affine(t(output), t(guide), eps=1e-12)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), output, atol=1e-5)


def test_joint_bilateral_smooth_against_a_per_pixel_loop():
    guide, values = rand_hwc(6, 7, 5), np.random.default_rng(6).standard_normal((6, 7, 2, 3))
    r, s_s, s_r = 2, 1.1, 0.3
    got = joint_bilateral_smooth(values, guide, r, s_s, s_r)
    for y in range(6):
        for x in range(7):
            num, den = np.zeros((2, 3)), 0.0
            for yy in range(max(0, y - r), min(6, y + r + 1)):
                for xx in range(max(0, x - r), min(7, x + r + 1)):
                    wgt = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s_s**2)) * np.exp(-((guide[yy, xx] - guide[y, x]) ** 2).mean() / (2 * s_r**2))
                    num, den = num + wgt * values[yy, xx], den + wgt
            np.testing.assert_allclose(got[y, x], num / den, rtol=1e-10)


def test_smoothing_keeps_constants_and_does_not_cross_edges_of_the_guide():
    guide = np.zeros((10, 12, 3))
    guide[:, 6:] = 0.6  # two flat regions
    step = (np.arange(12) >= 6).astype(float)[None, :, None].repeat(10, 0)  # coefficient 0 left, 1 right
    const = np.full((10, 12, 4), 0.7)
    np.testing.assert_allclose(joint_bilateral_smooth(const, guide), const)
    edge_aware = joint_bilateral_smooth(step, guide)  # σ_r = 0.05 ≪ colour jump 0.6
    np.testing.assert_allclose(edge_aware, step, atol=1e-12)
    blurred = joint_bilateral_smooth(step, guide, sigma_range=100.0)  # no edge awareness: a Gaussian blur
    assert blurred[:, 5].min() > 0.2 and blurred[:, 6].max() < 0.8


def test_post_process_makes_a_noisy_stylisation_locally_affine_in_the_content():
    g = torch.Generator().manual_seed(0)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(30, 40), mode="bilinear")
    clean = (0.7 * content.flip(1) + 0.15).clamp(0, 1)  # an affine recolouring: the edit a photographer makes
    noisy = (clean + 0.08 * torch.randn(clean.shape, generator=g)).clamp(0, 1)  # + painterly noise
    out = smooth_local_affine(noisy, content)
    lap = matting_laplacian(content)
    assert float(photorealism_loss(out.double(), lap)) < 0.05 * float(photorealism_loss(noisy.double(), lap))
    assert (out - clean).abs().mean() < 0.5 * (noisy - clean).abs().mean()
    assert out.shape == noisy.shape and out.dtype == noisy.dtype and 0 <= out.min() and out.max() <= 1


def test_apply_affine_and_errors():
    guide = rand_hwc(3, 4, 7)
    coeffs = np.zeros((3, 4, 3, 4))
    coeffs[..., :3] = np.eye(3)
    coeffs[..., 3] = 0.25
    np.testing.assert_allclose(apply_affine(coeffs, guide), guide + 0.25)
    assert RIDGE == 1e-3
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="differ in shape"):
        smooth_local_affine(x, torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="odd window"):
        smooth_local_affine(x, x, patch=4)
    with pytest.raises(ValueError, match="differ in size"):
        local_affine_fit(rand_hwc(4, 4, 0), rand_hwc(4, 5, 0))
    with pytest.raises(ValueError, match="positive sigmas"):
        joint_bilateral_smooth(np.zeros((4, 4)), rand_hwc(4, 4, 0), sigma_range=0.0)
