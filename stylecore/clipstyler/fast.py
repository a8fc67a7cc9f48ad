"""Fast CLIPstyler (Kwon & Ye 2022, Sec. 5.1, Fig. 8-9; Suppl. A): one text, any content image, one forward pass.

As the official ``train_fast.py``: AdaIN's pretrained VGG encoder (to relu4_1, frozen) and AdaIN's
pretrained decoder (:mod:`stylecore.nets.adain`); only the decoder is fine-tuned, for one text, on
random 224-px crops of training photos (the authors use DIV2K), with its own loss weights and
schedule (:data:`FAST_AUTHORS_CODE`; the paper's Suppl. A values: :data:`FAST_PAPER`). Each step draws
16 random perspectives of the whole output batch for the PatchCLIP term (the training crops themselves
are the "patches"). Afterwards any image — also a high-resolution one (Sec. 5.2, Fig. 10) — is
stylised by ``model(image)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from ..nets.adain import AdaINEncoder, load_adain_decoder, load_adain_encoder
from ..clip_guidance import ClipGuide, Ensemble, clip_direction, directional_clip_loss, random_patches, text_embedding, threshold_rejection
from .training import TrainResult, fit, image_prior_loss
from ..weights import WeightsInfo

__all__ = ["FAST_AUTHORS_CODE", "FAST_PAPER", "FAST_PRESETS", "FastClipStyler", "FastHyperParams", "load_fast_clipstyler", "perspective_draws", "train_fast_clipstyler"]


@dataclass(frozen=True)
class FastHyperParams:
    """Loss weights and schedule of the fast variant; ``source`` says where they come from."""

    lambda_c: float = 1.0  # content: MSE of relu4_1 (AdaIN encoder) of f(x) and x
    lambda_patch: float = 10.0  # PatchCLIP over the perspective draws
    lambda_dir: float = 1.0  # directional CLIP loss of each whole output
    lambda_tv: float = 1e-4
    lr: float = 1e-4  # Adam on the decoder only
    lr_decay: float = 5e-5  # lr_i = lr / (1 + lr_decay · i)
    steps: int = 200
    batch_size: int = 4
    crop_size: int = 224
    n_draws: int = 16  # random perspectives of the whole batch per step
    tau: float = 0.7
    strict_rejection: bool = True  # True: loss < thresh rejected (official code); False: s ≤ τ (paper, Eq. 3)
    ensemble: Ensemble = "unnormalised_mean"
    source_text: str = "a Photo"  # t_src: "a Photo" in the official code, "Photo" in the paper (Sec. 3.2)
    source: str = ""


#: github.com/cyclomon/CLIPstyler ``train_fast.py`` (commit 4843cec) argparse defaults: --content_weight 1 (λ_c),
#: --clip_weight 10 (λ_p), --glob_weight 1 (λ_d), --tv_weight 1e-4, --lr 1e-4, --lr_decay 5e-5 (``adjust_learning_rate``:
#: lr / (1 + lr_decay · i)), --max_iter 200 (``range(max_iter)``: 200 updates), --batch_size 4, --crop_size 224,
#: --thresh 0.7 with ``loss_temp[loss_temp<args.thresh] = 0`` (strict); ``for it in range(16)`` perspective draws
#: of the batch; ``source = "a Photo"``; content loss: MSE of relu4_1 (``fast_stylenet.Net``).
FAST_AUTHORS_CODE = FastHyperParams(
    source="official code cyclomon/CLIPstyler train_fast.py (argparse defaults --content_weight 1 --clip_weight 10 --glob_weight 1 "
    "--tv_weight 1e-4 --lr 1e-4 --lr_decay 5e-5 --max_iter 200 --batch_size 4 --crop_size 224 --thresh 0.7; loss < thresh rejected; "
    "16 perspective draws per batch; source 'a Photo'; content = MSE of relu4_1)",
)  # fmt: skip
#: Kwon & Ye 2022 (arXiv 2112.00374v3) Sec. 5.1: "We update the model for 200 steps with Adam optimizer using learning
#: rate of 1×10⁻⁴"; Suppl. A "Details for fast style transfer": crop size 224, batch size 4, Adam lr 1×10⁻⁴, "similar
#: to our basic method, we used learning rate decay strategy" (no law given: the code's lr / (1 + 5e-5 i) is kept),
#: "random perspective augmentation for 16 times, therefore our total training patch number per iteration is N = 64",
#: L_dir on the patches before augmentation; λ_d, λ_p, λ_c, λ_tv = 1, 10, 1, 1×10⁻⁴; τ = 0.7. Eq. 3: R zeroes s ≤ τ;
#: Sec. 3.2: t_src "Photo". Sec. 5.1 says "the same loss functions": the content term stays the code's relu4_1 MSE.
FAST_PAPER = FastHyperParams(
    strict_rejection=False, source_text="Photo",
    source="Kwon & Ye 2022 (arXiv 2112.00374v3) Sec. 5.1 (200 steps, Adam lr 1×10⁻⁴) and Suppl. A 'Details for fast style transfer' "
    "(crop 224, batch 4, 16 perspective augmentations -> N = 64, λ_d 1, λ_p 10, λ_c 1, λ_tv 1×10⁻⁴, τ 0.7; lr decay named but not given: "
    "the code's lr/(1 + 5e-5 i)); Eq. 3: s ≤ τ rejected; Sec. 3.2: t_src 'Photo'",
)  # fmt: skip
FAST_PRESETS: dict[str, FastHyperParams] = {"paper": FAST_PAPER, "authors_code": FAST_AUTHORS_CODE}


class FastClipStyler(nn.Module):
    """f(I) = D(E(I)): frozen AdaIN encoder E (to relu4_1) + trainable AdaIN decoder D; (B, 3, H, W) -> (B, 3, H, W).

    The output is unbounded (no final activation, as upstream); clamp it to show it. H and W
    must be multiples of 8.
    """

    def __init__(self, encoder: AdaINEncoder, decoder: nn.Sequential, decoder_info: WeightsInfo | None = None) -> None:
        super().__init__()
        if not isinstance(encoder, AdaINEncoder):
            raise ValueError(f"the encoder must be stylecore.nets.adain.AdaINEncoder (AdaIN's VGG to relu4_1), got {type(encoder).__name__}")
        self.encoder, self.decoder, self.decoder_info = encoder, decoder, decoder_info

    @property
    def weights_label(self) -> str:
        enc = self.encoder.weights_info.label if self.encoder.weights_info else "AdaIN VGG (unlabelled)"
        dec = self.decoder_info.label if self.decoder_info else "AdaIN decoder (unlabelled)"
        return f"{enc} | {dec}"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[-1] % 8 or image.shape[-2] % 8:
            raise ValueError(f"expected (B, 3, H, W) with H, W multiples of 8, got {tuple(image.shape)}")
        return self.decoder(self.encoder(image))


def load_fast_clipstyler(
    weights: str | None = None,
    vgg_file: str | os.PathLike[str] | None = None,
    decoder_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> FastClipStyler:
    """The fast model from AdaIN's ``vgg_normalised.pth`` + ``decoder.pth`` (local files, ``$STYLECORE_ADAIN_*_WEIGHTS``,
    the torch hub cache or a download), or offline the same architecture with random weights (labelled RANDOM)."""
    encoder = load_adain_encoder(weights, vgg_file, seed=seed)
    decoder, info = load_adain_decoder(weights, decoder_file, seed=seed + 1)
    return FastClipStyler(encoder, decoder, info)


def perspective_draws(batch: torch.Tensor, n: int, size: int | None = None) -> torch.Tensor:
    """n random perspectives, each applied to the whole batch (one draw = one warp for all B images): (B, …) -> (n·B, …).

    As ``train_fast.py``: ``RandomPerspective(fill=0, p=1, distortion_scale=0.5)`` then ``Resize(224)``
    on the batch tensor, which draws one set of parameters per call. Row k of the result is a warp
    of image k mod B. ``size``: resize the draws (None keeps the crop size; CLIP resizes anyway).
    """
    warp = v2.RandomPerspective(distortion_scale=0.5, p=1.0, fill=None)  # type: ignore[arg-type]  # fill=None: zero border, autograd-safe
    draws = torch.cat([warp(batch) for _ in range(n)])
    return draws if size is None else F.interpolate(draws, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def train_fast_clipstyler(
    model: FastClipStyler,
    images: Sequence[torch.Tensor],
    clip: ClipGuide,
    text: str,
    hp: FastHyperParams = FAST_AUTHORS_CODE,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
) -> TrainResult:
    """Fine-tune the decoder on random ``hp.crop_size`` crops of ``images`` (each (1, 3, H, W)) for one text.

    Per step, for a batch x of B crops, y = f(x) and the n·B perspective draws a_k of y (k mod B = image):

        L = λ_c ‖E(y) − E(x)‖² + λ_p mean_k R(l_dir(a_k, x_{k mod B}), τ) + λ_d mean_b l_dir(y_b, x_b) + λ_tv L_tv(y)

    (Kwon & Ye 2022, Sec. 5.1 and Suppl. A; weights and schedule of ``train_fast.py``: Adam on the decoder,
    lr_i = lr / (1 + decay · i)). ``output`` of the result is the last batch's stylisation;
    ``checkpoint``: decoder, optimiser, scheduler, RNG and history saved atomically every
    ``checkpoint_every`` steps and resumed if present.
    """
    if not images:
        raise ValueError("give at least one training image")
    small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < hp.crop_size]
    if small:
        raise ValueError(f"training images {small} are smaller than crop_size {hp.crop_size}; load them larger or lower the crop size")
    steps = hp.steps if steps is None else steps
    torch.manual_seed(seed)
    with torch.no_grad():
        t_dir = clip_direction(text_embedding(clip, text, ensemble=hp.ensemble), text_embedding(clip, hp.source_text, ensemble=hp.ensemble))  # ΔT, (D,)
    opt = torch.optim.Adam(model.decoder.parameters(), lr=hp.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 / (1.0 + hp.lr_decay * i))
    last: list[torch.Tensor] = []

    def step_terms() -> dict[str, torch.Tensor]:
        picks = torch.randint(0, len(images), (hp.batch_size,)).tolist()
        x = torch.cat([random_patches(images[i], 1, hp.crop_size) for i in picks])  # (B, 3, S, S)
        with torch.no_grad():
            src = clip.encode_images(x)  # E_I(x_b), (B, D)
            target = model.encoder(x)  # relu4_1 of the content crops
        y = model(x)
        last[:] = [y.detach()]
        draws = perspective_draws(y, hp.n_draws)  # (n·B, 3, S, S)
        per_draw = directional_clip_loss(clip.encode_images(draws), src.repeat(hp.n_draws, 1), t_dir, reduction="none")  # (n·B,)
        return {
            "content": hp.lambda_c * F.mse_loss(model.encoder(y), target),
            "patch": hp.lambda_patch * threshold_rejection(per_draw, hp.tau, hp.strict_rejection).mean(),
            "dir": hp.lambda_dir * directional_clip_loss(clip.encode_images(y), src, t_dir),
            "tv": hp.lambda_tv * image_prior_loss(y),
        }

    model.decoder.train()
    history, lrs, seconds = fit(step_terms, model.decoder, opt, sched, steps, checkpoint, checkpoint_every, "fast CLIPstyler", progress)
    model.decoder.eval()
    return TrainResult(history, seconds, last[0] if last else images[0], steps, lrs)
