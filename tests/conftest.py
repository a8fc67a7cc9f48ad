"""Shared fixtures: a sample-data folder, and isolation of caches from the user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("STYLECORE_DATA_DIR") or ROOT.parent / "shared" / "data")

torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets empty stylecore and torch-hub caches and no stray weights env vars."""
    monkeypatch.setenv("STYLECORE_CACHE", str(tmp_path / "stylecore-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    torch.hub.set_dir(str(tmp_path / "torch-home" / "hub"))
    for var in ("STYLECORE_WEIGHTS", "STYLECORE_VGG19_WEIGHTS", "STYLECORE_MANIFEST"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "SHA256SUMS").exists():
        pytest.skip(f"sample data folder {SHARED_DATA} not present (set STYLECORE_DATA_DIR)")
    return SHARED_DATA
