"""Colour-transfer baselines: Reinhard et al. 2001 and Pitié et al. 2007."""

import numpy as np
import pytest
import torch

from stylecore.deep_photo.color_transfer import lab_reinhard_to_rgb, match_1d, pitie_transfer, reinhard_transfer, rgb_to_lab_reinhard


def _img(seed, lo=0.2, hi=0.8, shape=(1, 3, 16, 20)):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)


def test_lab_roundtrip():
    rgb = np.random.default_rng(0).uniform(0.05, 1, (3, 50))
    np.testing.assert_allclose(lab_reinhard_to_rgb(rgb_to_lab_reinhard(rgb)), rgb, atol=1e-10)


def test_reinhard_matches_lab_mean_and_std():
    content, style = _img(0, 0.3, 0.6), _img(1, 0.35, 0.65, (1, 3, 12, 9))
    out = reinhard_transfer(content, style)
    assert out.shape == content.shape
    lab_out = rgb_to_lab_reinhard(out[0].reshape(3, -1).numpy())
    lab_sty = rgb_to_lab_reinhard(style[0].reshape(3, -1).numpy())
    np.testing.assert_allclose(lab_out.mean(1), lab_sty.mean(1), atol=1e-6)
    np.testing.assert_allclose(lab_out.std(1), lab_sty.std(1), rtol=1e-6)


def test_match_1d_is_exact_for_equal_sizes():
    rng = np.random.default_rng(0)
    src, tgt = rng.normal(size=200), rng.exponential(size=200)
    out = match_1d(src, tgt)
    np.testing.assert_allclose(np.sort(out), np.sort(tgt))
    assert (np.argsort(out) == np.argsort(src)).all()  # order preserved


def test_pitie_transfers_the_3d_distribution():
    content = _img(2)
    style = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64) ** 3  # skewed, dark
    out = pitie_transfer(content, style, iterations=30)
    c, o, s = (t[0].reshape(3, -1).numpy() for t in (content, out, style))

    def w1(x, y):  # 1-D Wasserstein distance of equal-size samples
        return np.abs(np.sort(x) - np.sort(y)).mean()

    for d in [*np.eye(3), np.array([0.2, -0.7, 0.5]) / np.linalg.norm([0.2, -0.7, 0.5])]:  # channels + an unused direction
        assert w1(d @ o, d @ s) < 0.15 * w1(d @ c, d @ s)
    np.testing.assert_allclose(np.cov(o), np.cov(s), atol=3e-3)  # correlations too, not just marginals


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        reinhard_transfer(torch.rand(3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="iterations"):
        pitie_transfer(_img(0), _img(1), iterations=0)
