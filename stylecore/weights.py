"""Where pretrained weights come from, and what happens when they cannot be had.

Policy (argument, else ``$STYLECORE_WEIGHTS``, else ``"auto"``):

- ``"pretrained"``: use the real weights or fail with a message that says how to get them;
- ``"random"``: build the same architecture with seeded random weights, touch no network;
- ``"auto"``: pretrained when a local file, the cache or a download provides them,
  otherwise random, with a visible :class:`WeightsFallbackWarning`.

For one checkpoint the sources are tried in this order: a local-file override (argument or
the checkpoint's environment variable), the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
where ``torch.hub`` itself puts downloads), then a download through ``torch.hub``.
Every file is hashed; torch files are opened with ``weights_only=True``.

Whatever was used is described by a :class:`WeightsInfo`, whose ``label`` goes on every
figure so that nobody mistakes a random-weights picture for the paper's.

Other model families (open_clip, diffusers, StyleGAN2) reuse :func:`resolve_policy`,
:class:`WeightsInfo` and :func:`resolve_checkpoint`; their own hub logic stays theirs.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, TypeVar

import torch
from torch import nn

from .data import sha256_file

__all__ = [
    "Checkpoint",
    "Policy",
    "WeightsFallbackWarning",
    "WeightsInfo",
    "WeightsUnavailableError",
    "build_with_weights",
    "hub_checkpoint_dir",
    "load_state_dict_file",
    "random_info",
    "resolve_checkpoint",
    "resolve_policy",
]

Policy = Literal["auto", "pretrained", "random"]
POLICIES: tuple[str, ...] = ("auto", "pretrained", "random")
POLICY_ENV = "STYLECORE_WEIGHTS"
OFFLINE_ENV = "STYLECORE_OFFLINE"  # "1": never try a download (auto falls back at once)
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")  # torch.hub's convention: name-<sha256 prefix>.pth

M = TypeVar("M", bound=nn.Module)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were required but could not be found, fetched or verified."""


class WeightsFallbackWarning(UserWarning):
    """``policy="auto"`` fell back to random weights."""


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a model was built with: name, source and sha256, or a random seed."""

    name: str
    source: str  # "random", "local file", "torch hub cache", "download", …
    sha256: str | None = None
    seed: int | None = None
    location: str | None = None

    @property
    def pretrained(self) -> bool:
        return self.source != "random"

    @property
    def label(self) -> str:
        """One line for a figure: 'VGG19 — RANDOM weights (seed 0)' or 'VGG19 — pretrained …'."""
        if not self.pretrained:
            return f"{self.name} — RANDOM weights (seed {self.seed}), not the paper's"
        digest = f", sha256 {self.sha256[:12]}…" if self.sha256 else ""
        return f"{self.name} — pretrained ({self.source}{digest})"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "pretrained": self.pretrained, "label": self.label}


@dataclass(frozen=True)
class Checkpoint:
    """A downloadable torch checkpoint.

    ``sha256`` is the full expected digest when known; otherwise the prefix that torch.hub
    file names carry (``vgg19-dcbb9e9d.pth``) is checked.
    """

    name: str
    url: str
    env_var: str  # local-file override, e.g. STYLECORE_VGG19_WEIGHTS
    sha256: str | None = None
    license: str = ""

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str | None:
        if self.sha256:
            return self.sha256
        match = _HASH_IN_NAME.search(self.filename)
        return match.group(1) if match else None


def resolve_policy(policy: str | None = None) -> Policy:
    """The policy in force: the argument, else ``$STYLECORE_WEIGHTS``, else ``"auto"``."""
    value = policy if policy is not None else os.environ.get(POLICY_ENV, "auto")
    if not isinstance(value, str) or value not in POLICIES:
        raise ValueError(f"weights policy must be one of {POLICIES}, got {value!r} (from {'argument' if policy is not None else '$' + POLICY_ENV})")
    return value  # type: ignore[return-value]


def hub_checkpoint_dir() -> Path:
    """torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _check_digest(path: Path, expected: str | None, what: str) -> str:
    digest = sha256_file(path)
    if expected and not digest.startswith(expected.lower()):
        raise WeightsUnavailableError(
            f"{what} {path} has sha256 {digest}, expected {expected}…: the file is corrupt or not this checkpoint. "
            "Delete it and download again, or pass the right file."
        )
    return digest


def _download(ckpt: Checkpoint, dest: Path) -> None:
    # torch.hub writes to a temporary file and renames it, and checks the hash prefix.
    torch.hub.download_url_to_file(ckpt.url, str(dest), hash_prefix=ckpt.sha256_prefix, progress=True)


def resolve_checkpoint(
    ckpt: Checkpoint,
    policy: str | None = None,
    local_file: str | os.PathLike[str] | None = None,
    local_sha256: str | None = None,
) -> tuple[Path | None, WeightsInfo | None]:
    """Find a verified file for ``ckpt`` under ``policy``; (None, None) means: build random.

    Raises:
        WeightsUnavailableError: policy "pretrained" and no source worked, or a file failed its hash.
    """
    pol = resolve_policy(policy)
    if pol == "random":
        return None, None
    local = local_file if local_file is not None else os.environ.get(ckpt.env_var) or None
    if local is not None:
        path = Path(local).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"local weights file {path} for {ckpt.name} does not exist (from {'argument' if local_file else '$' + ckpt.env_var})")
        digest = _check_digest(path, local_sha256, "local weights file")
        return path, WeightsInfo(ckpt.name, "local file", digest, location=str(path))
    cached = hub_checkpoint_dir() / ckpt.filename
    if cached.is_file():
        digest = _check_digest(cached, ckpt.sha256_prefix, "cached checkpoint")
        return cached, WeightsInfo(ckpt.name, "torch hub cache", digest, location=str(cached))
    problem = f"${OFFLINE_ENV}=1" if os.environ.get(OFFLINE_ENV) == "1" else None
    if problem is None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            _download(ckpt, cached)
            digest = _check_digest(cached, ckpt.sha256_prefix, "downloaded checkpoint")
            return cached, WeightsInfo(ckpt.name, "download", digest, location=str(cached))
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError; a bad hash is a RuntimeError
            problem = f"{type(exc).__name__}: {exc}"
    howto = (
        f"download {ckpt.url} on a machine with network access and either copy it to {cached} "
        f"or point ${ckpt.env_var} (or local_file=...) at it; or use policy 'random' for the same architecture with random weights"
    )
    if pol == "pretrained":
        raise WeightsUnavailableError(f"pretrained weights for {ckpt.name} are not available ({problem}). To fix: {howto}.")
    warnings.warn(
        f"{ckpt.name}: pretrained weights unavailable ({problem}); using RANDOM weights instead. "
        f"Results will not match the paper. To get the real ones: {howto}.",
        WeightsFallbackWarning,
        stacklevel=3,
    )
    return None, None


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a torch state dict with ``weights_only=True`` (no pickled code runs) on the CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for bad files
        raise WeightsUnavailableError(f"{path} is not a loadable torch state dict ({type(exc).__name__}: {exc}).") from None
    if not isinstance(state, Mapping):
        raise WeightsUnavailableError(f"{path} holds a {type(state).__name__}, not a state dict (mapping of names to tensors).")
    return dict(state)


def random_info(name: str, seed: int) -> WeightsInfo:
    return WeightsInfo(name, "random", seed=seed)


def build_with_weights(
    build: Callable[[], M],
    ckpt: Checkpoint,
    policy: str | None = None,
    local_file: str | os.PathLike[str] | None = None,
    local_sha256: str | None = None,
    seed: int = 0,
    adapt: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> tuple[M, WeightsInfo]:
    """Build a module with ``build()`` under a fixed seed, then load ``ckpt`` into it if the policy allows.

    The seed is applied in a forked RNG, so building a model does not disturb the caller's
    random stream. ``adapt`` maps the file's state dict to the module's key names (for
    checkpoints published in another layout); a key error it raises becomes a clear message.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    path, info = resolve_checkpoint(ckpt, policy, local_file, local_sha256)
    if path is None:
        return model, random_info(ckpt.name, seed)
    state = load_state_dict_file(path)
    try:
        if adapt is not None:
            state = adapt(state)
        model.load_state_dict(state, strict=True)
    except KeyError as exc:
        raise WeightsUnavailableError(f"{path} is not a {ckpt.name} checkpoint: {exc}") from None
    except RuntimeError as exc:
        raise WeightsUnavailableError(f"{path} does not fit the {ckpt.name} architecture: {exc}") from None
    assert info is not None
    return model, info
