"""StyO: prompt strings and content-token indices (hand-written), IDL fine-tuning (falls, resumes bit-for-bit)."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from stylecore.nets.ldm import SD_SCHEDULER, build_components, ldm_from_components
from stylecore.styo.idl import REVIEW, SETTINGS, IDLConfig, Identifiers, build_prompt, content_token_indices, eval_denoising_loss, idl_losses, idl_prompts, prompt_segments, train_idl
from stylecore.weights import random_info


@pytest.fixture(scope="module")
def ldm():
    return ldm_from_components(build_components("tiny", seed=0), random_info("tiny LDM", 0))


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(0, 1, 64)
    src = torch.stack([x[None, :].expand(64, 64), x[:, None].expand(64, 64), 0.5 * torch.ones(64, 64)])[None]  # smooth ramps: easy to fit
    tgt = 1 - src
    aux = [torch.rand(1, 3, 64, 64, generator=gen) for _ in range(3)]
    return src, tgt, aux


def test_idl_and_inference_prompts() -> None:
    assert idl_prompts() == {
        "source": "a drawing with ak47 not aug style of sks not m4a1 portrait",
        "target": "a drawing with aug not ak47 style of m4a1 not sks portrait",
        "aux": "a drawing with ak47 not aug style of portrait",
        "stylised": "a drawing with aug not ak47 style of sks not m4a1 portrait",
    }


def test_positive_only_and_other_negators() -> None:
    pos = Identifiers(negator=None)
    assert build_prompt("source", pos) == "a drawing with ak47 style of sks portrait"
    assert build_prompt("aux", pos) == "a drawing with ak47 style of portrait"
    assert build_prompt("stylised", Identifiers(negator="without")) == "a drawing with aug without ak47 style of sks without m4a1 portrait"


def test_augmented_prompt_repeats_pairs() -> None:
    assert build_prompt("stylised", n_s=2, n_c=3) == (
        "a drawing with aug not ak47 aug not ak47 style of sks not m4a1 sks not m4a1 sks not m4a1 portrait"
    )
    with pytest.raises(ValueError, match="at least 1"):
        build_prompt("stylised", n_s=0)
    with pytest.raises(ValueError, match="distinct"):
        Identifiers(style_src="sks")


def test_content_indices_cover_every_sub_token(ldm) -> None:
    tok = ldm.tokenizer
    segs = prompt_segments("stylised")
    idx = content_token_indices(tok, segs)
    # <s> a drawing with | aug not ak 4 7 | style of | sks not m 4 a 1 | portrait </s>
    #  0  1    2      3     4   5   6 7 8    9    10   11  12 13..16       17
    assert idx == list(range(11, 18))
    ids = tok(build_prompt("stylised"), padding="max_length", max_length=77).input_ids
    assert [ids[i] for i in idx] == [48136, 783, 332, 275, 320, 272, 5352]  # sks, not, m4a1 (4 tokens), portrait
    assert content_token_indices(tok, segs, role="style") == list(range(4, 9))  # aug not ak47: ak47 is 3 tokens


def test_content_indices_with_repetition_and_aux(ldm) -> None:
    tok = ldm.tokenizer
    # style pair = 5 tokens, three times at 4..18; "style of" 19, 20; content pair = 6 tokens twice at 21..32; portrait 33
    assert content_token_indices(tok, prompt_segments("stylised", n_s=3, n_c=2)) == list(range(21, 34))
    assert content_token_indices(tok, prompt_segments("aux")) == [11]  # only "portrait"
    # <s> a drawing with ak 4 7 style of sks portrait: ak47 takes 4..6
    assert content_token_indices(tok, prompt_segments("source", Identifiers(negator=None))) == [9, 10]
    with pytest.raises(ValueError, match="lower n_s or n_c"):
        content_token_indices(tok, prompt_segments("stylised", n_s=20))


def test_idl_loss_falls_on_the_tiny_model(ldm, images) -> None:
    src, tgt, aux = images
    prompt = build_prompt("source")
    before = eval_denoising_loss(ldm.unet, ldm, src, prompt)
    unet, hist = train_idl(ldm, src, tgt, aux, config=IDLConfig(steps=25, lr=1e-3), progress=False)
    after = eval_denoising_loss(unet, ldm, src, prompt)
    assert after < 0.7 * before, (before, after)  # measured 0.2704 at 1 and 2 threads (issue 20)
    assert set(hist) == {"source", "target", "aux", "total"} and len(hist["total"]) == 25
    assert hist["total"][0] == pytest.approx(hist["source"][0] + hist["target"][0] + hist["aux"][0], rel=1e-6)  # Eq. 4: a sum
    assert all(torch.equal(a, b) for a, b in zip(ldm.unet.state_dict().values(), build_components("tiny", 0)["unet"].state_dict().values()))  # a copy was tuned


def test_idl_resumes_bit_for_bit_after_a_kill(ldm, images, tmp_path) -> None:
    src, tgt, aux = images
    cfg = IDLConfig(steps=6, lr=1e-3, checkpoint_every=3)
    straight, hist_a = train_idl(ldm, src, tgt, aux, config=cfg, folder=tmp_path / "a", progress=False)

    def kill(step: int, _losses: dict) -> None:
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_idl(ldm, src, tgt, aux, config=cfg, folder=tmp_path / "b", callback=kill, progress=False)
    steps_run = []
    resumed, hist_b = train_idl(ldm, src, tgt, aux, config=cfg, folder=tmp_path / "b", callback=lambda s, _: steps_run.append(s), progress=False)
    assert steps_run == [4, 5, 6]  # resumed from the checkpoint at step 3
    assert hist_a == hist_b
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    again = []
    train_idl(ldm, src, tgt, aux, config=cfg, folder=tmp_path / "b", callback=lambda s, _: again.append(s), progress=False)
    assert again == []  # a finished run is loaded, not retrained


def test_idl_without_aux_images_says_what_to_do(ldm, images) -> None:
    src, tgt, _ = images
    with pytest.raises(ValueError, match="auxiliary"):
        train_idl(ldm, src, tgt, [], config=IDLConfig(steps=1), progress=False)
    _, hist = train_idl(ldm, src, tgt, [], config=IDLConfig(steps=2, use_aux=False), progress=False)
    assert set(hist) == {"source", "target", "total"}


def test_settings_name_their_source_and_match_the_defaults() -> None:
    assert "arXiv 2303.03231v2" in REVIEW and "pseudo-lab.github.io/pseudodiffusers/docs/review/StyO.html" in REVIEW
    for name, (_, source) in SETTINGS.items():
        assert source.startswith(("Pseudo-Lab review", "the project's issue text", "not stated in any reachable source", "arXiv 2303.03231 abstract")), name
    cfg, ids = IDLConfig(), Identifiers()
    assert (cfg.steps, cfg.lr) == (SETTINGS["steps"][0], SETTINGS["lr"][0]) == (400, 1e-6)
    assert (ids.style_src, ids.style_tgt, ids.content_src, ids.content_tgt) == SETTINGS["key_tokens"][0]
    assert ids.negator == SETTINGS["negator"][0] == "not"
    assert (SETTINGS["n_s"][0], SETTINGS["n_c"][0], SETTINGS["aux_set"][0]) == (3, 1, 200)
    # the templates written with role names equal the prompts built from the tokens
    named = Identifiers("S_src", "S_tgt", "C_src", "C_tgt")
    for kind in ("source", "target", "aux", "stylised"):
        assert build_prompt(kind, named) == SETTINGS[f"{kind}_prompt"][0], kind
    for name in ("inject_fraction", "image_size", "sample_steps", "guidance", "key_roles", "tuned_parameters"):
        assert SETTINGS[name][1].startswith("not stated in any reachable source"), name


def test_augmented_training_prompts() -> None:
    """The review of arXiv v2: source trained on "a drawing with (S_src not S_tgt)·n_s style of (C_src not C_tgt)·n_c portrait"."""
    p = idl_prompts(n_s=3, n_c=1)
    assert p["source"] == "a drawing with ak47 not aug ak47 not aug ak47 not aug style of sks not m4a1 portrait"
    assert p["target"] == "a drawing with aug not ak47 aug not ak47 aug not ak47 style of m4a1 not sks portrait"
    assert p["aux"] == "a drawing with ak47 not aug style of portrait"  # not repeated (not stated in any reachable source)
    assert p["stylised"] == build_prompt("stylised", n_s=3, n_c=1)
    assert idl_prompts(n_s=1, n_c=1) == idl_prompts()


def test_idl_trains_on_the_configured_repetitions(ldm, images, monkeypatch) -> None:
    seen: list[list[str]] = []
    original = ldm.encode_prompt
    monkeypatch.setattr(ldm, "encode_prompt", lambda prompts: seen.append(list(prompts)) or original(prompts))
    src, tgt, aux = images
    _, h2 = train_idl(ldm, src, tgt, aux, config=IDLConfig(steps=1, lr=1e-3, n_s=2, n_c=3), progress=False)
    _, h1 = train_idl(ldm, src, tgt, aux, config=IDLConfig(steps=1, lr=1e-3), progress=False)
    assert seen == [[idl_prompts(n_s=2, n_c=3)[k] for k in ("source", "target", "aux")], [idl_prompts()[k] for k in ("source", "target", "aux")]]
    assert h2["source"] != h1["source"] and h2["aux"] == h1["aux"]  # same draws, same aux prompt; the source prompt differs
    assert IDLConfig(n_s=2).key() != IDLConfig().key()  # a checkpoint of one is never resumed as the other


def test_both_readings_of_the_augmented_prompt_are_settings() -> None:
    assert SETTINGS["augment_training"][0] is True and "at training time" in SETTINGS["augment_training"][1]
    other = SETTINGS["augment_training_other_reading"]
    assert other[0] is False and other[1].startswith("arXiv 2303.03231 abstract") and "for generating" in other[1]


class _Oracle(torch.nn.Module):
    """Knows z_0: from z_t and t it returns the exact ε, v = √ᾱ ε − √(1 − ᾱ) z_0 or z_0 (by hand, not the scheduler's helpers)."""

    def __init__(self, z0: torch.Tensor, abar: torch.Tensor, kind: str) -> None:
        super().__init__()
        self.z0, self.abar, self.kind = z0, abar, kind

    def forward(self, z_t, t, encoder_hidden_states=None):
        a = self.abar[t].view(-1, 1, 1, 1)
        eps = (z_t - a.sqrt() * self.z0) / (1 - a).sqrt()
        out = {"epsilon": eps, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * self.z0, "sample": self.z0}[self.kind]
        return type("Out", (), {"sample": out})()


def test_idl_losses_follow_the_schedulers_prediction_type() -> None:
    z0 = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    ctx = torch.zeros(3, 77, 32)
    kinds = ("epsilon", "v_prediction", "sample")
    for kind in kinds:
        sched = DDPMScheduler.from_config({**SD_SCHEDULER, "prediction_type": kind})
        for oracle in kinds:
            loss = idl_losses(_Oracle(z0, sched.alphas_cumprod, oracle), sched, z0, ctx, torch.Generator().manual_seed(1))
            if oracle == kind:
                assert loss.max() < 1e-8, (kind, loss)  # the oracle of the scheduler's own type: zero up to rounding
            else:
                assert loss.min() > 1e-3, (kind, oracle, loss)  # another type's exact prediction is the wrong target
    with pytest.raises(ValueError, match="prediction_type"):
        bad = DDPMScheduler.from_config(SD_SCHEDULER)
        bad.register_to_config(prediction_type="flow")
        idl_losses(_Oracle(z0, bad.alphas_cumprod, "sample"), bad, z0, ctx, torch.Generator())


def test_idl_rejects_a_training_prompt_over_77_tokens_naming_n_s_and_n_c(ldm, images) -> None:
    src, tgt, aux = images
    # "a drawing with" 3 + style pair 5 per repetition + "style of" 2 + content pair 6 per repetition + "portrait" 1 + <s>, </s>
    train_idl(ldm, src, tgt, aux, config=IDLConfig(steps=0, n_s=12, n_c=1), progress=False)  # 3 + 60 + 2 + 6 + 1 + 2 = 74: fits
    with pytest.raises(ValueError, match=r"lower IDLConfig.n_s \(now 13\) or n_c \(now 1\)"):
        train_idl(ldm, src, tgt, aux, config=IDLConfig(steps=0, n_s=13, n_c=1), progress=False)  # 79 positions
    with pytest.raises(ValueError, match=r"n_c \(now 10\)"):
        train_idl(ldm, src, tgt, aux, config=IDLConfig(steps=0, n_s=3, n_c=10), progress=False)  # 3 + 15 + 2 + 60 + 1 + 2 = 83


def test_damaged_idl_checkpoint_is_retrained_with_one_warning(ldm, images, tmp_path) -> None:
    from stylecore.cache import CacheWarning

    from ..faults import garble

    src, tgt, aux = images
    cfg = IDLConfig(steps=2, lr=1e-3, checkpoint_every=1)
    first, hist = train_idl(ldm, src, tgt, aux, config=cfg, folder=tmp_path, progress=False)
    (ckpt,) = tmp_path.glob("idl-*.pt")
    garble(ckpt)
    steps = []
    with pytest.warns(CacheWarning, match="IDL checkpoint") as record:
        again, hist2 = train_idl(ldm, src, tgt, aux, config=cfg, folder=tmp_path, callback=lambda s, _: steps.append(s), progress=False)
    assert len([w for w in record if issubclass(w.category, CacheWarning)]) == 1
    assert steps == [1, 2] and hist2 == hist  # retrained from the start, to the same result
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
