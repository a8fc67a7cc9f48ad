"""Figures: image grids labelled with the weights that made them, and loss curves.

Every function returns a matplotlib Figure and never calls ``plt.show()``; notebooks
display the figure, scripts save it with :func:`save_figure` (atomic).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

if os.environ.get("MPLBACKEND") is None and "ipykernel" not in __import__("sys").modules:
    matplotlib.use("Agg")  # headless scripts and tests; a kernel keeps its inline backend

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .images import atomic_path, to_numpy

__all__ = ["image_grid", "plot_losses", "save_figure", "show_images"]


def _finish(fig: Figure, weights_label: str | None) -> Figure:
    """Lay out ``fig`` and write which weights made it along the bottom (red when random)."""
    if weights_label:
        colour = "firebrick" if "RANDOM" in weights_label else "dimgray"
        fig.text(0.5, 0.005, weights_label, ha="center", va="bottom", fontsize=8, color=colour)
    fig.tight_layout(rect=(0, 0.04 if weights_label else 0, 1, 1))
    return fig


def show_images(
    images: Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    weights_label: str | None = None,
    ncols: int | None = None,
    size: float = 3.0,
    suptitle: str | None = None,
) -> Figure:
    """A row-major grid of (1, 3, H, W) images with titles; ``weights_label`` goes at the bottom."""
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(to_numpy(images[i]))
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return _finish(fig, weights_label)


def image_grid(
    grid: Sequence[Sequence[torch.Tensor]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    weights_label: str | None = None,
    size: float = 2.5,
    suptitle: str | None = None,
) -> Figure:
    """A 2-D ablation grid: ``grid[r][c]`` is shown at row r, column c, with axis labels."""
    nrows, ncols = len(grid), len(grid[0])
    if len(row_labels) != nrows or len(col_labels) != ncols:
        raise ValueError("row/column labels must match the grid's shape")
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.6, size * nrows + 0.6), squeeze=False)
    for r in range(nrows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.imshow(to_numpy(grid[r][c]))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_labels[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(row_labels[r], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return _finish(fig, weights_label)


def plot_losses(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    terms: Sequence[str] | None = None,
    log: bool = True,
    title: str | None = None,
    xlabel: str = "iteration",
    weights_label: str | None = None,
) -> Figure:
    """Loss curves: one panel per term, one line per run. ``histories[run][term]`` is a list of values."""
    if not histories:
        raise ValueError("no loss histories to plot")
    all_terms = terms or list(dict.fromkeys(t for h in histories.values() for t in h))
    fig, axes = plt.subplots(1, len(all_terms), figsize=(4 * len(all_terms), 3.2), squeeze=False)
    for ax, term in zip(axes[0], all_terms):
        for run, hist in histories.items():
            if term in hist:
                ax.plot(list(hist[term]), label=run)
        ax.set_title(term)
        ax.set_xlabel(xlabel)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _finish(fig, weights_label)


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save a figure atomically (format from the suffix, e.g. .png or .pdf)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    return path
