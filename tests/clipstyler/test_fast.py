"""AdaIN encoder/decoder in the upstream layout, AdaIN code, and the fast CLIPstyler training as the official train_fast.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from stylecore.nets.adain import AdaINCode, adain_decoder, adain_vgg, adaptive_instance_norm, load_adain_decoder, load_adain_encoder
from stylecore.clip_guidance import TINY_CLIP, load_clip
from stylecore.clipstyler.fast import FAST_AUTHORS_CODE, FAST_PAPER, FAST_PRESETS, FastClipStyler, load_fast_clipstyler, perspective_draws, train_fast_clipstyler
from stylecore.weights import WeightsUnavailableError

# naoto0804/pytorch-AdaIN net.py (= CLIPstyler fast_stylenet.py): conv weights sit at these Sequential indices.
UPSTREAM_DECODER_CONVS = [1, 5, 8, 11, 14, 18, 21, 25, 28]
UPSTREAM_VGG_CONVS = [0, 2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]
HP = replace(FAST_AUTHORS_CODE, crop_size=32, batch_size=2, n_draws=4)


@pytest.fixture(scope="module")
def clip():
    return load_clip(TINY_CLIP, weights="random")


def test_fast_presets_hold_suppl_a_and_train_fast_values() -> None:
    # Suppl. A: crop 224, batch 4, Adam lr 1×10⁻⁴, 16 perspective augmentations (N = 64), λ_d, λ_p, λ_c, λ_tv = 1, 10, 1, 1×10⁻⁴, τ 0.7;
    # Sec. 5.1: 200 steps. train_fast.py: --glob_weight 1 --clip_weight 10 --content_weight 1 --tv_weight 1e-4 --lr 1e-4
    # --lr_decay 5e-5 --max_iter 200 --batch_size 4 --crop_size 224 --thresh 0.7, range(16) draws, "a Photo", loss < thresh.
    for hp in (FAST_PAPER, FAST_AUTHORS_CODE):
        assert (hp.lambda_dir, hp.lambda_patch, hp.lambda_c, hp.lambda_tv) == (1, 10, 1, 1e-4)
        assert (hp.lr, hp.steps, hp.batch_size, hp.crop_size, hp.n_draws, hp.tau) == (1e-4, 200, 4, 224, 16, 0.7)
        assert hp.batch_size * hp.n_draws == 64  # "our total training patch number per iteration is N = 64"
    assert (FAST_PAPER.strict_rejection, FAST_PAPER.source_text) == (False, "Photo")
    assert (FAST_AUTHORS_CODE.strict_rejection, FAST_AUTHORS_CODE.source_text, FAST_AUTHORS_CODE.lr_decay) == (True, "a Photo", 5e-5)
    differing = {k for k in FAST_PAPER.__dataclass_fields__ if getattr(FAST_PAPER, k) != getattr(FAST_AUTHORS_CODE, k)}
    assert differing == {"strict_rejection", "source_text", "source"}
    assert "Suppl. A" in FAST_PAPER.source and "Sec. 5.1" in FAST_PAPER.source and "train_fast.py" in FAST_AUTHORS_CODE.source
    assert FAST_PRESETS == {"paper": FAST_PAPER, "authors_code": FAST_AUTHORS_CODE}


def test_state_dict_keys_are_the_upstream_ones() -> None:
    dec, vgg = adain_decoder().state_dict(), adain_vgg().state_dict()
    assert list(dec) == [f"{i}.{p}" for i in UPSTREAM_DECODER_CONVS for p in ("weight", "bias")]
    assert list(vgg) == [f"{i}.{p}" for i in UPSTREAM_VGG_CONVS for p in ("weight", "bias")]
    assert dec["1.weight"].shape == (256, 512, 3, 3) and dec["28.weight"].shape == (3, 64, 3, 3)
    assert vgg["0.weight"].shape == (3, 3, 1, 1) and vgg["51.weight"].shape == (512, 512, 3, 3)
    assert len(adain_vgg()) == 53 and load_adain_encoder(weights="random").body[-1].__class__ is nn.ReLU  # cut after relu4_1


def test_local_upstream_files_load_and_wrong_files_are_clear_errors(tmp_path, monkeypatch) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(42)
        dec_state, vgg_state = adain_decoder().state_dict(), adain_vgg().state_dict()
    torch.save(dec_state, tmp_path / "decoder.pth")
    torch.save(vgg_state, tmp_path / "vgg_normalised.pth")
    model = load_fast_clipstyler("pretrained", vgg_file=tmp_path / "vgg_normalised.pth", decoder_file=tmp_path / "decoder.pth")
    assert all(torch.equal(model.decoder.state_dict()[k], v) for k, v in dec_state.items())
    assert torch.equal(model.encoder.body[0].weight, vgg_state["0.weight"]) and model.decoder_info.source == "local file"
    assert "RANDOM" not in model.weights_label
    monkeypatch.setenv("STYLECORE_ADAIN_DECODER_WEIGHTS", str(tmp_path / "decoder.pth"))  # the environment override
    assert torch.equal(load_adain_decoder("pretrained")[0].state_dict()["1.weight"], dec_state["1.weight"])
    torch.save({"1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        load_adain_decoder("pretrained", tmp_path / "bad.pth")
    monkeypatch.delenv("STYLECORE_ADAIN_DECODER_WEIGHTS")
    monkeypatch.setenv("STYLECORE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsUnavailableError, match="STYLECORE_ADAIN_DECODER_WEIGHTS"):
        load_adain_decoder("pretrained")
    assert "RANDOM" in load_fast_clipstyler("random").weights_label


def test_random_encoder_keeps_activations_alive() -> None:
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    f = load_adain_encoder("random")(x)
    assert f.shape == (1, 512, 8, 8) and f.std() > 1e-2  # PyTorch's default init would leave relu4_1 ≈ 0


def test_adaptive_instance_norm_matches_naive() -> None:
    g = torch.Generator().manual_seed(1)
    x, mu, sd = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64), torch.randn(2, 3, 1, 1, generator=g, dtype=torch.float64), torch.rand(2, 3, 1, 1, generator=g, dtype=torch.float64)
    out = adaptive_instance_norm(x, mu, sd)
    for b in range(2):
        for c in range(3):
            v = x[b, c].flatten().tolist()
            m = sum(v) / len(v)
            s = (sum((a - m) ** 2 for a in v) / (len(v) - 1) + 1e-5) ** 0.5
            want = [(a - m) / s * sd[b, c, 0, 0].item() + mu[b, c, 0, 0].item() for a in v]
            assert out[b, c].flatten().tolist() == pytest.approx(want, abs=1e-12)


def test_adain_code_starts_at_reconstruction_and_trains_only_the_code() -> None:
    enc, (dec, _) = load_adain_encoder("random"), load_adain_decoder("random")
    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    code = AdaINCode(enc, dec, content)
    with torch.no_grad():
        assert torch.allclose(code(), dec(enc(content)).clamp(0, 1), atol=1e-4)
    assert [n for n, p in code.named_parameters() if p.requires_grad] == ["mean", "std"]


def test_perspective_draws_warp_the_whole_batch_once_per_draw() -> None:
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    d = perspective_draws(torch.cat([img, img]), 5)  # a batch of two identical images
    assert d.shape == (10, 3, 16, 16)
    for k in range(5):
        assert torch.equal(d[2 * k], d[2 * k + 1])  # one warp for the whole batch, as the official augment_trans(out_img)
    assert not torch.equal(d[0], d[2]) and not torch.equal(d[0], img[0])


def test_fast_training_official_schedule_decoder_only_loss_falls(clip) -> None:
    model = load_fast_clipstyler("random", seed=0)
    enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    dec = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    images = [torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(4)), torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(5))]
    r = train_fast_clipstyler(model, images, clip, "fire", HP, steps=12, progress=False)
    assert r.lr == pytest.approx([1e-4 / (1 + 5e-5 * i) for i in range(12)], rel=1e-9)  # train_fast.py adjust_learning_rate
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in enc.items())
    assert any(not torch.equal(v, model.decoder.state_dict()[k]) for k, v in dec.items())
    total = r.history["total"]
    assert sum(total[-4:]) / 4 < sum(total[:4]) / 4, total
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    with pytest.raises(ValueError, match="crop_size"):
        train_fast_clipstyler(model, [torch.rand(1, 3, 16, 16)], clip, "fire", HP, steps=1, progress=False)
    with pytest.raises(ValueError, match="AdaINEncoder"):
        FastClipStyler(nn.Identity(), model.decoder)  # type: ignore[arg-type]


def test_fast_checkpoint_resumes_to_the_same_history(clip, tmp_path) -> None:
    images = [torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(3))]
    kw = dict(hp=replace(HP, batch_size=1, n_draws=2), progress=False, seed=2)
    full = train_fast_clipstyler(load_fast_clipstyler("random"), images, clip, "fire", steps=3, **kw)
    ckpt = tmp_path / "fast.pt"
    train_fast_clipstyler(load_fast_clipstyler("random"), images, clip, "fire", steps=2, checkpoint=ckpt, checkpoint_every=1, **kw)
    resumed = train_fast_clipstyler(load_fast_clipstyler("random"), images, clip, "fire", steps=3, checkpoint=ckpt, checkpoint_every=1, **kw)
    assert resumed.history["total"] == pytest.approx(full.history["total"], rel=1e-4)
    assert resumed.lr == pytest.approx(full.lr) and torch.allclose(resumed.output, full.output, atol=1e-5)
