"""Named sample images: a manifest in ``data/manifest.json``, checked by sha256.

Lookup order for a file entry (first hit wins):

1. a local data folder: the ``data_dir`` argument, else ``$STYLECORE_DATA_DIR``
   (CI points it at ``../shared/data``); the manifest's ``path`` is relative to it;
2. the user's cache: ``$STYLECORE_CACHE/data`` or ``~/.cache/stylecore/data``;
3. download from the entry's commit-pinned URL into the cache.

Every file is hashed before it is used. A file whose sha256 does not match is never used
silently: :class:`ChecksumError` says which file, which hash was expected and what to do.
scikit-image entries (``astronaut``, ``chelsea`` …) ship inside that package.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .images import atomic_path, load_image, resize_longest, to_tensor

__all__ = [
    "ChecksumError",
    "DataError",
    "Sample",
    "cache_dir",
    "data_dir",
    "list_samples",
    "load_sample",
    "manifest_path",
    "sample",
    "sample_path",
    "sha256_file",
]

DATA_DIR_ENV = "STYLECORE_DATA_DIR"
CACHE_ENV = "STYLECORE_CACHE"
MANIFEST_ENV = "STYLECORE_MANIFEST"


class DataError(LookupError):
    """A sample image could not be found or fetched; the message says what to do."""


class ChecksumError(DataError):
    """A file's sha256 differs from the one recorded for it."""


@dataclass(frozen=True)
class Sample:
    """One manifest entry."""

    name: str
    kind: str  # "content" | "style" | "mask" | "result"
    license: str
    credit: str
    path: str | None = None  # relative to a data folder
    url: str | None = None
    sha256: str | None = None
    skimage: str | None = None  # name of a scikit-image data function

    @property
    def label(self) -> str:
        """Short credit line for figure captions."""
        return f"{self.credit} — {self.license}"


def manifest_path() -> Path:
    """``$STYLECORE_MANIFEST`` or the project's ``data/manifest.json``."""
    env = os.environ.get(MANIFEST_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data" / "manifest.json"


@functools.lru_cache(maxsize=8)
def _parse_manifest(text: str) -> dict[str, Sample]:
    raw = json.loads(text)
    return {name: Sample(name=name, **entry) for name, entry in raw["samples"].items()}


def _manifest() -> dict[str, Sample]:
    path = manifest_path()
    if not path.exists():
        raise DataError(f"sample manifest {path} not found; set ${MANIFEST_ENV} or reinstall the project with `pip install -e .`")
    return _parse_manifest(path.read_text(encoding="utf-8"))  # cached by content, so edits are seen


def list_samples(kind: str | None = None) -> list[str]:
    """Names of the sample images, optionally only those of one ``kind``."""
    return sorted(n for n, s in _manifest().items() if kind is None or s.kind == kind)


def sample(name: str) -> Sample:
    """The manifest entry called ``name``."""
    entries = _manifest()
    if name not in entries:
        raise DataError(f"no sample image called {name!r}; known names: {', '.join(sorted(entries))}")
    return entries[name]


def data_dir(override: str | os.PathLike[str] | None = None) -> Path | None:
    """The local data folder in force: the argument, else ``$STYLECORE_DATA_DIR``, else None."""
    value = override if override is not None else os.environ.get(DATA_DIR_ENV)
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist (from {'argument' if override else '$' + DATA_DIR_ENV}); fix the path or unset it")
    return path


def cache_dir() -> Path:
    """Where downloaded samples are kept: ``$STYLECORE_CACHE/data`` or ``~/.cache/stylecore/data``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "stylecore"
    return Path(root) / "data"


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, entry: Sample) -> Path:
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ChecksumError(
            f"{path} is not the file recorded for sample {entry.name!r}: sha256 {actual} != expected {entry.sha256}. "
            "Delete or replace it (a cached copy is re-downloaded next time); never edit the manifest to match a file you have not checked."
        )
    return path


def _download(entry: Sample, dest: Path) -> Path:
    if not entry.url:
        raise DataError(f"sample {entry.name!r} has no URL and is not in any data folder")
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(entry.url, timeout=60) as resp:
            tmp.write_bytes(resp.read())
            actual = sha256_file(tmp)
            if actual != entry.sha256:  # a bad download never reaches the cache
                raise ChecksumError(
                    f"download of sample {entry.name!r} from {entry.url} has sha256 {actual}, expected {entry.sha256}; "
                    "it was discarded. The server may have changed the file: report it, do not edit the manifest to match."
                )
    except ChecksumError:
        raise
    except OSError as exc:
        raise DataError(
            f"could not download sample {entry.name!r} from {entry.url} ({exc}). "
            f"Offline? Put the file at <folder>/{entry.path} and set ${DATA_DIR_ENV}=<folder>."
        ) from None
    return dest


def sample_path(name: str, data_dir_override: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Path to a verified copy of the sample file ``name`` (see module docstring for lookup order)."""
    entry = sample(name)
    if entry.skimage:
        dest = cache_dir() / "skimage" / f"{entry.skimage}.png"
        if not dest.exists():
            from .images import save_image

            save_image(_skimage_tensor(entry.skimage), dest)
        return dest
    assert entry.path is not None
    local = data_dir(data_dir_override)
    if local is not None and (local / entry.path).exists():
        return _verify(local / entry.path, entry)
    cached = cache_dir() / entry.path
    if cached.exists():
        return _verify(cached, entry)
    if not download:
        raise DataError(f"sample {entry.name!r} is neither in a data folder nor cached, and download=False")
    return _download(entry, cached)


def _skimage_tensor(func_name: str) -> torch.Tensor:
    import skimage.data

    arr = np.asarray(getattr(skimage.data, func_name)())
    return to_tensor(arr)


def load_sample(name: str, size: int | None = None, data_dir: str | os.PathLike[str] | None = None) -> torch.Tensor:
    """Load sample ``name`` as a (1, 3, H, W) tensor in [0, 1], longest side ``size`` if given."""
    entry = sample(name)
    img = _skimage_tensor(entry.skimage) if entry.skimage else load_image(sample_path(name, data_dir))
    return resize_longest(img, size) if size is not None else img
