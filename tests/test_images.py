from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylecore.images import ImageError, atomic_path, load_image, resize_longest, save_image, to_pil


def _rgb(h: int = 6, w: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_rgb_png_roundtrip_exact(tmp_path: Path) -> None:
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    t = load_image(tmp_path / "a.png")
    assert t.shape == (1, 3, 6, 10) and t.dtype == torch.float32
    assert torch.equal((t[0].permute(1, 2, 0) * 255).round().to(torch.uint8), torch.from_numpy(arr))
    save_image(t, tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)


def test_rgba_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 255  # top half opaque, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    t = load_image(tmp_path / "a.png")
    assert torch.allclose(t[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(t[0, :, 3, 0], torch.tensor([1.0, 1.0, 1.0]))


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    Image.fromarray(_rgb()[..., 0], "L").save(tmp_path / "g.png")
    t = load_image(tmp_path / "g.png")
    assert t.shape[1] == 3 and torch.equal(t[:, 0], t[:, 1]) and torch.equal(t[:, 1], t[:, 2])


def test_16bit_keeps_full_range(tmp_path: Path) -> None:
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")  # PIL stores mode I;16
    t = load_image(tmp_path / "d.png")
    assert torch.allclose(t[0, 0, 0], torch.tensor([0.0, 32768 / 65535, 1.0]), atol=1e-6)


def test_palette_image(tmp_path: Path) -> None:
    img = Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    img.save(tmp_path / "p.png")
    desired = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
    t = load_image(tmp_path / "p.png")
    assert np.allclose(t[0].permute(1, 2, 0).numpy(), desired)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    arr = _rgb(4, 8)  # landscape pixels
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° CW to display"
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    t = load_image(tmp_path / "r.jpg")
    assert t.shape[-2:] == (8, 4)  # displayed as portrait


@pytest.mark.parametrize(
    "content, match",
    [(b"not an image at all", "not an image"), (None, "corrupt or truncated")],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "bad.png"
    if content is None:
        Image.fromarray(_rgb(64, 64)).save(path)
        path.write_bytes(path.read_bytes()[:200])  # truncated
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=match) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_resize_longest_side_and_aspect() -> None:
    t = torch.rand(1, 3, 300, 200)
    out = resize_longest(t, 150)
    assert out.shape == (1, 3, 150, 100)
    assert resize_longest(t, 300) is t
    with pytest.raises(ValueError, match="size must be an int"):
        resize_longest(t, 150.0)  # type: ignore[arg-type]


def test_resize_preserves_constant_image() -> None:
    t = torch.full((1, 3, 64, 48), 0.25)
    assert torch.allclose(resize_longest(t, 20), torch.full((1, 3, 20, 15), 0.25))


def test_save_is_atomic_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["keep.png"]  # no temp file left behind


def test_save_rejects_non_png(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="PNG"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "x.jpg")


def test_to_pil_rounds() -> None:
    t = torch.full((1, 3, 1, 1), 0.999)
    assert to_pil(t).getpixel((0, 0)) == (255, 255, 255)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width × height (PIL reads the size before decoding anything)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_oversized_image_gets_the_projects_error(tmp_path: Path) -> None:
    """200 megapixels: PIL's DecompressionBombError must not escape; the limit is a parameter."""
    path = tmp_path / "huge.png"
    _png_header_only(path, 20_000, 10_000)
    with pytest.raises(ImageError, match=r"huge.png: 20000×10000 = 200 megapixels .* max_pixels"):
        load_image(path)
    with pytest.raises(ImageError, match="max_pixels"):
        load_image(path, max_pixels=150_000_000)
    # without the limit the file is decoded and found truncated — still our error, naming the file
    with pytest.raises(ImageError, match="huge.png: the image is corrupt or truncated"):
        load_image(path, max_pixels=None)
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30)).save(small)
    assert load_image(small, max_pixels=1200).shape == (1, 3, 30, 40)
    with pytest.raises(ImageError, match="more than the limit"):
        load_image(small, max_pixels=1199)
