"""Numbers that say whether a stylisation happened, for tests and summaries (not from a paper).

A style-transfer output should take on the style image's colours. The fraction of the way
its colour statistics moved from the content image's to the style image's is one number a
test can assert on, reproducible on any weights.
"""

from __future__ import annotations

import torch

__all__ = ["color_moved_fraction", "color_statistics"]


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
