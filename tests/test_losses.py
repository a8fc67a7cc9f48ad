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
