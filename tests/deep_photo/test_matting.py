"""Matting Laplacian (Levin et al. 2008) and photorealism loss (Luan et al. 2017, Eq. 2)."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from stylecore.deep_photo.matting import EPSILON, matting_laplacian, photorealism_loss, photorealism_per_pixel


def naive_laplacian(img: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Dense, window by window, pair by pair: Levin et al. 2008, Eq. 12 written out."""
    h, w, _ = img.shape
    lap = np.zeros((h * w, h * w))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            idx = [(y + dy) * w + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            win = img.reshape(-1, 3)[idx]
            mu = win.mean(0)
            cov = sum(np.outer(win[i] - mu, win[i] - mu) for i in range(9)) / 9
            inv = np.linalg.inv(cov + eps / 9 * np.eye(3))
            for a in range(9):
                for b in range(9):
                    lap[idx[a], idx[b]] += (a == b) - (1 + (win[a] - mu) @ inv @ (win[b] - mu)) / 9
    return lap


@pytest.fixture
def tiny() -> np.ndarray:
    return np.random.default_rng(0).random((5, 6, 3))


def test_equals_naive_dense_construction(tiny):
    np.testing.assert_allclose(matting_laplacian(tiny).toarray(), naive_laplacian(tiny), rtol=1e-9, atol=1e-9)


def test_tensor_and_array_inputs_agree(tiny):
    t = torch.from_numpy(tiny).permute(2, 0, 1)[None]
    assert abs(matting_laplacian(t) - matting_laplacian(tiny)).max() == 0


def test_symmetric_psd_rows_sum_to_zero():
    img = np.random.default_rng(1).random((12, 10, 3))
    lap = matting_laplacian(img)
    assert abs(lap - lap.T).max() < 1e-10
    np.testing.assert_allclose(np.asarray(lap.sum(axis=1)).ravel(), 0, atol=1e-9)
    eig = np.linalg.eigvalsh(lap.toarray())
    assert eig.min() > -1e-8 * eig.max()
    assert lap.nnz <= 25 * 12 * 10  # 5x5 neighbourhood per pixel


def test_affine_functions_of_colour_are_in_null_space():
    rng = np.random.default_rng(2)
    img = rng.random((9, 11, 3))
    lap = matting_laplacian(img)
    flat = img.reshape(-1, 3)
    for c in range(3):  # each input channel
        v = flat[:, c]
        assert np.linalg.norm(lap @ v) < 1e-4 * np.linalg.norm(v)
    a, b = rng.normal(size=3), 0.3  # any affine function of the colours
    v = flat @ a + b
    assert v @ (lap @ v) < 1e-5 * (v @ v)
    noise = rng.random(v.shape)  # … but not an arbitrary image
    assert noise @ (lap @ noise) > 1e-2 * (noise @ noise)


def test_error_when_image_too_small_or_wrong_shape():
    with pytest.raises(ValueError, match="smaller than one 3x3 window"):
        matting_laplacian(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="RGB"):
        matting_laplacian(torch.zeros(1, 1, 8, 8))


def test_photorealism_loss_value_and_gradient():
    rng = np.random.default_rng(3)
    content = rng.random((4, 5, 3))
    lap = matting_laplacian(content)
    out = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    loss = photorealism_loss(out, lap)
    dense = torch.from_numpy(lap.toarray())
    v = out[0].reshape(3, -1)
    desired = sum(v[c] @ dense @ v[c] for c in range(3))
    assert torch.allclose(loss, desired)
    assert torch.autograd.gradcheck(lambda x: photorealism_loss(x, lap), (out,))
    assert photorealism_per_pixel(out, lap) == pytest.approx(float(desired.detach()) / 20)


def test_photorealism_loss_rejects_mismatched_laplacian():
    lap = matting_laplacian(np.random.default_rng(0).random((6, 6, 3)))
    with pytest.raises(ValueError, match="build it with matting_laplacian"):
        photorealism_loss(torch.rand(1, 3, 5, 6), lap)


def test_larger_lambda_gives_smaller_photorealism_term():
    """Tikhonov family x(λ) = argmin ||x − t||² + λ xᵀMx = (I + λM)⁻¹ t: xᵀMx falls as λ grows."""
    rng = np.random.default_rng(4)
    content = rng.random((10, 12, 3))
    lap = matting_laplacian(content)
    target = rng.random((3, 120))  # a "stylised" image that ignores the content's structure
    eye = __import__("scipy.sparse", fromlist=["identity"]).identity(120, format="csc")
    values = []
    for lam in (0.0, 0.01, 0.1, 1.0, 10.0):
        x = np.stack([spla.spsolve(eye + lam * lap.tocsc(), target[c]) for c in range(3)])
        values.append(float(photorealism_loss(torch.from_numpy(x)[None].reshape(1, 3, 10, 12), lap)))
    assert all(a > b for a, b in zip(values, values[1:])), values
