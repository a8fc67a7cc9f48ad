"""Fast CLIPstyler (Kwon & Ye 2022, Sec. 5.1-5.2): one text, any content image, one forward pass.

A frozen VGG19 encoder (up to relu4_1) and a trainable mirror decoder are fitted on random
patches of training images with the CLIPstyler losses; there are no sub-crops: each training
patch is itself the "patch" of the PatchCLIP loss. Afterwards any image — also a
high-resolution one — is stylised by ``model(image)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .clip_guidance import ClipGuide, augment_patches, clip_direction, directional_clip_loss, patch_clip_loss, random_patches, text_embedding
from .clipstyler import ClipStylerHyperParams, TrainResult, fit, image_prior_loss
from .losses import content_loss
from .vgg import VGGFeatures

__all__ = ["FastClipStyler", "train_fast_clipstyler"]


def _decoder() -> nn.Sequential:
    def conv(cin: int, cout: int) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]

    up = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(
        *conv(512, 256), up,
        *conv(256, 256), *conv(256, 256), *conv(256, 256), *conv(256, 128), nn.Upsample(scale_factor=2, mode="nearest"),
        *conv(128, 128), *conv(128, 64), nn.Upsample(scale_factor=2, mode="nearest"),
        *conv(64, 64), nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3), nn.Sigmoid(),
    )  # fmt: skip


class FastClipStyler(nn.Module):
    """Encoder E (frozen VGG19 to relu4_1) + decoder D: f(I) = D(E(I)), (B, 3, H, W) -> (B, 3, H, W).

    Notes: the decoder mirrors VGG19 as in AdaIN (Huang & Belongie 2017), which the paper's
    fast variant builds on; H and W must be multiples of 8.
    """

    def __init__(self, encoder: VGGFeatures) -> None:
        super().__init__()
        if encoder.layers != ("relu4_1",):
            raise ValueError(f"the encoder must return exactly relu4_1; build it with vgg19_features(['relu4_1']), got {encoder.layers}")
        self.encoder = encoder
        self.decoder = _decoder()

    @property
    def weights_info(self):  # noqa: ANN201 - the encoder's WeightsInfo
        return self.encoder.weights_info

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[-1] % 8 or image.shape[-2] % 8:
            raise ValueError(f"expected (B, 3, H, W) with H, W multiples of 8, got {tuple(image.shape)}")
        return self.decoder(self.encoder(image)["relu4_1"])


def train_fast_clipstyler(
    model: FastClipStyler,
    images: Sequence[torch.Tensor],
    clip: ClipGuide,
    vgg: VGGFeatures,
    text: str,
    hp: ClipStylerHyperParams,
    steps: int,
    batch_size: int = 4,
    crop_size: int = 224,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
) -> TrainResult:
    """Fit the decoder on random ``crop_size`` patches of ``images`` (each (1, 3, H, W)).

    Per step, for a batch x of B patches and y = f(x):
    L = λ_p · mean_i R(l_dir(aug(y_i), x_i), τ) + λ_d · mean_i l_dir(y_i, x_i) + λ_c L_c(y, x) + λ_tv L_tv(y)
    (Kwon & Ye 2022, Sec. 5.1: the same losses, with the training patches as the PatchCLIP patches).
    Adam at ``hp.lr``; the returned ``output`` is the last batch's stylisation. ``checkpoint``:
    decoder, optimiser, RNG and history saved atomically every ``checkpoint_every`` steps; resumed if present.
    """
    if not images:
        raise ValueError("give at least one training image")
    torch.manual_seed(seed)
    with torch.no_grad():
        t_dir = clip_direction(text_embedding(clip, text), text_embedding(clip, hp.source_text))  # ΔT, (D,)
    opt = torch.optim.Adam(model.decoder.parameters(), lr=hp.lr)
    last: list[torch.Tensor] = []

    def step_terms() -> dict[str, torch.Tensor]:
        picks = torch.randint(0, len(images), (batch_size,)).tolist()
        x = torch.cat([random_patches(images[i], 1, crop_size) for i in picks])  # (B, 3, S, S)
        with torch.no_grad():
            src = clip.encode_images(x)  # E_I(x_i), (B, D)
            target = vgg(x)
        y = model(x)
        feats = vgg(y)
        last[:] = [y.detach()]
        return {
            "content": hp.lambda_c * sum(content_loss(feats[n], target[n], reduction="mean") for n in hp.content_layers),
            "patch": hp.lambda_patch * patch_clip_loss(clip.encode_images(augment_patches(y)), src, t_dir, hp.tau),
            "dir": hp.lambda_dir * directional_clip_loss(clip.encode_images(y), src, t_dir),
            "tv": hp.lambda_tv * image_prior_loss(y) / batch_size,
        }

    model.decoder.train()
    history, lrs, seconds = fit(step_terms, model.decoder, opt, None, steps, checkpoint, checkpoint_every, "fast CLIPstyler", progress)
    model.decoder.eval()
    return TrainResult(history, seconds, last[0] if last else images[0], steps, lrs)
