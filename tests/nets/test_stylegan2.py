"""StyleGAN2: rosinality's state-dict layout, checkpoint loading, latent spaces, ops against naive formulas."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from stylecore.data import sha256_file
from stylecore.nets.stylegan2 import CONFIGS, Generator, ModulatedConv2d, fused_leaky_relu, load_stylegan2, stylespace_dims, truncate, upfirdn2d
from stylecore.weights import WeightsUnavailableError

# StyleCLIP mapper/training/train_utils.py: STYLESPACE_DIMENSIONS of the FFHQ 1024 generator.
STYLECLIP_STYLESPACE_DIMENSIONS = [512] * 15 + [256] * 3 + [128] * 3 + [64] * 3 + [32] * 2


def rosinality_keys(size: int, n_mlp: int) -> set[str]:
    """The state-dict keys of rosinality's Generator, written out from its model.py naming rules."""
    keys = {f"style.{i}.{p}" for i in range(1, n_mlp + 1) for p in ("weight", "bias")} | {"input.input"}

    def styled(prefix: str, up: bool) -> set[str]:
        k = {f"{prefix}.conv.weight", f"{prefix}.conv.modulation.weight", f"{prefix}.conv.modulation.bias", f"{prefix}.noise.weight", f"{prefix}.activate.bias"}
        return k | ({f"{prefix}.conv.blur.kernel"} if up else set())

    def rgb(prefix: str, up: bool) -> set[str]:
        k = {f"{prefix}.conv.weight", f"{prefix}.conv.modulation.weight", f"{prefix}.conv.modulation.bias", f"{prefix}.bias"}
        return k | ({f"{prefix}.upsample.kernel"} if up else set())

    keys |= styled("conv1", False) | rgb("to_rgb1", False)
    log_size = int(math.log2(size))
    for j in range(log_size - 2):
        keys |= styled(f"convs.{2 * j}", True) | styled(f"convs.{2 * j + 1}", False) | rgb(f"to_rgbs.{j}", True)
    keys |= {f"noises.noise_{k}" for k in range((log_size - 2) * 2 + 1)}
    return keys


@pytest.fixture(scope="module")
def tiny() -> Generator:
    torch.manual_seed(0)
    return Generator(**CONFIGS["tiny-64"]).eval()


def test_state_dict_has_exactly_rosinalitys_keys() -> None:
    with torch.device("meta"):
        g = Generator(1024)
    assert set(g.state_dict()) == rosinality_keys(1024, 8)
    sd = g.state_dict()
    assert sd["convs.15.conv.weight"].shape == (1, 32, 32, 3, 3) and sd["to_rgbs.7.conv.modulation.weight"].shape == (32, 512)
    assert sd["noises.noise_16"].shape == (1, 1, 1024, 1024) and sd["input.input"].shape == (1, 512, 4, 4)


def test_stylespace_at_1024_matches_the_paper_counts() -> None:
    dims = stylespace_dims(1024)
    assert dims == STYLECLIP_STYLESPACE_DIMENSIONS
    assert len(dims) == 26 and sum(dims) == 9088
    assert sum(d for i, d in enumerate(dims) if i % 3 != 1) == 6048  # toRGB layers are 1, 4, 7, …
    with torch.device("meta"):
        g = Generator(1024)
    assert g.n_latent == 18 and [idx for *_, idx in g.style_layers()][:8] == [0, 1, 1, 2, 3, 3, 4, 5]


def _save_rosinality_checkpoint(path, g: Generator, latent_avg: torch.Tensor | None, args: bool = False) -> None:
    ckpt = {"g_ema": {k: v.clone() for k, v in g.state_dict().items()}}
    if latent_avg is not None:
        ckpt["latent_avg"] = latent_avg
    if args:
        ckpt["g"] = ckpt["g_ema"]
        ckpt["args"] = argparse.Namespace(size=32, lr=0.002)
    torch.save(ckpt, path)


def test_checkpoint_loads_every_tensor_equal(tmp_path) -> None:
    torch.manual_seed(3)
    src = Generator(**CONFIGS["tiny-64"])
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()  # not the init values of seed 0, so a load that did nothing would fail
    avg = torch.randn(64)
    path = tmp_path / "ckpt.pt"
    _save_rosinality_checkpoint(path, src, avg)
    g, w_avg, info = load_stylegan2("tiny-64", weights="pretrained", local_file=path)
    for k, v in src.state_dict().items():
        assert torch.equal(g.state_dict()[k], v), k
    assert torch.equal(w_avg, avg.view(1, -1))
    assert info.source == "local file" and info.sha256 == sha256_file(path) and info.pretrained


def test_training_checkpoint_without_latent_avg_falls_back_to_mean_latent(tmp_path) -> None:
    src = Generator(**CONFIGS["tiny-64"])
    path = tmp_path / "train.pt"
    _save_rosinality_checkpoint(path, src, None, args=True)
    g, w_avg, _ = load_stylegan2("tiny-64", local_file=path, seed=5)
    torch.manual_seed(5)
    assert torch.allclose(w_avg, g.mean_latent(4096))
    assert w_avg.shape == (1, 64)


def test_loader_errors_are_clear(tmp_path) -> None:
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load_stylegan2("tiny-64", local_file=tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(WeightsUnavailableError, match="g_ema"):
        load_stylegan2("tiny-64", local_file=tmp_path / "other.pt")
    torch.save({"g_ema": Generator(64, 64, 2, channels={4: 8, 8: 8, 16: 8, 32: 8, 64: 8}).state_dict()}, tmp_path / "wrong.pt")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        load_stylegan2("tiny-64", local_file=tmp_path / "wrong.pt")
    with pytest.raises(WeightsUnavailableError, match="offline test configuration"):
        load_stylegan2("tiny-64", weights="pretrained")
    with pytest.raises(ValueError, match="unknown generator config"):
        load_stylegan2("ffhq-512")


def test_paper_generator_without_a_file_is_random_or_an_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("STYLECORE_STYLEGAN2_WEIGHTS", raising=False)
    with pytest.raises(WeightsUnavailableError, match="drive.google.com"):
        load_stylegan2("ffhq-1024", weights="pretrained")


def test_z_w_wplus_and_stylespace_inputs_agree(tiny) -> None:
    torch.manual_seed(1)
    z = torch.randn(2, 64)
    with torch.no_grad():
        w = tiny.get_latent(z)
        a, _ = tiny([z], randomize_noise=False)
        b, _ = tiny([w], input_is_latent=True, randomize_noise=False)
        wp = w.unsqueeze(1).repeat(1, tiny.n_latent, 1)
        c, lat = tiny([wp], input_is_latent=True, randomize_noise=False, return_latents=True)
        s = tiny.w_to_s(wp)
        d = tiny.synthesis(s, tiny.fixed_noise())
    assert a.shape == (2, 3, 64, 64) and torch.equal(lat, wp)
    assert torch.allclose(a, b) and torch.allclose(b, c) and torch.allclose(c, d, atol=1e-6)
    assert [t.shape[1] for t in s] == stylespace_dims(**{k: v for k, v in CONFIGS["tiny-64"].items() if k not in ("n_mlp",)})
    # s is the modulation's affine map of w: s_k = A_k w + b_k (bias_init 1)
    _, conv, idx = tiny.style_layers()[4]
    mod = conv.modulation
    assert torch.allclose(s[4], w @ (mod.weight * mod.scale).T + mod.bias * mod.lr_mul, atol=1e-6)
    # W+ layers are used: changing only latent 5 changes the image, but not s of layers reading other latents
    wp2 = wp.clone()
    wp2[:, 5] += 1
    s2 = tiny.w_to_s(wp2)
    changed = [i for i in range(len(s)) if not torch.equal(s[i], s2[i])]
    assert changed == [i for i, (*_, k) in enumerate(tiny.style_layers()) if k == 5]


def test_randomize_noise_changes_image_and_fixed_noise_does_not(tiny) -> None:
    w = tiny.mean_latent(64)
    with torch.no_grad():
        tiny.conv1.noise.weight.fill_(0.5)
        a = tiny([w], input_is_latent=True)[0]
        b = tiny([w], input_is_latent=True)[0]
        c = tiny([w], input_is_latent=True, randomize_noise=False)[0]
        d = tiny([w], input_is_latent=True, randomize_noise=False)[0]
        tiny.conv1.noise.weight.fill_(0.0)
    assert not torch.allclose(a, b) and torch.equal(c, d)


def test_truncation(tiny) -> None:
    z = torch.randn(3, 64)
    w_avg = torch.randn(1, 64)
    w = tiny.get_latent(z)
    assert torch.allclose(truncate(w, w_avg, 0.7), w_avg + 0.7 * (w - w_avg))
    with torch.no_grad():
        img0, lat = tiny([z], truncation=0.0, truncation_latent=w_avg, randomize_noise=False, return_latents=True)
    assert torch.allclose(lat, w_avg.expand(3, -1).unsqueeze(1).expand(-1, tiny.n_latent, -1))
    wp = tiny.w_plus(w)
    cut = truncate(wp, w_avg, 0.5, cutoff=4)
    assert torch.allclose(cut[:, :4], w_avg + 0.5 * (wp[:, :4] - w_avg)) and torch.equal(cut[:, 4:], wp[:, 4:])
    with pytest.raises(ValueError, match="truncation_latent"):
        tiny([z], truncation=0.7)
    with pytest.raises(ValueError, match="W\\+ latents must have shape"):
        tiny.w_plus(torch.zeros(1, 3, 64))


def naive_upfirdn(x: torch.Tensor, k: torch.Tensor, up: int, down: int, pad: tuple[int, int]) -> torch.Tensor:
    """Loop version of the definition: zero-insert, pad/crop, true convolution, keep every down-th sample."""
    h, w = x.shape
    u = torch.zeros(h * up, w * up)
    u[::up, ::up] = x
    p0, p1 = pad
    big = torch.zeros(h * up + 2 * max(p0, 0) + 2 * max(p1, 0), w * up + 2 * max(p0, 0) + 2 * max(p1, 0))
    big[max(p0, 0) : max(p0, 0) + h * up, max(p0, 0) : max(p0, 0) + w * up] = u
    big = big[max(-p0, 0) : max(p0, 0) + h * up + max(p1, 0) - max(-p1, 0), max(-p0, 0) : max(p0, 0) + w * up + max(p1, 0) - max(-p1, 0)]
    kh, kw = k.shape
    out = torch.zeros(big.shape[0] - kh + 1, big.shape[1] - kw + 1)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = sum(big[i + a, j + b] * k[kh - 1 - a, kw - 1 - b] for a in range(kh) for b in range(kw))
    return out[::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 2, (1, 1)), (1, 1, (-1, 0))])
def test_upfirdn2d_matches_the_definition(up, down, pad) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 1, 5, 6)
    k = torch.randn(3, 3)  # not symmetric: the flip matters
    assert torch.allclose(upfirdn2d(x, k, up, down, pad)[0, 0], naive_upfirdn(x[0, 0], k, up, down, pad), atol=1e-5)


def test_fused_leaky_relu() -> None:
    x, b = torch.randn(2, 3, 4, 4), torch.randn(3)
    y = x + b.view(1, 3, 1, 1)
    assert torch.allclose(fused_leaky_relu(x, b), torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2))


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_equals_per_sample_weight_formula(upsample) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 5, 3, 8, upsample=upsample)
    x, s = torch.randn(2, 4, 6, 6), torch.rand(2, 4) + 0.5
    out = conv(x, s)
    for b in range(2):  # Karras et al. 2020, Eq. 1 and 3: w' = s·w, w'' = w' / sqrt(Σ w'² + ε)
        w1 = conv.scale * conv.weight[0] * s[b].view(1, 4, 1, 1)
        w2 = w1 / torch.sqrt(w1.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
        if upsample:
            ref = conv.blur(F.conv_transpose2d(x[b : b + 1], w2.transpose(0, 1), stride=2))
        else:
            ref = F.conv2d(x[b : b + 1], w2, padding=1)
        assert torch.allclose(out[b : b + 1], ref, atol=1e-5)
    assert out.shape[-1] == (12 if upsample else 6)


def test_fused_leaky_relu_on_wplus_slices_uses_last_dim() -> None:
    x, b = torch.randn(2, 4, 6), torch.randn(6)  # the mapper's EqualLinear on (B, 4, D)
    y = x + b.view(1, 1, 6)
    assert torch.allclose(fused_leaky_relu(x, b), torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2))


def test_auto_config_is_the_papers_generator_on_a_gpu_or_with_a_file_and_tiny_on_a_cpu():
    from stylecore.nets.stylegan2 import choose_config

    assert choose_config("auto", "cuda")[0] == "ffhq-1024"
    assert choose_config("auto", torch.device("cpu"), "/weights/stylegan2-ffhq-config-f.pt")[0] == "ffhq-1024"
    config, why = choose_config("auto", "cpu")
    assert config == "tiny-64" and "-p generator_config ffhq-1024" in why
    assert choose_config("ffhq-1024", "cpu")[0] == "ffhq-1024"  # an explicit choice is kept
    with pytest.raises(ValueError, match="use 'auto' or one of"):
        choose_config("ffhq-512", "cpu")
