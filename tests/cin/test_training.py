"""Training loop: losses vs a naive formula, crops, loss decrease, bit-for-bit resume, cache."""

from __future__ import annotations

import pytest
import torch

from stylecore.cin.network import StyleTransferNetwork
from stylecore.cin.training import (
    TrainConfig,
    carry_over,
    evaluate_losses,
    evaluation_batches,
    load_style_network,
    perceptual_losses,
    random_crops,
    relative_change,
    style_grams,
    train_style_network,
)
from stylecore.nets.vgg import vgg19_features
from stylecore.weights import WeightsUnavailableError

LAYERS = ("relu1_2", "relu2_2")


@pytest.fixture(scope="module")
def extractor():
    return vgg19_features(LAYERS, weights="random", seed=0)


def _data() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    contents = [torch.rand(1, 3, 24, 28, generator=g), torch.rand(1, 3, 20, 20, generator=g)]
    styles = [torch.rand(1, 3, 16, 16, generator=g) ** 3, 1 - torch.rand(1, 3, 16, 16, generator=g) ** 3]
    return contents, styles


def _cfg(**kw) -> TrainConfig:
    base = dict(steps=8, batch_size=2, crop_size=16, content_layers=("relu2_2",), style_layers=LAYERS, style_weight=1e3, checkpoint_every=3, lr=1e-2)
    return TrainConfig(**(base | kw))


def _net(seed: int = 0) -> StyleTransferNetwork:
    torch.manual_seed(seed)
    return StyleTransferNetwork(2, width=0.125, n_residual=1)


def test_random_crops_are_crops_or_flipped_crops() -> None:
    img = torch.arange(3 * 10 * 12, dtype=torch.float32).reshape(1, 3, 10, 12)
    batch = random_crops([img], 6, 4, torch.Generator().manual_seed(0))
    assert batch.shape == (6, 3, 4, 4)
    for crop in batch:
        found = any(torch.equal(c, img[0, :, t : t + 4, l : l + 4]) for t in range(7) for l in range(9) for c in (crop, crop.flip(-1)))
        assert found
    with pytest.raises(ValueError, match="smaller than the crop size"):
        random_crops([img], 1, 11, torch.Generator())


def test_perceptual_losses_match_naive_formula(extractor) -> None:
    cfg = _cfg(content_weight=2.0, style_weight=3.0)
    out, content, style = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    fo, fc, fs = extractor(out), extractor(content), extractor(style)

    def gram(f: torch.Tensor) -> torch.Tensor:  # (C, H, W) -> (C, C), / (H W)
        c = f.shape[0]
        return torch.stack([torch.stack([(f[i] * f[j]).sum() for j in range(c)]) for i in range(c)]) / (f.shape[1] * f.shape[2])

    desired_c = 2.0 * ((fo["relu2_2"] - fc["relu2_2"]) ** 2).mean()
    desired_s = 3.0 * sum(torch.stack([((gram(fo[k][b]) - gram(fs[k][0])) ** 2).mean() for b in range(2)]).mean() for k in LAYERS)
    grams = {k: (fs[k].flatten(2) @ fs[k].flatten(2).transpose(1, 2)) / fs[k][0, 0].numel() for k in LAYERS}
    terms = perceptual_losses(extractor, out, content, grams, cfg)
    torch.testing.assert_close(terms["content"], desired_c)
    torch.testing.assert_close(terms["style"], desired_s, rtol=1e-4, atol=0)


def test_mean_form_is_the_papers_eqs_2_3_with_the_style_term_divided_by_units(extractor) -> None:
    """Dumoulin et al. 2017, Eqs. 2–3 with plain Grams: L_c = Σ_j ‖φ_j(p) − φ_j(c)‖² / U_j (the same number as the mean form),
    L_s = Σ_i ‖G(φ_i(p)) − G(φ_i(s))‖_F² / U_i (the mean form's layer term times U_i = C_i H_i W_i), per image, batch-averaged."""
    cfg = _cfg(content_weight=1.0, style_weight=1.0)
    out, content, style = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    fo, fc, fs = extractor(out), extractor(content), extractor(style)
    terms = perceptual_losses(extractor, out, content, style_grams(extractor, style, LAYERS), cfg)
    paper_c = sum(((fo["relu2_2"][b] - fc["relu2_2"][b]) ** 2).sum() / fo["relu2_2"][b].numel() for b in range(2)) / 2
    torch.testing.assert_close(terms["content"], paper_c, rtol=1e-5, atol=0)
    mean_form = 0.0
    for k in LAYERS:
        u = fo[k][0].numel()
        plain = [(f.flatten(1) @ f.flatten(1).T).double() for f in (fo[k][0], fo[k][1], fs[k][0])]  # (C, C), no normalisation
        paper_layer = sum(float(((plain[b] - plain[2]) ** 2).sum()) / u for b in range(2)) / 2
        mean_form += paper_layer / u
    assert float(terms["style"]) == pytest.approx(mean_form, rel=1e-4)
    assert float(terms["style"]) != pytest.approx(mean_form * fo[LAYERS[0]][0].numel(), rel=0.5)  # the extra 1/U_l is real


def test_evaluation_batches_are_fixed_crops_independent_of_training() -> None:
    contents, _ = _data()
    a = evaluation_batches(contents, 3, 2, 16, seed=7)
    b = evaluation_batches(contents, 3, 2, 16, seed=7)
    assert len(a) == 3 and all(x.shape == (2, 3, 16, 16) for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], evaluation_batches(contents, 1, 2, 16, seed=8)[0])
    with pytest.raises(ValueError, match="at least 1 evaluation batch"):
        evaluation_batches(contents, 0, 2, 16)


def test_evaluate_losses_is_the_mean_of_per_batch_losses(extractor) -> None:
    contents, styles = _data()
    cfg = _cfg(content_weight=2.0, style_weight=5.0)
    net = _net()
    batches = evaluation_batches(contents, 3, 2, 16)
    grams = style_grams(extractor, styles[1], LAYERS)
    naive = {"content": 0.0, "style": 0.0}
    for batch in batches:
        with torch.no_grad():
            out = net(batch, 1)
        fo, fc = extractor(out), extractor(batch)
        naive["content"] += 2.0 * float(((fo["relu2_2"] - fc["relu2_2"]) ** 2).mean()) / 3
        for k in LAYERS:
            f = fo[k].flatten(2)
            g = f @ f.transpose(1, 2) / f.shape[-1]  # (B, C, C) / (H W)
            naive["style"] += 5.0 * float(((g - grams[k]) ** 2).mean()) / 3
    actual = evaluate_losses(net, extractor, batches, grams, 1, cfg)
    assert actual["content"] == pytest.approx(naive["content"], rel=1e-5)
    assert actual["style"] == pytest.approx(naive["style"], rel=1e-4)
    assert actual["total"] == pytest.approx(actual["content"] + actual["style"])
    other = evaluate_losses(net, extractor, batches, style_grams(extractor, styles[0], LAYERS), 1, cfg)
    assert other["style"] != pytest.approx(actual["style"])  # the target Grams matter


def test_relative_change() -> None:
    assert relative_change(1.087, 1.0) == pytest.approx(0.087)
    assert relative_change(0.911, 1.0) == pytest.approx(-0.089)
    with pytest.raises(ValueError, match="zero reference"):
        relative_change(1.0, 0.0)


def test_training_reduces_style_loss(extractor, tmp_path) -> None:
    contents, styles = _data()
    res = train_style_network(_net(), _cfg(steps=40, styles_trained=(0,)), contents, styles, extractor, tmp_path, progress=False)
    s = res.history["style"]
    assert len(s) == 40 and sum(s[-5:]) < 0.7 * sum(s[:5])  # measured 0.544 (1 thread), 0.543 (2) (issue 20)
    assert set(res.history["style_index"]) == {0.0}
    batches = evaluation_batches(contents, 2, 2, 16)
    grams = style_grams(extractor, styles[0], LAYERS)
    trained = evaluate_losses(res.model, extractor, batches, grams, 0, _cfg())
    untrained = evaluate_losses(_net(), extractor, batches, grams, 0, _cfg())
    # held-out crops: the network learned, not the batches (measured 0.503 at 1 thread, 0.512 at 2: issue 20)
    assert trained["style"] < 0.7 * untrained["style"]


class Killed(RuntimeError):
    pass


def test_killed_run_resumes_to_the_same_weights(extractor, tmp_path) -> None:
    contents, styles = _data()
    full = train_style_network(_net(), _cfg(), contents, styles, extractor, tmp_path / "a", progress=False)

    def kill_at_7(step: int, terms: dict) -> None:
        if step == 7:
            raise Killed

    with pytest.raises(Killed):
        train_style_network(_net(), _cfg(), contents, styles, extractor, tmp_path / "b", callback=kill_at_7, progress=False)
    assert (tmp_path / "b" / full.key / "last.pt").exists() and not (tmp_path / "b" / full.key / "final.pt").exists()
    resumed = train_style_network(_net(), _cfg(), contents, styles, extractor, tmp_path / "b", progress=False)
    assert resumed.resumed_from == 6 and resumed.key == full.key
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.history["total"] == full.history["total"]
    assert not (tmp_path / "b" / full.key / "last.pt").exists()


def test_cache_reuses_finished_run_and_key_tracks_parameters(extractor, tmp_path) -> None:
    contents, styles = _data()
    first = train_style_network(_net(), _cfg(steps=3), contents, styles, extractor, tmp_path, progress=False)
    again = train_style_network(_net(), _cfg(steps=3), contents, styles, extractor, tmp_path, progress=False)
    assert again.from_cache and not first.from_cache
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))
    other = train_style_network(_net(), _cfg(steps=3, lr=2e-2), contents, styles, extractor, tmp_path, progress=False)
    assert other.key != first.key and not other.from_cache
    loaded = load_style_network(tmp_path / first.key / "final.pt", _net(seed=5))
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), loaded.state_dict().values()))
    # the same random weights at another input scale are another loss: another key
    caffe = vgg19_features(LAYERS, weights="random", seed=0, variant="caffe")
    assert torch.equal(caffe.body[0].weight, extractor.body[0].weight)
    at_caffe_scale = train_style_network(_net(), _cfg(steps=3), contents, styles, caffe, tmp_path, progress=False)
    assert at_caffe_scale.key != first.key and not at_caffe_scale.from_cache


def test_cin_only_training_changes_only_gamma_beta(extractor, tmp_path) -> None:
    contents, styles = _data()
    base = _net()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    res = train_style_network(_net(), _cfg(steps=3, trainable="cin", styles_trained=(1,)), contents, styles, extractor, tmp_path, progress=False)
    for k, v in res.model.state_dict().items():
        if k.endswith(("gamma", "beta")):
            assert torch.equal(v[0], before[k][0]) and not torch.equal(v[1], before[k][1]), k
        else:
            assert torch.equal(v, before[k]), k


def test_clear_errors(extractor, tmp_path) -> None:
    contents, styles = _data()
    with pytest.raises(ValueError, match="style images for a network with 2 styles"):
        train_style_network(_net(), _cfg(), contents, styles[:1], extractor, tmp_path, progress=False)
    with pytest.raises(ValueError, match="does not compute"):
        train_style_network(_net(), _cfg(style_layers=("relu3_1",)), contents, styles, extractor, tmp_path, progress=False)
    with pytest.raises(ValueError, match="multiple of 4"):
        _cfg(crop_size=15)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="not a loadable"):
        load_style_network(bad, _net())
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        load_style_network(tmp_path / "other.pt", _net())


class _Scaled(torch.nn.Module):
    """An extractor whose every layer is ``scales[l]`` times another's: the case carry_over is exact for."""

    def __init__(self, base, scales: dict[str, float]) -> None:
        super().__init__()
        self.base, self.scales, self.layers = base, scales, base.layers

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: self.scales[k] * v for k, v in self.base(x).items()}


def test_carried_over_weights_keep_the_balance_of_the_losses() -> None:
    """On a network with activations r_l × larger, the carried weights give r_c² × the original terms, both of them."""
    cfg = _cfg(content_layers=("relu2_2",), style_weight=1e-4)
    scales = {"relu1_2": 1 / 58.0, "relu2_2": 1 / 40.0}
    carried = carry_over(cfg, scales)
    assert carried.style_layer_weights == pytest.approx((40.0**-2 * 58.0**4, 40.0**-2 * 40.0**4))
    out, content, style = torch.rand(2, 3, 16, 16, dtype=torch.float64), torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    extractor64 = vgg19_features(LAYERS, weights="random", seed=0).double()
    big64 = _Scaled(extractor64, scales)
    before = perceptual_losses(extractor64, out, content.double(), style_grams(extractor64, style.double(), LAYERS), cfg)
    after = perceptual_losses(big64, out, content.double(), style_grams(big64, style.double(), LAYERS), carried)
    r2 = scales["relu2_2"] ** 2
    for term in ("content", "style"):
        torch.testing.assert_close(after[term], r2 * before[term], rtol=1e-9, atol=0)
    naive = perceptual_losses(big64, out, content.double(), style_grams(big64, style.double(), LAYERS), cfg)
    assert float(naive["style"] / naive["content"]) < 1e-3 * float(after["style"] / after["content"])  # without it the balance is lost
    with pytest.raises(ValueError, match="one weight per style layer"):
        _cfg(style_layer_weights=(1.0,))


def test_damaged_cached_network_and_checkpoint_are_retrained_with_one_warning(extractor, tmp_path) -> None:
    from stylecore.cache import CacheWarning

    from ..faults import garble, truncate

    contents, styles = _data()
    first = train_style_network(_net(), _cfg(steps=3), contents, styles, extractor, tmp_path, progress=False)
    final = tmp_path / first.key / "final.pt"
    garble(final)  # still loads with torch.load: only the CRC check notices
    with pytest.warns(CacheWarning, match="trained style network") as record:
        again = train_style_network(_net(), _cfg(steps=3), contents, styles, extractor, tmp_path, progress=False)
    assert len([w for w in record if issubclass(w.category, CacheWarning)]) == 1
    assert not again.from_cache and all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))
    assert train_style_network(_net(), _cfg(steps=3), contents, styles, extractor, tmp_path, progress=False).from_cache  # a valid file again
    # a truncated checkpoint of an unfinished run: trained from the start, to the same weights
    (tmp_path / first.key / "last.pt").write_bytes(final.read_bytes())
    final.unlink()
    truncate(tmp_path / first.key / "last.pt")
    with pytest.warns(CacheWarning, match="training checkpoint"):
        third = train_style_network(_net(), _cfg(steps=3), contents, styles, extractor, tmp_path, progress=False)
    assert third.resumed_from == 0 and all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), third.model.state_dict().values()))
