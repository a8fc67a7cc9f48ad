"""Checkpoints that live on Google Drive (StyleGAN2, IR-SE50): found locally, never downloaded.

The project's policy (:mod:`stylecore.weights`) applies: ``"pretrained"`` fails with a message
that says where to get the file, ``"random"`` builds the same architecture, ``"auto"`` falls
back to random with a :class:`~stylecore.weights.WeightsFallbackWarning`. Google Drive answers
large files with a confirmation page, so instead of a broken automatic download the user puts
the file in the torch hub folder or points the checkpoint's environment variable at it.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import sha256_file
from ..weights import WeightsFallbackWarning, WeightsInfo, WeightsUnavailableError, hub_checkpoint_dir, resolve_policy

__all__ = ["ManualCheckpoint", "load_torch_file", "resolve_manual"]


@dataclass(frozen=True)
class ManualCheckpoint:
    name: str
    filename: str  # looked for in the torch hub checkpoint folder
    url: str  # where a person downloads it
    env_var: str  # local-file override
    sha256: str | None = None  # full digest when one is published


def resolve_manual(ckpt: ManualCheckpoint, policy: str | None = None, local_file: str | os.PathLike[str] | None = None, local_sha256: str | None = None) -> tuple[Path | None, WeightsInfo | None]:
    """A verified file for ``ckpt`` (argument, ``$env_var``, hub folder), or (None, None): build random."""
    pol = resolve_policy(policy)
    if pol == "random":
        return None, None
    local = local_file if local_file is not None else os.environ.get(ckpt.env_var) or None
    if local is not None:
        path, source = Path(local).expanduser(), "local file"
        if not path.is_file():
            raise WeightsUnavailableError(f"local weights file {path} for {ckpt.name} does not exist (from {'argument' if local_file else '$' + ckpt.env_var})")
        expected = local_sha256
    else:
        path, source, expected = hub_checkpoint_dir() / ckpt.filename, "torch hub folder", ckpt.sha256
    if path.is_file():
        digest = sha256_file(path)
        if expected and not digest.startswith(expected.lower()):
            raise WeightsUnavailableError(f"{path} has sha256 {digest}, expected {expected}: not the {ckpt.name} file. Replace it.")
        return path, WeightsInfo(ckpt.name, source, digest, location=str(path))
    howto = f"download {ckpt.url} in a browser and save it as {path} or point ${ckpt.env_var} (or local_file=...) at it; or use weights='random'"
    if pol == "pretrained":
        raise WeightsUnavailableError(f"pretrained weights for {ckpt.name} are not available. To fix: {howto}.")
    warnings.warn(f"{ckpt.name}: no local file; using RANDOM weights, which do not make the paper's pictures. To get the real ones: {howto}.", WeightsFallbackWarning, stacklevel=3)
    return None, None


def load_torch_file(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """``torch.load(weights_only=True)`` on the CPU; argparse ``Namespace`` (training checkpoints' ``args``) allowed."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad files
        raise WeightsUnavailableError(f"{path} is not a loadable torch checkpoint ({type(exc).__name__}: {str(exc)[:300]}).") from None
    if not isinstance(obj, Mapping):
        raise WeightsUnavailableError(f"{path} holds a {type(obj).__name__}, not a checkpoint dictionary.")
    return obj
