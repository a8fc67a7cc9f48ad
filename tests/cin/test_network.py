"""ConditionalInstanceNorm2d, the Dumoulin et al. 2017 network and the checkerboard measure vs naive versions."""

from __future__ import annotations

import math

import pytest
import torch

from stylecore.cin.network import ConditionalInstanceNorm2d, StyleTransferNetwork, checkerboard_energy, instance_norm, style_mixture


def naive_instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[b, c]
            n = v.numel()
            mu = sum(float(t) for t in v.flatten()) / n
            var = sum((float(t) - mu) ** 2 for t in v.flatten()) / n
            out[b, c] = (v - mu) / math.sqrt(var + eps)
    return out


def test_instance_norm_matches_loop_and_torch() -> None:
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64) * 3 + 1
    actual = instance_norm(x)
    torch.testing.assert_close(actual, naive_instance_norm(x))
    torch.testing.assert_close(actual, torch.nn.functional.instance_norm(x, eps=1e-5))


def random_cin(n_channels: int, n_styles: int, seed: int) -> ConditionalInstanceNorm2d:
    """A double-precision CIN whose γ, β tables are random (not the 1/0 initialisation)."""
    torch.manual_seed(seed)
    cin = ConditionalInstanceNorm2d(n_channels, n_styles).double()
    with torch.no_grad():
        cin.gamma.normal_()
        cin.beta.normal_()
    return cin


def test_cin_is_per_style_affine_of_instance_norm() -> None:
    cin = random_cin(3, 4, seed=0)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    normed = naive_instance_norm(x)
    for s in range(4):
        desired = torch.stack([torch.stack([cin.gamma[s, c] * normed[b, c] + cin.beta[s, c] for c in range(3)]) for b in range(2)])
        torch.testing.assert_close(cin(x, s), desired)
    # per-example indices pick each example's own row
    out = cin(x, torch.tensor([1, 3]))
    torch.testing.assert_close(out[0], cin(x[:1], 1)[0])
    torch.testing.assert_close(out[1], cin(x[1:], 3)[0])


def test_cin_mixture_mixes_gamma_beta_convexly() -> None:
    cin = random_cin(2, 3, seed=1)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    a = [0.2, 0.5, 0.3]
    g = sum(a[i] * cin.gamma[i] for i in range(3))
    b = sum(a[i] * cin.beta[i] for i in range(3))
    desired = g[None, :, None, None] * naive_instance_norm(x) + b[None, :, None, None]
    torch.testing.assert_close(cin(x, a), desired)


def test_cin_gradcheck() -> None:
    torch.manual_seed(2)
    cin = ConditionalInstanceNorm2d(2, n_styles=2).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, g, b: _cin_fn(x, g, b), (x, cin.gamma, cin.beta))


def _cin_fn(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    return (w @ g)[:, :, None, None] * instance_norm(x) + (w @ b)[:, :, None, None]


@pytest.mark.parametrize(
    "style, match",
    [(5, "out of range"), ([0.5, 0.6, 0.0], "sum to 1"), ([-0.5, 1.5, 0.0], "non-negative"), ([1.0, 0.0], "shape"), (True, "bool"), (torch.tensor([0, 7]), "indices")],
)
def test_style_mixture_errors(style: object, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        style_mixture(style, 3)  # type: ignore[arg-type]


def test_network_shapes_range_and_paper_widths() -> None:
    net = StyleTransferNetwork(n_styles=3)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs[:3]] == [(3, 32, 9, 1), (32, 64, 3, 2), (64, 128, 3, 2)]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs[-3:]] == [(64, 3), (32, 3), (3, 9)]
    assert len(convs) == 3 + 10 + 3
    assert all(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules() if isinstance(m, (torch.nn.ReflectionPad2d, torch.nn.ZeroPad2d)))
    with torch.no_grad():
        y = net(torch.rand(2, 3, 32, 40), 1)
    assert y.shape == (2, 3, 32, 40) and 0 < float(y.min()) and float(y.max()) < 1
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 3, 30, 32), 0)


@pytest.mark.parametrize("padding, upsampling", [("zeros", "nearest"), ("reflect", "transposed")])
def test_ablation_switches(padding: str, upsampling: str) -> None:
    net = StyleTransferNetwork(2, width=0.25, padding=padding, upsampling=upsampling)  # type: ignore[arg-type]
    kinds = {type(m) for m in net.modules()}
    assert (torch.nn.ZeroPad2d in kinds) == (padding == "zeros")
    assert (torch.nn.ConvTranspose2d in kinds) == (upsampling == "transposed")
    assert net(torch.rand(1, 3, 16, 16), 0).shape == (1, 3, 16, 16)


def test_styles_differ_only_through_gamma_beta_and_new_styles_keep_old() -> None:
    torch.manual_seed(3)
    net = StyleTransferNetwork(2, width=0.25)
    with torch.no_grad():
        for p in net.cin_parameters():
            p.normal_()
    x = torch.rand(1, 3, 16, 16)
    bigger = net.with_new_styles(1)
    assert bigger.n_styles == 3
    torch.testing.assert_close(bigger(x, 1), net(x, 1))
    assert all(torch.equal(g[2], torch.ones_like(g[2])) for g in bigger.cin_parameters()[0::2])
    n_cin = sum(p.numel() for p in net.cin_parameters())
    n_all = sum(p.numel() for p in net.parameters())
    assert n_cin < 0.05 * n_all  # the per-style part is small (Sec. 3.1)


def test_checkerboard_energy_on_synthetic_images() -> None:
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    board = ((yy + xx) % 2).expand(1, 3, 32, 32)
    smooth = torch.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 80.0).expand(1, 3, 32, 32)
    noise = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert checkerboard_energy(board) == pytest.approx(1.0)
    assert checkerboard_energy(smooth) < 1e-3
    share = (32 * 32 - 28 * 28) / (32 * 32 - 1)  # bins on the lines |u| or |v| ∈ {1/4, 1/2}
    assert checkerboard_energy(noise) == pytest.approx(share, rel=0.3)
    period4 = ((yy // 2) % 2).expand(1, 3, 32, 32)
    assert checkerboard_energy(period4, periods=(4,)) > 0.8 and checkerboard_energy(period4, periods=(2,)) < 1e-6


def test_mixing_widget_rerenders_with_the_slider_mixture() -> None:
    """The notebook's live widget: sliders -> normalised mixture -> a new stylisation per setting."""
    ipywidgets = pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    from stylecore.plots import show_images
    from stylecore.widgets import ablation_view

    torch.manual_seed(4)
    net = StyleTransferNetwork(2, width=0.125, n_residual=1).eval()
    with torch.no_grad():
        for p in net.cin_parameters():
            p.normal_()
    image = torch.rand(1, 3, 16, 16)
    seen: list[torch.Tensor] = []

    def render(a: float, b: float):
        mix = torch.tensor([a, b]) / (a + b)
        with torch.no_grad():
            out = net(image, mix)
        seen.append(out)
        return show_images([out])

    sliders = {"a": ipywidgets.FloatSlider(value=1.0, min=0, max=1), "b": ipywidgets.FloatSlider(value=0.0, min=0, max=1)}
    box = ablation_view(lambda: plt.figure(), render, sliders, interactive=True)
    assert isinstance(box, ipywidgets.VBox)
    n0 = len(seen)
    sliders["b"].value = 1.0  # now a 50/50 mixture
    assert len(seen) == n0 + 1
    with torch.no_grad():
        torch.testing.assert_close(seen[-1], net(image, [0.5, 0.5]))
        assert not torch.allclose(seen[-1], net(image, 0))
    plt.close("all")


def test_explicit_channels_and_bias_free() -> None:
    net = StyleTransferNetwork(3, encoder_channels=(8, 6, 5), decoder_channels=(4, 2), n_residual=2, bias=False)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert not any(k.endswith("conv.bias") for k in shapes)
    assert shapes["encoder.0.conv.weight"] == (8, 3, 9, 9) and shapes["encoder.2.conv.weight"] == (5, 6, 3, 3)
    assert shapes["residuals.1.b.conv.weight"] == (5, 5, 3, 3)
    assert shapes["decoder.0.conv.weight"] == (4, 5, 3, 3) and shapes["decoder.2.conv.weight"] == (3, 2, 9, 9)
    assert net(torch.rand(1, 3, 8, 12), 2).shape == (1, 3, 8, 12)
    grown = net.with_new_styles(1)  # the explicit layout survives Fig. 6's copy
    assert grown.n_styles == 4 and not any(k.endswith("conv.bias") for k in grown.state_dict())
    # width= stays the shorthand: explicit paper counts build the same layout and config keys stay as before
    short, explicit = StyleTransferNetwork(2, width=0.5), StyleTransferNetwork(2, encoder_channels=(16, 32, 64), decoder_channels=(32, 16))
    assert {k: v.shape for k, v in short.state_dict().items()} == {k: v.shape for k, v in explicit.state_dict().items()}
    assert set(short.config) == {"n_styles", "width", "padding", "upsampling", "n_residual"}
    with pytest.raises(ValueError, match="encoder_channels"):
        StyleTransferNetwork(2, encoder_channels=(8, 8))


def test_checkpoint_from_before_explicit_channels_still_loads() -> None:
    """tests/data/cin_checkpoint_before_issue23.pt: a width-0.125 network saved by the code before issue 23."""
    from pathlib import Path

    from stylecore.cin.training import load_style_network

    path = Path(__file__).parents[1] / "data" / "cin_checkpoint_before_issue23.pt"
    saved = torch.load(path, weights_only=True)
    net = load_style_network(path, StyleTransferNetwork(2, width=0.125, n_residual=1))
    with torch.no_grad():
        # 3.2e-6 measured: the fused F.instance_norm vs the old explicit mean/var
        torch.testing.assert_close(net(saved["input"], 1), saved["output"], atol=3e-5, rtol=0)


def test_unnormalised_mixture_is_linear_in_gamma_beta() -> None:
    with pytest.raises(ValueError, match="convex=False"):
        style_mixture([1.0, 1.0], 2)
    w = style_mixture([2.0, -0.5], 2, convex=False)
    torch.testing.assert_close(w, torch.tensor([[2.0, -0.5]]))
    with pytest.raises(ValueError, match="finite"):
        style_mixture([float("nan"), 1.0], 2, convex=False)
    cin = ConditionalInstanceNorm2d(3, 2)
    with torch.no_grad():
        cin.gamma.normal_(); cin.beta.normal_()
    x = torch.randn(1, 3, 4, 4)
    desired = (2.0 * cin.gamma[0] - 0.5 * cin.gamma[1])[None, :, None, None] * naive_instance_norm(x) + (2.0 * cin.beta[0] - 0.5 * cin.beta[1])[None, :, None, None]
    torch.testing.assert_close(cin(x, [2.0, -0.5], convex=False), desired, atol=1e-5, rtol=1e-5)
