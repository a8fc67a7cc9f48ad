"""Eager vs compiled columns shared by the benchmarks: compile time, break-even count, peak RSS per step.

GPU (not run in this repository's sessions: no GPU was available; run it where one is):

    python benchmarks/bench_gatys.py --device cuda --sizes 512 --channels-last-bf16
    python benchmarks/bench_clipstyler.py --device cuda

prints eager vs compiled vs channels-last + bf16 autocast for the VGG path (name the GPU beside the numbers).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

from _memory import reset_peak_rss, vm_mib


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def peak_rss_per_step(fn: Callable[[], None]) -> float:
    """Peak RSS (MiB) while running one step ``fn`` (VmHWM reset before it); the process peak where no reset."""
    reset_peak_rss()
    fn()
    return vm_mib("VmHWM:")


def compiled_timing(first_and_rest: Callable[[], None], repeats: int, eager_s: float) -> dict[str, float]:
    """Time a compiled step: the first call (trace + compile + one step) and the median of ``repeats`` more.

    ``compile_s`` = first call − one compiled step; ``break_even`` = compile_s / (eager − compiled) steps
    (inf where compiled is not faster).
    """
    first = timed(first_and_rest)
    rest = statistics.median(timed(first_and_rest) for _ in range(repeats))
    compile_s = max(first - rest, 0.0)
    saving = eager_s - rest
    return {"compiled": rest, "compile_s": compile_s, "break_even": compile_s / saving if saving > 0 else math.inf,
            "rss": peak_rss_per_step(first_and_rest)}
