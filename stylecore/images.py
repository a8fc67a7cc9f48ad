"""Image I/O: any file PIL reads -> float tensor (1, 3, H, W) in [0, 1], and back.

Every notebook starts here, so the errors are written for people: a missing, corrupt or
unsupported file raises :class:`ImageError` naming the file and what to do about it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageError",
    "atomic_path",
    "load_image",
    "resize_longest",
    "save_image",
    "to_numpy",
    "to_pil",
    "to_tensor",
]


class ImageError(ValueError):
    """An image could not be read or written; the message names the file and the fix."""


#: Largest image :func:`load_image` decodes by default, in pixels (100 megapixels, ≈ 1.2 GB as
#: float32 RGB). PIL's own guard against decompression bombs stops at 179 MP with its own
#: exception; this limit turns every oversized file into an :class:`ImageError`.
MAX_PIXELS = 100_000_000


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A reader never sees a half-written file, and a crash leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to an (H, W, 3) float32 array in [0, 1].

    Alpha is composited over white (what a viewer shows); 16-bit and 32-bit integer
    grayscale keep their full range instead of being clipped at 255.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0
        grey = np.clip(arr / top, 0.0, 1.0).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def load_image(path: str | os.PathLike[str], max_size: int | None = None, max_pixels: int | None = MAX_PIXELS) -> torch.Tensor:
    """Load an image file as a float tensor of shape (1, 3, H, W) with values in [0, 1].

    EXIF orientation is applied; RGBA (over white), palette, grayscale and 16-bit images
    become RGB. ``max_size`` resizes so that the longest side equals it. ``max_pixels``
    refuses larger files before decoding them (None: no limit, for files you trust).

    Raises:
        ImageError: the file is missing, is not an image, is too large, truncated or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file. Check the path, or use stylecore.data.list_samples() for built-in images.")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file.")
    saved_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # the size is checked below, with a message of ours
        with Image.open(path) as img:
            w, h = img.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageError(
                    f"{path}: {w}×{h} = {w * h / 1e6:.0f} megapixels is more than the limit of {max_pixels / 1e6:.0f} MP "
                    "(max_pixels). Downscale the file first, or pass max_pixels=None if you trust it and have the memory."
                )
            img.load()  # force decoding now so truncated files fail here, not later
            img = ImageOps.exif_transpose(img)
            arr = _pil_to_rgb(img)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image PIL can read (is it really a PNG/JPEG/TIFF…?).") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: the image is corrupt or truncated ({exc}). Re-download or re-export it.") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit
    tensor = to_tensor(arr)
    return resize_longest(tensor, max_size) if max_size is not None else tensor


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (H, W) array (uint8 or float in [0, 1]) -> (1, 3, H, W) float32 tensor."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"expected an (H, W, 3) image array, got shape {arr.shape}")
    arr = arr[..., :3].astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).clamp(0.0, 1.0).contiguous()


def resize_longest(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, C, H, W) so that max(H, W) == size, keeping the aspect ratio.

    Uses antialiased bilinear interpolation (downscaling without aliasing matters for
    style statistics: aliasing adds high-frequency texture that is not in the painting).
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size must be an int >= 8 (pixels of the longest side), got {size!r}")
    _, _, h, w = image.shape
    scale = size / max(h, w)
    new_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    if new_hw == (h, w):
        return image
    out = F.interpolate(image, size=new_hw, mode="bilinear", align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0)


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) tensor -> (H, W, 3) float array in [0, 1] for plotting."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected a single image (1, 3, H, W), got {tuple(image.shape)}")
        image = image[0]
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def to_pil(image: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) tensor in [0, 1] -> 8-bit RGB PIL image (rounded, not truncated)."""
    return Image.fromarray(np.round(to_numpy(image) * 255.0).astype(np.uint8), mode="RGB")


def save_image(image: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Save a (1, 3, H, W) tensor as a PNG, atomically (write a temp file, then rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ImageError(f"{path}: save_image writes PNG only; use a .png file name.")
    with atomic_path(path) as tmp:
        to_pil(image).save(tmp, format="PNG")
    return path
