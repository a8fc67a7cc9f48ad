"""Gradient descent on pixels, with per-term loss history, snapshots and a progress bar.

The loss is whatever the caller writes: a function from the image being optimised to a
dict of *already weighted* terms, e.g. ``{"content": α·L_c, "style": β·L_s}``; the total is
their sum. Keeping the weighted sum in the caller keeps the paper's Eq. 7 visible in the
notebook (notebook 01, "Gradient descent on pixels").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm.auto import tqdm

from .compiling import CompileMode, maybe_compile, should_compile

__all__ = ["LossFn", "OptimResult", "optimize_pixels"]

LossFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@dataclass
class OptimResult:
    """The optimised image (1, 3, H, W), loss history per term, snapshots and timing."""

    image: torch.Tensor
    history: dict[str, list[float]]
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    evaluations: int = 0
    times: list[float] = field(default_factory=list)  # seconds since the start at each history entry

    def final(self) -> dict[str, float]:
        """Last recorded value of every term (and 'total')."""
        return {k: v[-1] for k, v in self.history.items() if v}

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(self.steps, 1)


def optimize_pixels(
    init: torch.Tensor,
    loss_fn: LossFn,
    steps: int,
    optimizer: Literal["lbfgs", "adam"] = "lbfgs",
    lr: float | None = None,
    snapshot_every: int = 0,
    clamp: bool = True,
    progress: bool = True,
    desc: str = "optimising",
    seed: int = 0,
    line_search: str | None = None,
    target_loss: float | None = None,
    compile: CompileMode = "auto",  # noqa: A002 — the torch.compile option, see stylecore.compiling
) -> OptimResult:
    """Minimise Σ loss_fn(x).values() over the pixels x, starting from ``init``.

    ``optimizer="lbfgs"`` runs one L-BFGS iteration per step (``max_iter=1``; the curvature
    history persists across steps) so progress and history are per iteration; ``"adam"``
    defaults to lr 0.02 on [0, 1] pixels. History records the terms at the start of each step
    plus one final evaluation (of the returned image), so ``history[k]`` has ``steps + 1`` entries.

    ``clamp``: Adam is projected to [0, 1] after every step; L-BFGS runs unconstrained and the
    result is clipped once at the end. Notes: projecting inside L-BFGS corrupts its curvature
    pairs (the stored step no longer equals the step taken) and stalls it; like the authors'
    and jcjohnson's code we use L-BFGS without line search (``line_search="strong_wolfe"``
    is available, at about twice the evaluations per iteration).

    ``target_loss``: stop after the first step whose total is at or below it (``steps`` is then
    the number of steps taken); ``times`` records when each history entry was reached, so the
    time to a given loss can be read off the result.

    ``compile``: ``True`` evaluates ``loss_fn`` (model + loss, and its backward) through
    ``torch.compile``; ``"auto"`` does so when H·W × steps ≥
    :data:`stylecore.compiling.BREAK_EVEN_PIXEL_ITERATIONS` (80 × 512², i.e. ≈ 80 iterations at
    512 px pay back a ≈ 40 s compile on 2 cores), so quick runs stay eager; the result equals the
    eager one to float rounding. Where compiling is unavailable it warns once and runs eagerly.

    Deterministic on CPU for a fixed ``seed`` and input.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    torch.manual_seed(seed)
    x = init.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [x], lr=1.0 if lr is None else lr, max_iter=1, history_size=100, line_search_fn=line_search,
            tolerance_grad=0.0, tolerance_change=0.0,  # run the iterations asked for, whatever the loss scale
        )
    elif optimizer == "adam":
        opt = torch.optim.Adam([x], lr=0.02 if lr is None else lr)
    else:
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")

    history: dict[str, list[float]] = {}
    snapshots: list[tuple[int, torch.Tensor]] = []
    evaluations = 0
    last_terms: dict[str, float] = {}
    def terms_and_total(img: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        terms = loss_fn(img)
        return terms, torch.stack(list(terms.values())).sum()

    evaluate = maybe_compile(terms_and_total, should_compile(compile, init.shape[-2] * init.shape[-1], steps))
    capture = True  # the first evaluation of each step is at the current x (line-search trials come after)

    def closure() -> torch.Tensor:
        nonlocal evaluations, last_terms, capture
        opt.zero_grad(set_to_none=True)
        terms, total = evaluate(x)
        total.backward()
        evaluations += 1
        if capture:
            last_terms = {**{k: float(v.detach()) for k, v in terms.items()}, "total": float(total.detach())}
            capture = False
        return total

    def record() -> None:
        for k, v in last_terms.items():
            history.setdefault(k, []).append(v)
        times.append(time.perf_counter() - start)

    times: list[float] = []
    taken = 0
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        if target_loss is not None and step > 0 and history["total"][-1] <= target_loss:
            break
        taken += 1
        capture = True
        opt.step(closure)  # both optimisers evaluate the closure at the current x first
        record()
        if clamp and optimizer == "adam":
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        if snapshot_every and (step + 1) % snapshot_every == 0:
            snapshots.append((step + 1, x.detach().clone()))
        bar.set_postfix(loss=f"{last_terms['total']:.4g}", refresh=False)
    bar.close()
    if clamp:
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    capture = True
    closure()  # final values, for the image actually returned
    record()
    seconds = time.perf_counter() - start
    return OptimResult(x.detach().clone(), history, snapshots, seconds, taken, evaluations, times)
