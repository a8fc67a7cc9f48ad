"""``compile=`` for the long optimisations: when to use ``torch.compile`` and a fallback where it cannot.

``torch.compile`` (TorchInductor) fuses the elementwise passes around oneDNN's convolutions
(ReLU, pooling, their backward, gradient sums, zero fills). On the CPU, Inductor generates C++
and needs a working C++ compiler (``g++``/``clang++``, or the one named by ``CXX``); on Windows
it needs MSVC, which we do not probe, so it is treated as unavailable there. The first call
traces and compiles (tens of seconds for VGG19), later calls are faster, so compiling pays
only on long runs: :func:`should_compile` decides for ``compile="auto"``.

We compile the loss/feature function (model + loss, its backward through AOTAutograd), not the
optimiser step (L-BFGS's closure pattern calls the closure from Python, see
``torch.optim.LBFGS.step``). Where compiling is impossible or the first compiled call fails,
the run continues eagerly after ONE :class:`CompileFallbackWarning` per process.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Callable
from typing import Literal, TypeVar

import torch

__all__ = ["BREAK_EVEN_PIXEL_ITERATIONS", "CompileFallbackWarning", "CompileMode", "compile_unavailable_reason",
           "maybe_compile", "parse_compile", "should_compile"]

CompileMode = Literal["auto"] | bool

#: pixels × iterations above which ``compile="auto"`` compiles. Issue 26's idle measurement on
#: 2 cores at 512 px (Gatys, tutorial layers): compile ≈ 42 s, evaluation 2.2 s eager vs 1.54 s
#: compiled (0.6 s saved per evaluation, ≈ 70 evaluations to pay back). The saving per evaluation
#: scales with the pixels while the compile time barely does, so the break-even count is about
#: 80 × (512² / pixels) iterations: 80 at 512 px, 320 at 256 px, 1300 at 128 px. A papermill
#: quick run (≤ 256 px, ≤ 100 iterations; 6.6e6) stays eager, a paper run (512 px, 500) compiles.
BREAK_EVEN_PIXEL_ITERATIONS: int = 80 * 512 * 512

_warned = False
F = TypeVar("F", bound=Callable)


class CompileFallbackWarning(UserWarning):
    """torch.compile was asked for (or chosen by "auto") but is unavailable: running eagerly."""


def parse_compile(value: object, name: str = "compile") -> CompileMode:
    """``"auto"`` | ``True``/``"on"`` | ``False``/``"off"`` (a notebook parameter) → "auto" or a bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("auto", "on", "off", "true", "false"):
        v = value.lower()
        return "auto" if v == "auto" else v in ("on", "true")
    raise ValueError(f"{name} must be 'auto', 'on', 'off', True or False, got {value!r}")


def should_compile(mode: CompileMode, pixels: int, iterations: int, break_even: int = BREAK_EVEN_PIXEL_ITERATIONS) -> bool:
    """Whether to compile: ``True``/``False`` force it; ``"auto"`` iff pixels × iterations ≥ ``break_even``."""
    mode = parse_compile(mode)
    if mode == "auto":
        return pixels * iterations >= break_even
    return bool(mode)


def compile_unavailable_reason() -> str | None:
    """Why torch.compile cannot run here (None where it can): no C++ compiler, Windows, no torch.compile."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if sys.platform == "win32":
        return "Windows (Inductor needs MSVC, which is not checked)"
    cxx = os.environ.get("CXX")
    if not any(shutil.which(c) for c in ([cxx] if cxx else []) + ["g++", "c++", "clang++"]):
        return "no C++ compiler found (Inductor's CPU backend needs g++ or clang++; set CXX)"
    return None


def _warn(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"torch.compile unavailable ({reason}); running eagerly — results are the same, only slower", CompileFallbackWarning, stacklevel=3)


def maybe_compile(fn: F, use: bool) -> F:
    """``fn`` compiled by ``torch.compile`` if ``use`` and possible, else ``fn`` itself.

    The first call of the compiled function is guarded: if Dynamo/Inductor fail (e.g. the C++
    build), the warning is given once and every call from then on runs ``fn`` eagerly.
    """
    if not use:
        return fn
    reason = compile_unavailable_reason()
    if reason is not None:
        _warn(reason)
        return fn
    compiled = torch.compile(fn, dynamic=False)
    state = {"checked": False, "eager": False}

    def call(*args, **kwargs):  # type: ignore[no-untyped-def]
        if state["eager"]:
            return fn(*args, **kwargs)
        if state["checked"]:
            return compiled(*args, **kwargs)
        try:
            out = compiled(*args, **kwargs)
        except Exception as e:  # torch._dynamo / inductor errors; a genuine error in fn re-raises below
            state["eager"] = True
            _warn(f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            return fn(*args, **kwargs)
        state["checked"] = True
        return out

    return call  # type: ignore[return-value]
