"""Numbers that say whether a stylisation happened, for tests and summaries (not from a paper).

A style-transfer output should take on the style image's colours: the fraction of the way its colour
statistics moved from the content image's to the style image's is one number a test can assert on,
reproducible on any weights (notebooks 01, 05). A photorealistic one should keep the content's edges:
``structure_score`` (notebooks 02, 06).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["color_moved_fraction", "color_statistics", "structure_score"]


def color_statistics(image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-channel mean and standard deviation of a (1, 3, H, W) image -> (6,), optionally within a (H, W) mask."""
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"expected one RGB image of shape (1, 3, H, W), got {tuple(image.shape)}")
    pixels = image[0].flatten(1)  # (3, H·W)
    if mask is not None:
        keep = mask.reshape(-1) > 0.5
        if int(keep.sum()) < 2:
            raise ValueError("the mask selects fewer than two pixels")
        pixels = pixels[:, keep]
    return torch.cat([pixels.mean(dim=1), pixels.std(dim=1)])


def color_moved_fraction(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
    """How far the output's colour statistics went from the content's towards the style's.

        f = 1 − ‖s(output) − s(style)‖ / ‖s(content) − s(style)‖,   s = per-channel (mean, std)

    1: the output has the style's colour statistics; 0: the content's (or as far from the
    style as the content is); negative: further away. Images may differ in size.
    """
    s_out, s_content, s_style = (color_statistics(x.detach().float().cpu()) for x in (output, content, style))
    gap = float((s_content - s_style).norm())
    if gap == 0.0:
        raise ValueError("content and style have identical colour statistics; the fraction is undefined")
    return 1.0 - float((s_out - s_style).norm()) / gap


def structure_score(output: torch.Tensor, content: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004) between the luminance-gradient magnitudes of output and content.

    1 = the same edges in the same places; low = edges moved, blurred or invented (painterly
    distortion). Each gradient map is divided by its mean first, so a global change of colour
    or contrast alone leaves the score at 1: that is what "still the same photo" means here.
    Notes: a diagnostic of this project, not a metric of the paper.
    """
    from skimage.filters import sobel
    from skimage.metrics import structural_similarity

    def grad(img: torch.Tensor) -> np.ndarray:
        rgb = img[0].detach().cpu().double().numpy()
        g = sobel(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
        return g / max(g.mean(), 1e-8)

    if output.shape != content.shape:
        raise ValueError(f"output {tuple(output.shape)} and content {tuple(content.shape)} differ in shape")
    go, gc = grad(output), grad(content)
    return float(structural_similarity(go, gc, data_range=max(gc.max(), go.max(), 1e-8)))
