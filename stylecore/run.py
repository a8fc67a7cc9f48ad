"""Bookkeeping for one notebook run: output folder, figures, JSON summary.

Everything a notebook writes goes through here so that it is atomic (write, then rename)
and lands in one folder that a papermill caller chose.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from .images import atomic_path, save_image
from .plots import save_figure

__all__ = ["RunOutputs", "check_image", "check_nonempty", "check_param", "check_size", "deterministic_from_env", "resolve_device",
           "vgg19_bytes_per_pixel", "write_json"]


def deterministic_from_env() -> bool:
    """Honour ``STYLECORE_DETERMINISTIC=1``: ``torch.use_deterministic_algorithms(True)`` for this process.

    Every notebook's validation cell seeds torch and builds its :class:`RunOutputs`, which calls this;
    ``scripts/margins.py`` uses it to measure how far a notebook's numbers move when torch must pick
    deterministic kernels (on a GPU also ``CUBLAS_WORKSPACE_CONFIG``, as torch's docs ask). Returns
    whether the mode is on.
    """
    if os.environ.get("STYLECORE_DETERMINISTIC", "0") not in ("", "0"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    return torch.are_deterministic_algorithms_enabled()


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def check_param(name: str, value: Any, kind: type | tuple[type, ...], choices: tuple[Any, ...] | None = None,
                at_least: float | None = None) -> Any:
    """Validate a notebook parameter with a message a papermill user can act on.

    A list or dict given as a JSON string (``-p styles '["a", "b"]'``: papermill's ``-p`` passes
    strings) is parsed; ints are accepted where floats are asked for. ``at_least`` is a lower
    bound for numbers (sizes and step counts: 1).
    """
    wants_container = kind in (list, dict) or (isinstance(kind, tuple) and any(k in (list, dict) for k in kind))
    if wants_container and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise TypeError(f"parameter {name!r} must be a list/dict, got the string {value!r}; pass JSON (-p {name} '[1, 2]') or YAML (-y '{name}: [1, 2]')") from None
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TypeError(f"parameter {name!r} must be {names}, got {type(value).__name__} {value!r} (papermill: -p {name} <value>)")
    if choices is not None and value not in choices:
        raise ValueError(f"parameter {name!r} must be one of {choices}, got {value!r}")
    if at_least is not None and value < at_least:
        raise ValueError(f"parameter {name!r} must be at least {at_least:g}, got {value!r}")
    return value


def check_nonempty(name: str, value: Any) -> Any:
    """A list parameter that needs at least one entry (``-y "prompts: []"`` is refused here, not in a plot)."""
    value = check_param(name, value, list)
    if not value:
        raise ValueError(f"parameter {name!r} must name at least one entry, got an empty list")
    return value


def check_image(name: str, value: Any, data_dir: str | None = None) -> str:
    """An image parameter: a sample name (:func:`stylecore.data.list_samples`) or a readable image file.

    The file is decoded here (missing, corrupt, truncated files fail in the validation cell with the
    parameter's name), not first in the cell that uses it.
    """
    from .data import list_samples
    from .images import ImageError, load_image

    check_param(name, value, str)
    if value in list_samples():
        return value
    try:
        load_image(value)
    except ImageError as exc:
        raise ValueError(f"parameter {name!r} is neither a sample name (stylecore.data.list_samples()) nor a readable image: {exc}") from None
    return value


def vgg19_bytes_per_pixel(training: bool = True) -> int:
    """Float32 bytes per input pixel of VGG19's activations up to relu5_4 (conv and ReLU outputs, and
    their gradients when ``training``): the lower bound :func:`check_size` compares with the memory."""
    plan = [(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)]  # (channels, convolutions) per block, torchvision's VGG19 "E"
    floats = sum(2 * c * n / 4**i for i, (c, n) in enumerate(plan))  # conv + ReLU output; each block at 1/4 the pixels
    return int(4 * floats * (2 if training else 1))


def _memory_bytes(device: torch.device | str = "cpu") -> int:
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 16 GiB
        return 16 << 30


def check_size(name: str, side: int, bytes_per_pixel: int, device: torch.device | str = "cpu", what: str = "one VGG19 forward and backward") -> int:
    """Refuse an image side whose square would not fit the machine's memory, before anything is allocated.

    ``bytes_per_pixel`` is the caller's estimate per pixel (e.g. :func:`vgg19_bytes_per_pixel`).
    """
    side = check_param(name, side, int, at_least=8)
    need, have = side * side * bytes_per_pixel, _memory_bytes(device)
    if need > have:
        fits = int((have / bytes_per_pixel) ** 0.5)
        raise ValueError(f"parameter {name!r} = {side} would need about {need / 2**30:.1f} GiB for {what} at {side}x{side} px, "
                         f"more than this machine's {have / 2**30:.1f} GiB ({torch.device(device).type}); use at most about {fits}")
    return side


def resolve_device(device: str, choices: tuple[str, ...] = ("auto", "cpu", "cuda")) -> torch.device:
    """A notebook's ``device`` parameter as a torch device: ``"auto"`` is CUDA when available, else the CPU.

    A name in ``choices`` is used as given when torch sees such a device; anything else (``"tpu"``,
    ``"gpu"``) or an absent device is a ``ValueError`` naming the parameter, raised in the validation cell.
    """
    check_param("device", device, str, choices)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"parameter 'device' is {device!r} but torch sees no CUDA device; use device='cpu' (or 'auto')")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError("parameter 'device' is 'mps' but torch sees no Apple GPU; use device='cpu' (or 'auto')")
    return torch.device(device)


class RunOutputs:
    """One output folder: figures, images and a ``summary.json`` that records what was used."""

    def __init__(self, folder: str | os.PathLike[str], notebook: str, parameters: dict[str, Any]) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.notebook = notebook
        self.started = time.perf_counter()
        deterministic = deterministic_from_env()
        self.summary: dict[str, Any] = {
            "notebook": notebook,
            "parameters": parameters,
            "environment": {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
                            "deterministic_algorithms": deterministic},
            "weights": {},
            "experiments": {},
            "files": [],
        }

    def weights(self, key: str, info: Any) -> None:
        """Record which weights a model used (a :class:`stylecore.weights.WeightsInfo`)."""
        self.summary["weights"][key] = info.to_dict() if hasattr(info, "to_dict") else info

    def figure(self, fig: Figure, name: str) -> Path:
        path = save_figure(fig, self.folder / f"{name}.png")
        self.summary["files"].append(path.name)
        return path

    def image(self, image: torch.Tensor, name: str) -> Path:
        path = save_image(image, self.folder / f"{name}.png")
        self.summary["files"].append(path.name)
        return path

    def experiment(self, name: str, **record: Any) -> None:
        """Record numbers for one experiment (final losses, seconds, …)."""
        self.summary["experiments"][name] = record

    def save(self) -> Path:
        """Write ``summary.json`` (also safe to call repeatedly: each call replaces the file)."""
        self.summary["seconds_total"] = round(time.perf_counter() - self.started, 2)
        return write_json(self.folder / "summary.json", self.summary)
