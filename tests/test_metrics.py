from __future__ import annotations

import pytest
import torch

from stylecore.metrics import color_moved_fraction, color_statistics, structure_score


def test_color_statistics_against_numpy_formula() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 5, 7, generator=g)
    s = color_statistics(x)
    for c in range(3):
        vals = x[0, c].flatten().tolist()
        mean = sum(vals) / len(vals)
        std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5
        assert float(s[c]) == pytest.approx(mean, rel=1e-5) and float(s[3 + c]) == pytest.approx(std, rel=1e-4)
    mask = torch.zeros(5, 7)
    mask[:2] = 1
    assert torch.allclose(color_statistics(x, mask), color_statistics(x[:, :, :2]))


def test_fraction_endpoints_and_interpolation() -> None:
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, 8, 8, generator=g) * 0.5
    style = torch.rand(1, 3, 8, 12, generator=g) * 0.5 + 0.5  # another size is fine
    assert color_moved_fraction(content, content, style) == pytest.approx(0.0, abs=1e-6)
    assert color_moved_fraction(style, content, style) == pytest.approx(1.0, abs=1e-6)
    # shifting the content's colours halfway towards the style's mean moves the means half of the way
    half = content + 0.5 * (style.mean(dim=(2, 3), keepdim=True) - content.mean(dim=(2, 3), keepdim=True))
    frac = color_moved_fraction(half, content, style)
    assert 0.2 < frac < 0.8
    assert color_moved_fraction(content - 0.3, content, style) < 0
    with pytest.raises(ValueError, match="identical"):
        color_moved_fraction(content, content, content)


def test_structure_score():
    g = torch.Generator().manual_seed(0)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(32, 32), mode="bilinear")
    assert structure_score(content, content) == pytest.approx(1.0)
    recoloured = (0.5 * content + 0.2).clamp(0, 1)  # a global colour change keeps the edges
    noisy = (content + 0.2 * torch.rand(content.shape, generator=g)).clamp(0, 1)
    assert structure_score(recoloured, content) == pytest.approx(1.0, abs=1e-6)
    assert structure_score(noisy, content) < 0.9
    with pytest.raises(ValueError, match="differ in shape"):
        structure_score(content[..., :16], content)
