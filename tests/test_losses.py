"""Each loss against the slow, obvious formula (Gatys et al. 2016, Eqs. 1, 3, 4, 5, 7)."""

from __future__ import annotations

import itertools

import pytest
import torch

from stylecore.losses import content_loss, gram_matrix, style_layer_loss, style_loss, total_loss, total_variation


@pytest.fixture
def feats() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 3, 4, 5, generator=g, dtype=torch.float64), torch.randn(1, 3, 4, 5, generator=g, dtype=torch.float64)


def test_content_loss_eq1(feats: tuple[torch.Tensor, torch.Tensor]) -> None:
    f, p = feats
    desired = 0.0
    for c, i, j in itertools.product(range(3), range(4), range(5)):
        desired += 0.5 * (f[0, c, i, j] - p[0, c, i, j]) ** 2
    assert torch.allclose(content_loss(f, p), desired)
    assert torch.allclose(content_loss(f, p, "mean"), 2 * desired / f.numel())
    with pytest.raises(ValueError, match="shape"):
        content_loss(f, p[..., :4])


def test_gram_matrix_eq3(feats: tuple[torch.Tensor, torch.Tensor]) -> None:
    f, _ = feats
    n, m = 3, 20
    flat = f[0].reshape(n, m)
    desired = torch.zeros(n, n, dtype=f.dtype)
    for i, j, k in itertools.product(range(n), range(n), range(m)):
        desired[i, j] += flat[i, k] * flat[j, k]
    assert torch.allclose(gram_matrix(f)[0], desired)
    assert torch.allclose(gram_matrix(f, normalize=True)[0], desired / m)


def test_style_layer_loss_eq4(feats: tuple[torch.Tensor, torch.Tensor]) -> None:
    f, a = feats
    g, at = gram_matrix(f), gram_matrix(a)
    n, m = 3, 20
    desired = sum((g[0, i, j] - at[0, i, j]) ** 2 for i in range(n) for j in range(n)) / (4 * n**2 * m**2)
    assert torch.allclose(style_layer_loss(g, at, n, m), desired)


def test_authors_code_is_four_times_eq4(feats: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The authors' GramMSELoss on H·W-normalised Grams equals 4·E_l (stylecore.gatys.AUTHORS_CODE relies on it)."""
    f, a = feats
    authors = torch.nn.functional.mse_loss(gram_matrix(f, normalize=True), gram_matrix(a, normalize=True))
    assert torch.allclose(authors, 4 * style_layer_loss(gram_matrix(f), gram_matrix(a), 3, 20))


def test_style_loss_eq5_is_weighted_sum(feats: tuple[torch.Tensor, torch.Tensor]) -> None:
    f, a = feats
    f2 = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    a2 = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    weights = {"l1": 0.3, "l2": 2.0}
    got = style_loss({"l1": f, "l2": f2}, {"l1": gram_matrix(a), "l2": gram_matrix(a2)}, weights)
    desired = 0.3 * style_layer_loss(gram_matrix(f), gram_matrix(a), 3, 20) + 2.0 * style_layer_loss(gram_matrix(f2), gram_matrix(a2), 2, 9)
    assert torch.allclose(got, desired)
    assert float(total_loss(torch.tensor(2.0), torch.tensor(3.0), alpha=1e-3, beta=1.0)) == pytest.approx(3.002)


@pytest.mark.parametrize("power", [2.0, 1.0])
def test_total_variation(power: float) -> None:
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    desired = 0.0
    for c, i, j in itertools.product(range(2), range(3), range(4)):
        dx = x[0, c, i, j + 1] - x[0, c, i, j]
        dy = x[0, c, i + 1, j] - x[0, c, i, j]
        desired += ((dx**2 + dy**2 + (0 if power == 2.0 else 1e-8)) ** (power / 2))
    assert torch.allclose(total_variation(x, power), desired)
    assert total_variation(torch.ones(1, 3, 5, 5)) == 0


def test_gradchecks() -> None:
    g = torch.Generator().manual_seed(1)
    f = torch.randn(1, 2, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    target = torch.randn(1, 2, 3, 3, dtype=torch.float64, generator=g)
    a = gram_matrix(target)
    assert torch.autograd.gradcheck(lambda x: gram_matrix(x), (f,))
    assert torch.autograd.gradcheck(lambda x: style_layer_loss(gram_matrix(x), a, 2, 9), (f,))
    assert torch.autograd.gradcheck(lambda x: content_loss(x, target), (f,))
    assert torch.autograd.gradcheck(lambda x: total_variation(x, 2.0), (f,))
    assert torch.autograd.gradcheck(lambda x: total_variation(x, 1.0), (f,))


def _naive_gram(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    return flat @ flat.transpose(1, 2)


@pytest.mark.parametrize("normalize", [False, True])
def test_lean_gram_gradients_equal_the_plain_formula(normalize: bool) -> None:
    """The custom backward (one matmul) against autograd through ``flat @ flatᵀ``, and gradcheck in float64."""
    g = torch.Generator().manual_seed(2)
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(2, 3, 3, dtype=torch.float64, generator=g)  # a non-symmetric upstream gradient
    m = 20 if normalize else 1
    (lean,) = torch.autograd.grad((gram_matrix(f, normalize) * weight).sum(), f)
    (plain,) = torch.autograd.grad((_naive_gram(f) / m * weight).sum(), f)
    assert torch.allclose(gram_matrix(f, normalize), _naive_gram(f) / m)
    assert torch.allclose(lean, plain)
    assert torch.autograd.gradcheck(lambda x: gram_matrix(x, normalize), (f,))
    assert torch.autograd.gradgradcheck(lambda x: gram_matrix(x, normalize), (f,))


def test_style_loss_at_unequal_sizes_compares_per_position_statistics() -> None:
    """A style image with the output's statistics at twice the positions has zero style loss.

    Tiling x side by side doubles M_s and every Gram entry but keeps G/M; without the
    rescaling of Eq. 4's target (``target_positions``) the loss would not vanish.
    """
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 4, 5, 6, dtype=torch.float64, generator=g)
    tiled = torch.cat([x, x], dim=-1)  # (1, 4, 5, 12): same per-position statistics
    grey = torch.full_like(tiled, 0.5)
    positions = {"l": 60}
    same = style_loss({"l": x}, {"l": gram_matrix(tiled)}, {"l": 1.0}, positions)
    flat = style_loss({"l": x}, {"l": gram_matrix(grey)}, {"l": 1.0}, positions)
    assert float(same) < 1e-12 * float(flat)
    naive = style_loss({"l": x}, {"l": gram_matrix(tiled)}, {"l": 1.0})  # Eq. 4 with the sizes taken as equal
    assert float(naive) > 0.1 * float(flat)
    # equal sizes: target_positions changes nothing (Eq. 4 exactly)
    a = torch.rand(1, 4, 5, 6, dtype=torch.float64, generator=g)
    assert torch.equal(style_loss({"l": x}, {"l": gram_matrix(a)}, {"l": 1.0}, {"l": 30}), style_loss({"l": x}, {"l": gram_matrix(a)}, {"l": 1.0}))
