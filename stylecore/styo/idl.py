"""StyO (Li et al. 2023, arXiv 2303.03231): contrastive disentangled prompts and the IDL fine-tuning.

Identifier Disentanglement Learner (IDL). Four rare key tokens name the source style S_src, the
target style S_tgt, the source content C_src and the target content C_tgt; a negator ("not")
makes each identifier contrastive. The model θ is fine-tuned on three (image, prompt) kinds:

    source x_src ↔ "a drawing with S_src not S_tgt style of C_src not C_tgt portrait"
    target x_tgt ↔ "a drawing with S_tgt not S_src style of C_tgt not C_src portrait"
    aux    x_aux ↔ "a drawing with S_src not S_tgt style of portrait"

with the sum of their denoising losses (the LDM loss ‖ε − ε_θ(z_t, t, r)‖² per kind; v or z_0 in place of ε
when the scheduler predicts those, :func:`idl_losses`).
At inference the identifiers are recombined,
"a drawing with S_tgt not S_src style of C_src not C_tgt portrait", and the augmented prompt
repeats the style pair n_s times and the content pair n_c times. The cross-attention control of
the Fine-grained Content Controller lives in :mod:`stylecore.styo.fcc`.

Sources: the paper's full text could not be read from this project's workplace (only its arXiv
abstract) and the authors released no code. Every setting comes from :data:`SETTINGS`, each with
where it was read: the Pseudo-Lab review of arXiv v2 (:data:`REVIEW`), the arXiv abstract (:data:`ABSTRACT`),
the project's issue text, or "not stated in any reachable source" (then the value is ours, and says so).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..cache import load_checked
from ..images import atomic_path

__all__ = [
    "IDLConfig",
    "Identifiers",
    "PREDICTION_TYPES",
    "PromptKind",
    "REVIEW",
    "SETTINGS",
    "build_prompt",
    "content_token_indices",
    "eval_denoising_loss",
    "idl_losses",
    "idl_prompts",
    "prompt_segments",
    "train_idl",
]

PromptKind = str  # "source" | "target" | "aux" | "stylised"
KINDS = ("source", "target", "aux", "stylised")

#: The one detailed reachable account of the method: a review of arXiv 2303.03231v2 (7 Mar 2023).
REVIEW = ("Pseudo-Lab review of arXiv 2303.03231v2 (S. Ji, last updated 6 Aug 2023; "
          "https://pseudo-lab.github.io/pseudodiffusers/docs/review/StyO.html, github.com/Pseudo-Lab/pseudodiffusers book/docs/review/StyO.md)")
ISSUE = "the project's issue text (no paper section it quotes could be checked)"
NOT_STATED = "not stated in any reachable source"
ABSTRACT = "arXiv 2303.03231 abstract (also the AAAI 2025 abstract, doi:10.1609/aaai.v39i5.32488)"

#: value, source. The review's section names: "3.2 Framework of StyO" (IDL, FCC), "4. Experiments" (Implementation Details).
SETTINGS: dict[str, tuple[Any, str]] = {
    "key_tokens": (("ak47", "aug", "sks", "m4a1"), f"{REVIEW}, Implementation Details: key prompt 'ak47', 'aug', 'sks', 'm4a1'"),
    "key_roles": (("S_src", "S_tgt", "C_src", "C_tgt"), f"{NOT_STATED}: which token names which identifier is our assignment, in the listed order"),
    "negator": ("not", f"{REVIEW}, IDL: negator 'e.g. not, without, except'"),
    "source_prompt": ("a drawing with S_src not S_tgt style of C_src not C_tgt portrait", f"{REVIEW}, IDL"),
    "target_prompt": ("a drawing with S_tgt not S_src style of C_tgt not C_src portrait",
                      f"{ISSUE}; the review only says the target image is trained 'the other way round'"),
    "aux_prompt": ("a drawing with S_src not S_tgt style of portrait", f"{REVIEW}, IDL"),
    "aux_set": (200, f"{REVIEW}, IDL: X_aux, 200 images sampled at random from FFHQ"),
    "stylised_prompt": ("a drawing with S_tgt not S_src style of C_src not C_tgt portrait", f"{REVIEW}, IDL (recombination)"),
    "content_tokens": (("C_src", "not", "C_tgt", "portrait"), f"{REVIEW}, FCC 1 (cross attention control): content index"),
    "augmented_prompt": ("a drawing with (S_src not S_tgt)·n_s style of (C_src not C_tgt)·n_c portrait",
                         f"{REVIEW}, FCC 2 (augmented text prompt): used at training time for the source image, the target's reversed"),
    "augment_training": (True, f"{REVIEW}, FCC 2 (augmented text prompt): the augmented prompt is used 'at training time' for the source "
                               "image (the target's reversed); the generating prompt is augmented too"),
    "augment_training_other_reading": (False, f"{ABSTRACT}: FCC 'recombines disentangled identifiers from IDL to form an augmented text prompt "
                                              "for generating', and the review's Fig. 1 shows the plain prompts in fine-tuning: augmented at generation only"),
    "augmented_aux": (False, f"{NOT_STATED}: whether the aux prompt's style pair is repeated too (here: not)"),
    "n_s": (3, f"{REVIEW}, Implementation Details: n_s 3 (FCC 2: values ≤ 3 recommended)"),
    "n_c": (1, f"{REVIEW}, Implementation Details: n_c 1 (FCC 2: values ≤ 3 recommended)"),
    "optimizer": ("Adam", f"{REVIEW}, Implementation Details"),
    "lr": (1e-6, f"{REVIEW}, Implementation Details: learning rate 1e-6"),
    "steps": (400, f"{REVIEW}, Implementation Details: train step 400"),
    "base_model": ("LDM trained on LAION-5B", f"{REVIEW}, Implementation Details: pretrained LDM checkpoint (LAION-5B); the checkpoint: {NOT_STATED}"),
    "others": ("as the LDM", f"{REVIEW}, Implementation Details: 'the rest as in LDM'"),
    "time_per_style": ("about 10 minutes on one GPU", f"{REVIEW}, 5. Conclusion (a limitation)"),
    "tuned_parameters": ("UNet", f"{NOT_STATED}: here the UNet only, VAE and text encoder frozen"),
    "inject_fraction": (0.8, f"{NOT_STATED}; 0.8 is prompt-to-prompt's example cross_replace_steps=.8"),
    "image_size": (512, f"{NOT_STATED}; Stable Diffusion 1.x's resolution"),
    "sample_steps": (50, f"{NOT_STATED}; diffusers StableDiffusionPipeline num_inference_steps default 50"),
    "guidance": (7.5, f"{NOT_STATED}; diffusers StableDiffusionPipeline guidance_scale default 7.5"),
}


@dataclass(frozen=True)
class Identifiers:
    """The key tokens and the negator (:data:`SETTINGS` ``key_tokens``, ``key_roles``, ``negator``)."""

    style_src: str = "ak47"
    style_tgt: str = "aug"
    content_src: str = "sks"
    content_tgt: str = "m4a1"
    negator: str | None = "not"  # None: positive-only prompts (the Fig. 4 ablation in the review); "without", "except" also work (the review)

    def __post_init__(self) -> None:
        keys = (self.style_src, self.style_tgt, self.content_src, self.content_tgt)
        if len(set(keys)) != 4 or any(not k or " " in k for k in keys):
            raise ValueError(f"the four key tokens must be distinct single words, got {keys}")


def _pair(pos: str, neg: str, negator: str | None) -> str:
    return f"{pos} {negator} {neg}" if negator else pos


def prompt_segments(kind: PromptKind, ids: Identifiers = Identifiers(), n_s: int = 1, n_c: int = 1) -> list[tuple[str, str]]:
    """The prompt of ``kind`` as (text, role) pieces; role is "template", "style" or "content".

    The content role covers what FCC injects: every C_src/negator/C_tgt pair and "portrait".
    """
    if kind not in KINDS:
        raise ValueError(f"prompt kind must be one of {KINDS}, got {kind!r}")
    if n_s < 1 or n_c < 1:
        raise ValueError(f"n_s and n_c must be at least 1, got n_s={n_s}, n_c={n_c}")
    neg = ids.negator
    style = _pair(ids.style_tgt, ids.style_src, neg) if kind in ("target", "stylised") else _pair(ids.style_src, ids.style_tgt, neg)
    content = {"source": _pair(ids.content_src, ids.content_tgt, neg), "stylised": _pair(ids.content_src, ids.content_tgt, neg),
               "target": _pair(ids.content_tgt, ids.content_src, neg), "aux": None}[kind]
    segs = [("a drawing with", "template")] + [(style, "style")] * n_s + [("style of", "template")]
    if content is not None:
        segs += [(content, "content")] * n_c
    return segs + [("portrait", "content")]


def build_prompt(kind: PromptKind, ids: Identifiers = Identifiers(), n_s: int = 1, n_c: int = 1) -> str:
    """The prompt string (see :func:`prompt_segments`); n_s, n_c > 1 give the augmented prompt of FCC."""
    return " ".join(text for text, _ in prompt_segments(kind, ids, n_s, n_c))


def idl_prompts(ids: Identifiers = Identifiers(), n_s: int = 1, n_c: int = 1) -> dict[str, str]:
    """The three IDL training prompts (source, target, aux) and the recombined inference prompt.

    n_s, n_c > 1: the augmented forms (the review of arXiv v2 uses them at training time for the
    source and, reversed, the target image). The aux prompt stays as written (:data:`SETTINGS` ``augmented_aux``).
    """
    return {kind: build_prompt(kind, ids, *((1, 1) if kind == "aux" else (n_s, n_c))) for kind in KINDS}


def content_token_indices(tokenizer: Any, segments: Sequence[tuple[str, str]], role: str = "content") -> list[int]:
    """Positions in the padded token sequence (after <|startoftext|>) of every sub-token of the ``role`` pieces.

    A key such as "ak47" is three CLIP tokens and "m4a1" four: all of them are returned.

    Raises:
        ValueError: the prompt is longer than the tokenizer's 77 positions.
    """
    pos, out = 1, []  # position 0 is <|startoftext|>
    for text, r in segments:
        n = len(tokenizer(text, add_special_tokens=False).input_ids)
        if r == role:
            out.extend(range(pos, pos + n))
        pos += n
    whole = len(tokenizer(" ".join(t for t, _ in segments), add_special_tokens=False).input_ids)
    if whole != pos - 1:  # CLIP's BPE splits on spaces, so pieces tokenise alone as they do together
        raise RuntimeError(f"the prompt's pieces give {pos - 1} tokens but the whole prompt {whole}")
    if pos + 1 > tokenizer.model_max_length:
        raise ValueError(f"the prompt needs {pos + 1} positions, more than the text encoder's {tokenizer.model_max_length}: lower n_s or n_c")
    return out


@dataclass(frozen=True)
class IDLConfig:
    """IDL fine-tuning settings: Adam, lr 1e-6, 400 steps (:data:`SETTINGS`, from the review of arXiv v2).

    ``n_s``, ``n_c``: repetitions in the *training* prompts (1: the plain prompts; the review: the
    augmented prompt, n_s 3, n_c 1, is what the source and target images are trained with).
    """

    steps: int = 400
    lr: float = 1e-6
    use_aux: bool = True  # False: the "w/o auxiliary set" ablation (Fig. 4)
    n_s: int = 1
    n_c: int = 1
    checkpoint_every: int = 50
    seed: int = 0

    def key(self, extra: Any = None) -> str:
        text = json.dumps([asdict(self), extra], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def idl_losses(unet: nn.Module, scheduler: Any, latents: torch.Tensor, context: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-row denoising losses ‖y − f_θ(z_t, t, r)‖² (mean over latent entries), (B,), y the scheduler's ``prediction_type``.

    y = ε for "epsilon" (SD 1.x; Rombach et al. 2022, Eq. 2), y = v = √ᾱ_t ε − √(1 − ᾱ_t) z_0 for
    "v_prediction" (Salimans & Ho 2022, §4; SD 2.x-768; ``scheduler.get_velocity``), y = z_0 for "sample".
    ``latents`` (B, 4, h, w) are z_0 (already scaled), ``context`` (B, 77, D) the prompt features;
    t ~ U{0, …, T−1} and ε ~ N(0, I) are drawn from ``generator`` (CPU), so a run repeats exactly.
    """
    kind = scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise ValueError(f"the scheduler's prediction_type must be one of {PREDICTION_TYPES}, got {kind!r}")
    b = latents.shape[0]
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator).to(latents.device)
    eps = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
    z_t = scheduler.add_noise(latents, eps, t)  # z_t = √ᾱ_t z_0 + √(1 − ᾱ_t) ε
    target = {"epsilon": eps, "sample": latents}.get(kind)
    if target is None:
        target = scheduler.get_velocity(latents, eps, t)  # v = √ᾱ_t ε − √(1 − ᾱ_t) z_0
    pred = unet(z_t, t, encoder_hidden_states=context.to(latents.dtype)).sample
    return ((pred.float() - target.float()) ** 2).flatten(1).mean(1)


def _sample_latents(stats: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    mean, std = stats
    return mean + std * torch.randn(mean.shape, generator=generator).to(mean.device, mean.dtype)


def train_idl(
    ldm: Any,
    source: torch.Tensor,
    target: torch.Tensor,
    aux: Sequence[torch.Tensor],
    ids: Identifiers = Identifiers(),
    config: IDLConfig = IDLConfig(),
    folder: str | os.PathLike[str] | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, list[float]]]:
    """Fine-tune a copy of ``ldm.unet`` with the IDL triple loss; returns (tuned UNet, loss history).

    L = L_src + L_tgt + L_aux (the review's "Full Loss"), one image of each kind per step (the aux image drawn
    at random from ``aux``). Images are (1, 3, H, W) in [0, 1]. With ``folder`` the run writes a
    checkpoint (UNet, Adam state, RNG state, history) every ``config.checkpoint_every`` steps,
    atomically, and a later call with the same inputs resumes from it and ends bit-for-bit where an
    uninterrupted run would; a finished run is loaded instead of retrained. ``callback(step, losses)``
    runs after each step.

    Notes: only the UNet is tuned (VAE and text encoder frozen), in fp32.
    """
    if config.use_aux and not aux:
        raise ValueError("use_aux=True needs at least one auxiliary image (the review of arXiv v2: 200 random FFHQ faces); pass aux images or set use_aux=False")
    prompts = idl_prompts(ids, config.n_s, config.n_c)
    kinds = ["source", "target"] + (["aux"] if config.use_aux else [])
    limit = ldm.tokenizer.model_max_length
    for kind in kinds:
        n = len(ldm.tokenizer(prompts[kind]).input_ids)  # with <|startoftext|> and <|endoftext|>, not truncated
        if n > limit:
            raise ValueError(f"the IDL {kind} prompt needs {n} token positions, more than the text encoder's {limit} (the rest would be cut off "
                             f"in training): lower IDLConfig.n_s (now {config.n_s}) or n_c (now {config.n_c}), or use shorter key tokens")
    device = ldm.device
    unet = type(ldm.unet).from_config(ldm.unet.config)  # a fresh copy (faster than deepcopy), then the weights
    unet.load_state_dict(ldm.unet.state_dict())
    unet = unet.to(device=device, dtype=torch.float32).train().requires_grad_(True)
    with torch.no_grad():
        context = ldm.encode_prompt([prompts[k] for k in kinds]).float()
        stats = {"source": ldm.encode_images(source), "target": ldm.encode_images(target)}
        aux_stats = [ldm.encode_images(a) for a in aux] if config.use_aux else []
    stats = {k: (m.float(), s.float()) for k, (m, s) in stats.items()}
    aux_stats = [(m.float(), s.float()) for m, s in aux_stats]
    scheduler = ldm.ddpm_scheduler()
    opt = torch.optim.Adam(unet.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {k: [] for k in [*kinds, "total"]}
    start = 0
    ckpt = None
    if folder is not None:
        digest = hashlib.sha256()
        for x in (source, target, *aux):
            digest.update(x.detach().cpu().float().numpy().tobytes())
        ckpt = Path(folder) / f"idl-{config.key([asdict(ids), ldm.weights_info.label, digest.hexdigest()])}.pt"
        if (state := load_checked(ckpt, "IDL checkpoint")) is not None:
            unet.load_state_dict(state["unet"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            history, start = state["history"], int(state["step"])
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="IDL fine-tuning", disable=not progress)
    for step in bar:
        z0 = [_sample_latents(stats["source"], gen), _sample_latents(stats["target"], gen)]
        if config.use_aux:
            pick = int(torch.randint(0, len(aux_stats), (1,), generator=gen))
            z0.append(_sample_latents(aux_stats[pick], gen))
        losses = idl_losses(unet, scheduler, torch.cat(z0), context, gen)
        loss = losses.sum()  # L_src + L_tgt + L_aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        values = {k: float(v) for k, v in zip(kinds, losses.detach())} | {"total": float(loss.detach())}
        for k, v in values.items():
            history[k].append(v)
        bar.set_postfix(loss=f"{values['total']:.4f}")
        done = step + 1
        if ckpt is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            with atomic_path(ckpt) as tmp:
                torch.save({"unet": unet.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(), "history": history, "step": done}, tmp)
        if callback is not None:
            callback(done, values)
    return unet.eval().requires_grad_(False), history


@torch.no_grad()
def eval_denoising_loss(unet: nn.Module, ldm: Any, image: torch.Tensor, prompt: str, n: int = 16, seed: int = 1234) -> float:
    """Mean denoising loss of ``image`` with ``prompt`` over ``n`` fixed (t, ε) draws: a held measure of fit."""
    gen = torch.Generator().manual_seed(seed)
    mean, _ = ldm.encode_images(image)
    context = ldm.encode_prompt([prompt]).float().expand(n, -1, -1)
    z0 = mean.float().expand(n, -1, -1, -1).to(next(unet.parameters()).dtype)
    return float(idl_losses(unet, ldm.ddpm_scheduler(), z0, context, gen).mean())
