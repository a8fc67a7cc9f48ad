"""FCC attention processors: M against a naive softmax, injection of chosen columns only, one per layer, sampling."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from stylecore.diffusion import build_components, ldm_from_components
from stylecore.fcc import AttentionStore, FCCControl, InjectingAttnProcessor, RecordingAttnProcessor, cross_attention_layers, fcc_processors, sample_styo
from stylecore.styo import build_prompt, content_token_indices, prompt_segments
from stylecore.weights import random_info


@pytest.fixture(scope="module")
def ldm():
    return ldm_from_components(build_components("tiny", seed=0), random_info("tiny LDM", 0))


@pytest.fixture()
def layer():
    torch.manual_seed(0)
    return Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8).eval()


def _inputs():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 5, 16, generator=gen), torch.randn(2, 7, 12, generator=gen)  # z: (B, Q, C), r: (B, K, C_r)


def _naive_maps(layer: Attention, z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """M[b, h] = softmax(Q_h K_hᵀ / √d) with explicit per-head slicing, (B, heads, Q, K)."""
    q, k = layer.to_q(z), layer.to_k(r)
    d = q.shape[-1] // layer.heads
    out = torch.empty(z.shape[0], layer.heads, z.shape[1], r.shape[1])
    for b in range(z.shape[0]):
        for h in range(layer.heads):
            qh, kh = q[b, :, h * d:(h + 1) * d], k[b, :, h * d:(h + 1) * d]
            out[b, h] = torch.softmax(qh @ kh.T / d**0.5, dim=-1)
    return out


@torch.no_grad()
def test_recording_processor_matches_sdpa_and_naive_maps(layer) -> None:
    z, r = _inputs()
    want = AttnProcessor2_0()(layer, z, r)
    store = AttentionStore(keep_last=True)
    got = RecordingAttnProcessor("x", store)(layer, z, r)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(store.last["x"], _naive_maps(layer, z, r), atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_injection_changes_only_the_chosen_columns_of_the_stylised_row(layer) -> None:
    z, r = _inputs()
    before = _naive_maps(layer, z, r)
    idx = [2, 5]
    store = AttentionStore(keep_last=True)
    out = InjectingAttnProcessor("x", FCCControl(indices=idx, pairs=[(0, 1)], active=True), store)(layer, z, r)
    after = store.last["x"]
    torch.testing.assert_close(after[0], before[0])  # the source row is untouched
    torch.testing.assert_close(after[1][..., idx], before[0][..., idx])  # M*_{:, j} = M_src_{:, j}, j in I
    rest = [j for j in range(7) if j not in idx]
    torch.testing.assert_close(after[1][..., rest], before[1][..., rest])  # everything else is the stylised branch's own
    assert not torch.allclose(after[1][..., idx], before[1][..., idx])
    # the output is M* V, computed by hand
    v = layer.to_v(r)
    d = v.shape[-1] // layer.heads
    heads = [after[1, h] @ v[1, :, h * d:(h + 1) * d] for h in range(layer.heads)]
    torch.testing.assert_close(out[1], layer.to_out[0](torch.cat(heads, -1)), atol=1e-5, rtol=1e-5)
    inactive = InjectingAttnProcessor("x", FCCControl(indices=idx, pairs=[(0, 1)], active=False))(layer, z, r)
    torch.testing.assert_close(inactive, AttnProcessor2_0()(layer, z, r), atol=1e-5, rtol=1e-5)


def test_one_processor_per_cross_attention_layer(ldm) -> None:
    unet = ldm.unet
    cross = [n for n, m in unet.named_modules() if isinstance(m, Attention) and m.is_cross_attention]
    before = dict(unet.attn_processors)
    with fcc_processors(unet, FCCControl()) as ours:
        now = unet.attn_processors
        assert sorted(ours) == sorted(f"{n}.processor" for n in cross) == sorted(cross_attention_layers(unet))
        assert len(cross) == 7 and all(n.endswith("attn2") for n in cross)  # tiny config: 2 down + 1 mid + 4 up
        assert all(isinstance(now[n], InjectingAttnProcessor) and now[n].name == n for n in ours)
        assert len({id(p) for p in ours.values()}) == len(ours)
        assert all(now[n] is before[n] for n in before if n not in ours)  # self-attention keeps its processor
    assert all(unet.attn_processors[n] is before[n] for n in before)  # restored on exit


def test_identical_prompts_with_all_indices_injected_give_identical_branches(ldm) -> None:
    prompt = build_prompt("source")
    kw = dict(steps=4, size=64, guidance=7.5, seed=3, progress=False)
    on = sample_styo(ldm, ldm.unet, prompt, prompt, list(range(77)), fcc=True, inject_fraction=1.0, **kw)
    off = sample_styo(ldm, ldm.unet, prompt, prompt, list(range(77)), fcc=False, **kw)
    torch.testing.assert_close(on["stylised"], on["source"], atol=1e-6, rtol=0)
    torch.testing.assert_close(on["stylised"], off["stylised"], atol=1e-5, rtol=0)


def test_fcc_changes_the_stylised_branch_and_records_injected_maps(ldm) -> None:
    src, sty = build_prompt("source"), build_prompt("stylised")
    idx = content_token_indices(ldm.tokenizer, prompt_segments("stylised"))
    kw = dict(steps=4, size=64, seed=3, progress=False)
    store = AttentionStore()
    on = sample_styo(ldm, ldm.unet, src, sty, idx, fcc=True, inject_fraction=1.0, store=store, **kw)
    off = sample_styo(ldm, ldm.unet, src, sty, idx, fcc=False, **kw)
    torch.testing.assert_close(on["source"], off["source"])  # the source branch never changes
    assert not torch.allclose(on["stylised"], off["stylised"])
    maps = store.maps(row=3)  # the stylised conditional row
    torch.testing.assert_close(maps[..., idx], store.maps(row=2)[..., idx])  # injected at every step: equal to the source branch's
    assert maps.shape == (8, 8, 77)
    with pytest.raises(ValueError, match="inject_fraction"):
        sample_styo(ldm, ldm.unet, src, sty, idx, inject_fraction=1.5, **kw)


def test_fcc_copies_each_content_word_from_its_own_position_in_the_source(ldm) -> None:
    """Prompts whose content tokens sit elsewhere (augmented vs plain; positive-only keys of different lengths)."""
    sty_segs = prompt_segments("stylised", n_s=3, n_c=1)
    idx = content_token_indices(ldm.tokenizer, sty_segs)
    src_idx = content_token_indices(ldm.tokenizer, prompt_segments("source"))
    assert idx != src_idx and len(idx) == len(src_idx)
    kw = dict(steps=2, size=64, seed=3, progress=False, fcc=True, inject_fraction=1.0)
    with pytest.raises(ValueError, match="source_indices"):  # the plain source prompt has other tokens at the stylised positions
        sample_styo(ldm, ldm.unet, build_prompt("source"), build_prompt("stylised", n_s=3, n_c=1), idx, **kw)
    store = AttentionStore()
    sample_styo(ldm, ldm.unet, build_prompt("source"), build_prompt("stylised", n_s=3, n_c=1), idx, store=store, source_indices=src_idx, **kw)
    torch.testing.assert_close(store.maps(row=3)[..., idx], store.maps(row=2)[..., src_idx])  # word by word
    with pytest.raises(ValueError, match="source_indices"):  # same count, wrong words
        sample_styo(ldm, ldm.unet, build_prompt("source"), build_prompt("stylised", n_s=3, n_c=1), idx, source_indices=[i - 1 for i in src_idx], **kw)
    sample_styo(ldm, ldm.unet, build_prompt("source"), build_prompt("stylised", n_s=3, n_c=1), idx, steps=2, size=64, fcc=False, progress=False)  # no copy, no check
