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

__all__ = ["RunOutputs", "check_param", "resolve_device", "write_json"]


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def check_param(name: str, value: Any, kind: type | tuple[type, ...], choices: tuple[Any, ...] | None = None) -> Any:
    """Validate a notebook parameter with a message a papermill user can act on.

    A list or dict given as a JSON string (``-p styles '["a", "b"]'``: papermill's ``-p`` passes
    strings) is parsed; ints are accepted where floats are asked for.
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
    return value


def resolve_device(device: str) -> torch.device:
    """A notebook's ``device`` parameter as a torch device: ``"auto"`` is CUDA when available, else the CPU.

    ``"cpu"`` and ``"cuda"`` are used as given; anything else is a :func:`check_param` error.
    """
    check_param("device", device, str, ("auto", "cpu", "cuda"))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class RunOutputs:
    """One output folder: figures, images and a ``summary.json`` that records what was used."""

    def __init__(self, folder: str | os.PathLike[str], notebook: str, parameters: dict[str, Any]) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.notebook = notebook
        self.started = time.perf_counter()
        self.summary: dict[str, Any] = {
            "notebook": notebook,
            "parameters": parameters,
            "environment": {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads()},
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
