"""Cache and checkpoint files: written atomically, checked when read, recomputed when damaged.

Every cache of the collection (trained CIN networks and their checkpoints, VGG normalisation means,
channel relevance, IDL and mapper checkpoints, CLIPstyler checkpoints) is a ``torch.save`` file written
through :func:`save_atomic`: a unique temporary file beside the target, renamed onto it, so a reader
never sees half a file and two processes filling the same key at once leave one complete file (the
last rename wins; both wrote the same result for the same key).

``torch.load`` alone does not notice damaged tensor bytes (their zip records are not CRC-checked when
read), so :func:`load_checked` first verifies every record's CRC32 with :mod:`zipfile`, then loads with
``weights_only=True``. A truncated or garbled file gives one :class:`CacheWarning`, is moved aside
(``<name>.corrupt``) and the caller recomputes, as if there were no file; it is never used silently.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from .images import atomic_path

__all__ = ["CacheWarning", "load_checked", "save_atomic"]


class CacheWarning(UserWarning):
    """A cache file was unreadable and is recomputed."""


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_checked(path: str | os.PathLike[str], what: str) -> Any | None:
    """The object in ``path``, or None when there is no file or it is damaged (one warning; the file is moved aside)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every record and compares its CRC32
        if bad is not None:
            raise ValueError(f"record {bad} fails its CRC32 check")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, EOFError, UnpicklingError, RuntimeError, …: all mean "damaged"
        aside = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        warnings.warn(f"{what}: {path} is truncated or garbled ({type(exc).__name__}: {exc}); moved to {aside.name}, recomputing it",
                      CacheWarning, stacklevel=2)
        return None
