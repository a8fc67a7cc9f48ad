"""StyO's Fine-grained Content Controller: cross-attention control as diffusers attention processors.

A cross-attention layer computes Attn(z, r) = M(z, r) V with M = softmax(Q Kᵀ / √d), Q from the
latent z and K, V from the prompt features r (Li et al. 2023, §FCC; after Hertz et al. 2022,
prompt-to-prompt). FCC runs the *source* prompt's branch, started from the source photo (DDIM
inversion, :func:`ddim_invert`, or forward diffusion), beside the *stylised* branch from the same
latent, and replaces the stylised branch's maps at the content-token indices I with the
source branch's:

    M*_{:, j} = M_src_{:, j}  for j ∈ I,   M*_{:, j} = M_sty_{:, j}  otherwise

during the first ``inject_fraction`` of the denoising steps. diffusers' default processor
(scaled-dot-product attention) never forms M, so :class:`RecordingAttnProcessor` computes it
explicitly and :class:`InjectingAttnProcessor` edits it; :func:`fcc_processors` installs one of
them on every cross-attention layer (``attn2``) of a UNet and leaves self-attention alone.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["SOURCE_BRANCHES", "AttentionStore", "FCCControl", "InjectingAttnProcessor", "RecordingAttnProcessor", "cross_attention_layers", "ddim_invert",
           "fcc_processors", "sample_styo"]


@dataclass
class FCCControl:
    """What the injecting processors do now: M_dst[..., indices] ← M_src[..., source_indices] for each (src, dst) row pair.

    ``source_indices`` (default: ``indices``) are the same words' positions in the source prompt, for
    prompts whose content tokens sit at other positions (e.g. key tokens of different lengths).
    """

    indices: list[int] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (source row, stylised row) in the batch
    active: bool = False
    source_indices: list[int] | None = None


@dataclass
class AttentionStore:
    """Head-averaged cross-attention maps summed over the steps while ``recording``: layer name -> (B, Q, 77)."""

    recording: bool = True
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, torch.Tensor] = field(default_factory=dict)  # (B, heads, Q, 77) of the latest call, when keep_last
    keep_last: bool = False

    def add(self, name: str, probs: torch.Tensor) -> None:
        if self.keep_last:
            self.last[name] = probs.detach()
        if self.recording:
            mean = probs.detach().float().mean(1)
            self.sums[name] = self.sums[name] + mean if name in self.sums else mean
            self.counts[name] = self.counts.get(name, 0) + 1

    def maps(self, row: int, side: int | None = None) -> torch.Tensor:
        """Average over layers (and steps) of row ``row``'s maps, resized to ``side``², as (side, side, 77)."""
        if not self.sums:
            raise RuntimeError("no attention maps were recorded")
        sides = {name: int(round(s.shape[1] ** 0.5)) for name, s in self.sums.items()}
        side = side or max(sides.values())
        total = 0
        for name, s in self.sums.items():
            m = (s[row] / self.counts[name]).T.reshape(1, -1, sides[name], sides[name])  # (1, 77, q, q)
            total = total + torch.nn.functional.interpolate(m, size=(side, side), mode="bilinear", align_corners=False)
        return (total / len(self.sums))[0].permute(1, 2, 0)


class RecordingAttnProcessor:
    """Attention with the map M materialised: out = to_out(M V), M = softmax(Q Kᵀ · scale); M goes to a store."""

    def __init__(self, name: str, store: AttentionStore | None = None) -> None:
        self.name = name
        self.store = store

    def edit(self, probs: torch.Tensor) -> torch.Tensor:
        """Hook on M, shaped (B, heads, Q, K); the recording processor keeps M unchanged."""
        return probs

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        four_d = hidden_states.ndim == 4
        if four_d:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch = hidden_states.shape[0]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))  # (B·heads, Q, d)
        k = attn.head_to_batch_dim(attn.to_k(context))  # (B·heads, K, d)
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(q, k, mask)  # M = softmax(Q Kᵀ · scale), (B·heads, Q, K)
        probs = probs.view(batch, attn.heads, *probs.shape[1:])
        probs = self.edit(probs)
        if self.store is not None:
            self.store.add(self.name, probs)
        out = torch.bmm(probs.reshape(batch * attn.heads, *probs.shape[2:]), v)  # M V
        out = attn.to_out[1](attn.to_out[0](attn.batch_to_head_dim(out)))
        if four_d:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


class InjectingAttnProcessor(RecordingAttnProcessor):
    """FCC's attention control: while ``control.active``, M_dst[..., I] ← M_src[..., I] for each (src, dst) pair."""

    def __init__(self, name: str, control: FCCControl, store: AttentionStore | None = None) -> None:
        super().__init__(name, store)
        self.control = control

    def edit(self, probs: torch.Tensor) -> torch.Tensor:
        ctl = self.control
        if not ctl.active or not ctl.indices or not ctl.pairs:
            return probs
        idx = torch.as_tensor(ctl.indices, device=probs.device)
        src_idx = idx if ctl.source_indices is None else torch.as_tensor(ctl.source_indices, device=probs.device)
        probs = probs.clone()
        for src, dst in ctl.pairs:
            probs[dst, :, :, idx] = probs[src, :, :, src_idx]
        return probs


def cross_attention_layers(unet: nn.Module) -> list[str]:
    """Processor names (``…attn2.processor``) of the UNet's cross-attention layers, in module order."""
    names = []
    for name in unet.attn_processors:
        module = unet.get_submodule(name.removesuffix(".processor"))
        if getattr(module, "is_cross_attention", False):
            names.append(name)
    return names


@contextlib.contextmanager
def fcc_processors(unet: nn.Module, control: FCCControl | None = None, store: AttentionStore | None = None) -> Iterator[dict[str, RecordingAttnProcessor]]:
    """Install one processor per cross-attention layer (injecting with ``control``, else recording); restore on exit."""
    original = dict(unet.attn_processors)
    ours: dict[str, RecordingAttnProcessor] = {
        name: InjectingAttnProcessor(name, control, store) if control is not None else RecordingAttnProcessor(name, store)
        for name in cross_attention_layers(unet)
    }
    unet.set_attn_processor({**original, **ours})
    try:
        yield ours
    finally:
        unet.set_attn_processor(original)


SOURCE_BRANCHES = ("inversion", "forward", "generated")


@torch.no_grad()
def ddim_invert(unet: nn.Module, scheduler_config: dict[str, Any], z0: torch.Tensor, context: torch.Tensor, steps: int,
                progress: bool = False) -> torch.Tensor:
    """DDIM inversion (Song et al. 2021, Eq. 13 run backwards; Dhariwal & Nichol 2021): z_0 to z at the first sampling timestep.

    Each step z_{t_k} = √ᾱ_{t_k} ẑ_0 + √(1 − ᾱ_{t_k}) ε_θ(z_{t_{k−1}}, t_k, r), ẑ_0 from z_{t_{k−1}}: diffusers'
    ``DDIMInverseScheduler`` with the model's scheduler config, so its ``steps`` timesteps are those of
    ``DDIMScheduler`` in reverse and DDIM sampling from the result retraces the path (exactly when ε_θ does
    not change between neighbouring steps, closer the more steps). No classifier-free guidance (ε of the
    conditional ``context`` (1, 77, D) only): DDIM inversion with w = 1, the pivot of null-text inversion
    (Mokady et al. 2023, §3), which reconstructs without guidance and drifts with it.
    Shapes: z0 (1, 4, h, w), scaled by the VAE factor; returns the same shape.
    """
    from diffusers import DDIMInverseScheduler

    known = inspect.signature(DDIMInverseScheduler.__init__).parameters  # SD's file also holds PNDM's skip_prk_steps
    inverse = DDIMInverseScheduler.from_config({k: v for k, v in scheduler_config.items() if k in known})
    inverse.set_timesteps(steps)
    z = z0
    for t in tqdm(inverse.timesteps, desc="DDIM inversion", disable=not progress):
        eps = unet(inverse.scale_model_input(z, t), t, encoder_hidden_states=context).sample
        z = inverse.step(eps, t, z).prev_sample
    return z


@torch.no_grad()
def sample_styo(
    ldm: Any,
    unet: nn.Module,
    source_prompt: str,
    stylised_prompt: str,
    content_indices: Sequence[int],
    fcc: bool = True,
    inject_fraction: float = 0.8,
    steps: int = 50,
    guidance: float = 7.5,
    seed: int = 0,
    size: int = 512,
    store: AttentionStore | None = None,
    progress: bool = True,
    source_indices: Sequence[int] | None = None,
    source_image: torch.Tensor | None = None,
    source_branch: str = "inversion",
    source_guidance: float | None = None,
) -> dict[str, torch.Tensor]:
    """FCC sampling: the source branch (from the source photo) beside the stylised branch, with attention control when ``fcc``.

    Where both branches start (``source_branch``; the stylised branch always starts from the same latent):

    - ``"inversion"`` (default): z_0 = E(``source_image``) (the posterior mean), DDIM-inverted with the
      source prompt to the first sampling timestep (:func:`ddim_invert`; deterministic, ``seed`` unused);
    - ``"forward"``: forward diffusion q(z_T | z_0) = N(√ᾱ_T z_0, (1 − ᾱ_T) I) at that timestep, ε from ``seed``;
    - ``"generated"``: both from the noise of ``seed``, no image (the source branch is what the model
      generates for the source prompt; the behaviour before issue 22, kept as an ablation).

    Batch rows: [uncond, uncond, source, stylised]; classifier-free guidance
    ε = ε_∅ + g (ε_r − ε_∅) (Ho & Salimans 2022) with g = ``guidance`` for the stylised branch and
    ``source_guidance`` for the source branch (None: 1 when it starts from the photo, so that it retraces
    the inversion and reconstructs the photo; ``guidance`` when generated); DDIM steps with the model's
    scheduler config (its ``prediction_type`` included). Injection (rows 2 → 3, the conditional branches,
    as in prompt-to-prompt) runs during the first ``inject_fraction`` · ``steps`` steps. ``content_indices``
    are positions in the stylised prompt, ``source_indices`` (default: the same) those of the same words in
    the source prompt; the tokens there must be equal (else ValueError), so a copied column always belongs
    to the same word. ``source_image`` is (1, 3, size, size) in [0, 1].
    Returns images (1, 3, size, size) in [0, 1] under "source" and "stylised", their final latents under
    "source_latent" and "stylised_latent", the starting latent under "start_latent" and z_0 of the photo
    under "photo_latent" (absent when generated).
    """
    if not 0.0 <= inject_fraction <= 1.0:
        raise ValueError(f"inject_fraction must be in [0, 1], got {inject_fraction}")
    if source_branch not in SOURCE_BRANCHES:
        raise ValueError(f"source_branch must be one of {SOURCE_BRANCHES}, got {source_branch!r}")
    f = ldm.latent_factor
    if size % f:
        raise ValueError(f"size must be a multiple of {f} (the VAE's downsampling), got {size}")
    if source_branch == "generated" and source_image is not None:
        raise ValueError("source_branch='generated' starts both branches from noise and never reads source_image: "
                         "pass source_image=None, or source_branch='inversion' / 'forward' to start from the photo")
    if source_branch != "generated" and (source_image is None or tuple(source_image.shape) != (1, 3, size, size)):
        got = None if source_image is None else tuple(source_image.shape)
        raise ValueError(f"source_branch={source_branch!r} starts from the source photo: pass source_image of shape (1, 3, {size}, {size}) "
                         f"in [0, 1] (got {got}), or source_branch='generated' to start both branches from noise")
    src_positions = list(content_indices if source_indices is None else source_indices)
    if fcc and inject_fraction > 0:
        ids = ldm.tokenize([source_prompt, stylised_prompt])  # (2, 77)
        idx, src_idx = torch.as_tensor(list(content_indices), dtype=torch.long), torch.as_tensor(src_positions, dtype=torch.long)
        bad = len(idx) != len(src_idx) or any(len(i) and (i.min() < 0 or i.max() >= ids.shape[1]) for i in (idx, src_idx))
        if bad or not torch.equal(ids[0, src_idx], ids[1, idx]):
            raise ValueError("FCC copies each content token's attention column from the source branch, so both prompts must hold "
                             "the same content words: pass source_indices=content_token_indices(tokenizer, prompt_segments('source', ...)) "
                             "when they sit at other positions in the source prompt")
    dtype = next(unet.parameters()).dtype
    context = torch.cat([ldm.encode_prompt(["", ""]), ldm.encode_prompt([source_prompt, stylised_prompt])]).to(dtype)
    gen = torch.Generator().manual_seed(seed)
    scheduler = ldm.ddim_scheduler()
    scheduler.set_timesteps(steps)
    extra: dict[str, torch.Tensor] = {}
    if source_branch == "generated":
        z = torch.randn((1, unet.config.in_channels, size // f, size // f), generator=gen).to(ldm.device, dtype).repeat(2, 1, 1, 1)
        z = z * scheduler.init_noise_sigma
        g_src = guidance if source_guidance is None else source_guidance
    else:
        z0 = ldm.encode_images(source_image)[0].to(dtype)  # the VAE posterior mean, (1, 4, h, w)
        if source_branch == "inversion":
            z = ddim_invert(unet, ldm.scheduler_config, z0, context[2:3], steps, progress=progress)
        else:  # q(z_T | z_0) at T = the first sampling timestep
            eps = torch.randn(z0.shape, generator=gen).to(ldm.device, dtype)
            z = scheduler.add_noise(z0, eps, scheduler.timesteps[:1])
        z = z.repeat(2, 1, 1, 1)
        extra = {"photo_latent": z0.cpu()}
        g_src = 1.0 if source_guidance is None else source_guidance
    start = z[:1].cpu()
    control = FCCControl(indices=list(content_indices), pairs=[(2, 3)], source_indices=src_positions)
    n_inject = int(round(inject_fraction * steps)) if fcc else 0
    g = guidance if g_src == guidance else torch.tensor([g_src, guidance], device=ldm.device, dtype=dtype).view(2, 1, 1, 1)
    with fcc_processors(unet, control, store):
        for i, t in enumerate(tqdm(scheduler.timesteps, desc="sampling", disable=not progress)):
            control.active = i < n_inject
            zz = scheduler.scale_model_input(torch.cat([z, z]), t)
            eps = unet(zz, t, encoder_hidden_states=context).sample
            eps_u, eps_c = eps.chunk(2)
            eps = eps_u + g * (eps_c - eps_u)  # rows: source, stylised
            z = scheduler.step(eps, t, z).prev_sample
    images = ldm.decode_latents(z.to(ldm.vae.dtype))
    return {"source": images[0:1].cpu(), "stylised": images[1:2].cpu(), "source_latent": z[0:1].cpu(), "stylised_latent": z[1:2].cpu(),
            "start_latent": start, **extra}
