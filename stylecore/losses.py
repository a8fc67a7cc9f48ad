"""The classic neural-style losses as pure functions (Gatys, Ecker & Bethge, CVPR 2016).

Notation of the paper: a layer l has N_l feature maps of size M_l = H_l · W_l; F^l is the
generated image's (N_l × M_l) response matrix, P^l the content image's, A^l the style
image's Gram matrix. Notebook 01 derives each equation; ``tests/test_losses.py`` pins each
function to a naive loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch

__all__ = [
    "content_loss",
    "gram_matrix",
    "style_layer_loss",
    "style_loss",
    "total_loss",
    "total_variation",
]


def content_loss(features: torch.Tensor, target: torch.Tensor, reduction: Literal["paper", "mean"] = "paper") -> torch.Tensor:
    """Squared-error content loss between responses F and P (Gatys et al. 2016, Eq. 1).

        L_content = ½ Σ_ij (F_ij − P_ij)²

    Shapes: ``features`` and ``target`` (B, C, H, W) -> scalar.

    Notes: ``reduction="mean"`` is the authors' PyTorch code (``nn.MSELoss``):
    mean (F − P)², i.e. the paper's value times 2 / (B·C·H·W).
    """
    if features.shape != target.shape:
        raise ValueError(f"content features {tuple(features.shape)} and target {tuple(target.shape)} differ in shape")
    diff2 = (features - target).pow(2)
    if reduction == "paper":
        return 0.5 * diff2.sum()
    if reduction == "mean":
        return diff2.mean()
    raise ValueError(f"reduction must be 'paper' or 'mean', got {reduction!r}")


class _Gram(torch.autograd.Function):
    """G = F Fᵀ with a lean backward: ∂L/∂F = (∂L/∂G + ∂L/∂Gᵀ) F in one matmul.

    Autograd's own backward of ``flat @ flat.transpose(1, 2)`` produces two (B, N, M) gradients
    (one through the transpose) and adds them out of place; here the (B, N, N) sum is formed
    first, so the only large tensor the backward writes is the result.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, flat: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(flat)
        ctx.scale = scale
        gram = torch.bmm(flat, flat.transpose(1, 2))  # (B, N, N)
        return gram.mul_(scale) if scale != 1.0 else gram

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_gram: torch.Tensor) -> tuple[torch.Tensor, None]:
        (flat,) = ctx.saved_tensors
        sym = grad_gram + grad_gram.transpose(1, 2)  # (B, N, N), small
        if ctx.scale != 1.0:
            sym = sym * ctx.scale
        return torch.bmm(sym, flat), None  # (B, N, M)


def gram_matrix(features: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Gram matrix of feature maps (Gatys et al. 2016, Eq. 3).

        G_ij = Σ_k F_ik F_jk

    Shapes: (B, C, H, W) -> (B, C, C).

    Notes: ``normalize=True`` divides by M = H·W (the per-position Gram), as the authors'
    PyTorch code does; the paper applies that factor inside Eq. 4 instead (see
    :func:`style_layer_loss`). Computed by a custom autograd function whose backward is one
    matmul, ∂L/∂F = (∂L/∂G + ∂L/∂Gᵀ) F; values and gradients equal the plain formula
    (``tests/test_losses.py``, gradcheck in float64).
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)  # (B, N, M)
    return _Gram.apply(flat, 1.0 / (h * w) if normalize else 1.0)


def style_layer_loss(gram: torch.Tensor, target_gram: torch.Tensor, n_channels: int, n_positions: int) -> torch.Tensor:
    """Contribution of one layer to the style loss (Gatys et al. 2016, Eq. 4).

        E_l = 1 / (4 N_l² M_l²) · Σ_ij (G_ij − A_ij)²

    ``gram``/``target_gram``: unnormalised Gram matrices (B, N, N) -> scalar (summed over B).

    Notes: the authors' PyTorch code computes mean((G/M − A/M)²) = 4 · E_l; their
    per-layer weights 1e3/N² therefore equal weights 4e3/N² here.
    """
    if gram.shape != target_gram.shape:
        raise ValueError(f"Gram matrices differ in shape: {tuple(gram.shape)} vs {tuple(target_gram.shape)}")
    return (gram - target_gram).pow(2).sum() / (4.0 * n_channels**2 * n_positions**2)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float],
    target_positions: Mapping[str, int] | None = None,
) -> torch.Tensor:
    """Weighted style loss over layers (Gatys et al. 2016, Eq. 5).

        L_style = Σ_l w_l E_l,   with A_l rescaled to the output's size:  A_l ← (M_l / M_l^s) A_l

    ``features``: {layer: (B, N_l, H_l, W_l)} of the generated image; ``target_grams``:
    {layer: (B, N_l, N_l)} unnormalised Gram matrices of the style image; ``target_positions``:
    {layer: M_l^s}, the number of positions H·W the style's Gram was summed over.

    Notes: Eq. 4 assumes the style and the generated image have the same number of positions
    M_l. When they differ, a Gram summed over M_l^s positions is M_l^s/M_l times too large
    (or small) for the comparison; rescaling it is the same as comparing per-position Grams,
    (1/4N²) Σ (G/M − A/M^s)², and leaves Eq. 4 unchanged when the sizes match. Without
    ``target_positions`` the sizes are assumed equal, as in Eq. 4.
    """
    terms = []
    for layer, weight in layer_weights.items():
        f = features[layer]
        _, n, h, w = f.shape
        target = target_grams[layer]
        if target_positions is not None and target_positions[layer] != h * w:
            target = target * (h * w / target_positions[layer])
        terms.append(weight * style_layer_loss(gram_matrix(f), target, n, h * w))
    return torch.stack(terms).sum()


def total_loss(content: torch.Tensor, style: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """L_total = α L_content + β L_style (Gatys et al. 2016, Eq. 7)."""
    return alpha * content + beta * style


def total_variation(image: torch.Tensor, power: float = 2.0) -> torch.Tensor:
    """Total-variation regulariser of Mahendran & Vedaldi 2015 (V^β with β = ``power``).

        R(x) = Σ_{c,i,j} ((x_{c,i,j+1} − x_{c,i,j})² + (x_{c,i+1,j} − x_{c,i,j})²)^{β/2}

    Shapes: (B, C, H, W) -> scalar. The sum runs over the (H−1)×(W−1) pixels that have both a
    right and a lower neighbour.

    Notes: Gatys et al. 2016 mention it only for feature inversion. β = 2 is smooth;
    β = 1 (isotropic TV) has no gradient at flat pixels, so 1e-8 is added under the power.
    """
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    sq = dx.pow(2) + dy.pow(2)
    if power == 2.0:
        return sq.sum()
    return (sq + 1e-8).pow(power / 2.0).sum()
