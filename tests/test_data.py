from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from stylecore import data
from stylecore.data import ChecksumError, DataError


def test_manifest_entries_are_complete() -> None:
    names = data.list_samples()
    assert {"tubingen", "starry_night", "the_scream", "shipwreck", "astronaut", "dpst_in1", "dpst_seg_tar21"} <= set(names)
    for name in names:
        s = data.sample(name)
        assert s.license and s.credit
        if not s.skimage:
            assert s.path and s.url and s.url.startswith("https://") and len(s.sha256 or "") == 64
            assert any(len(part) == 40 for part in s.url.split("/")), f"{name}: URL is not pinned to a commit"


def test_manifest_matches_shared_checksums(shared_data: Path) -> None:
    sums = dict(reversed(line.split()) for line in (shared_data / "SHA256SUMS").read_text().splitlines())
    for name in data.list_samples():
        s = data.sample(name)
        if s.path:
            assert sums[f"./{s.path}"] == s.sha256, name


def test_local_folder_lookup_verifies_hash(shared_data: Path) -> None:
    path = data.sample_path("tubingen", shared_data)
    assert path == shared_data / "photos" / "tubingen.jpg"
    img = data.load_sample("tubingen", size=64, data_dir=shared_data)
    assert img.shape[0:2] == (1, 3) and max(img.shape[-2:]) == 64


def test_env_var_selects_data_folder(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECORE_DATA_DIR", str(shared_data))
    assert data.sample_path("starry_night") == shared_data / "artworks" / "starry_night.jpg"


def test_wrong_sha256_is_never_used(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    bad = tmp_path / "photos" / "tubingen.jpg"
    shutil.copy(shared_data / "photos" / "tubingen.jpg", bad)
    with open(bad, "r+b") as fh:  # flip one byte
        fh.seek(1000)
        b = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ChecksumError, match="sha256") as info:
        data.load_sample("tubingen", data_dir=tmp_path)
    assert str(bad) in str(info.value)


def _manifest_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, sha: str) -> None:
    doc = {"version": 1, "samples": {"thing": {"path": "x/thing.png", "url": url, "sha256": sha, "license": "CC0", "credit": "test", "kind": "content"}}}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    monkeypatch.setenv("STYLECORE_MANIFEST", str(tmp_path / "m.json"))


def test_download_goes_to_cache_only_when_hash_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    src = tmp_path / "remote.png"
    Image.new("RGB", (5, 3), (10, 20, 30)).save(src)
    _manifest_with(tmp_path, monkeypatch, src.as_uri(), "0" * 64)
    with pytest.raises(ChecksumError):
        data.sample_path("thing")
    assert not (data.cache_dir() / "x" / "thing.png").exists()  # the bad download was not kept

    _manifest_with(tmp_path, monkeypatch, src.as_uri(), data.sha256_file(src))
    path = data.sample_path("thing")
    assert path == data.cache_dir() / "x" / "thing.png"
    assert torch.allclose(data.load_sample("thing")[0, :, 0, 0], torch.tensor([10, 20, 30]) / 255.0)
    src.unlink()  # now served from the cache
    assert data.sample_path("thing") == path


def test_download_failure_says_how_to_work_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _manifest_with(tmp_path, monkeypatch, (tmp_path / "missing.png").as_uri(), "0" * 64)
    with pytest.raises(DataError, match="STYLECORE_DATA_DIR"):
        data.sample_path("thing")


def test_skimage_sample_needs_no_download() -> None:
    img = data.load_sample("astronaut", size=32)
    assert img.shape == (1, 3, 32, 32)
    assert data.sample_path("astronaut").exists()


def test_unknown_name_and_bad_folder() -> None:
    with pytest.raises(DataError, match="known names"):
        data.sample("nonexistent")
    with pytest.raises(DataError, match="does not exist"):
        data.data_dir("/nonexistent/folder")
