"""stylecore.cache: damaged cache files are detected, reported once and recomputed; concurrent fills leave one valid file."""

from __future__ import annotations

import multiprocessing as mp
import warnings
from pathlib import Path

import pytest
import torch

from stylecore.cache import CacheWarning, load_checked, save_atomic

from .faults import garble, truncate


def _obj() -> dict:
    return {"w": torch.arange(10_000, dtype=torch.float32), "history": [1.0, 0.5], "step": 3}


def test_valid_file_loads_without_warning_and_absent_is_none(tmp_path: Path) -> None:
    path = save_atomic(_obj(), tmp_path / "c.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = load_checked(path, "test cache")
        assert load_checked(tmp_path / "absent.pt", "test cache") is None
    assert torch.equal(got["w"], _obj()["w"]) and got["history"] == [1.0, 0.5]


@pytest.mark.parametrize("damage", [truncate, garble, lambda p: p.write_bytes(b"junk")], ids=["truncated", "garbled", "junk"])
def test_damaged_file_is_one_warning_moved_aside_and_none(tmp_path: Path, damage) -> None:
    path = save_atomic(_obj(), tmp_path / "c.pt")
    damage(path)
    if damage is garble:  # the reason for the CRC check: torch.load alone returns the damaged tensor
        assert not torch.equal(torch.load(path, weights_only=True)["w"], _obj()["w"])
    with pytest.warns(CacheWarning, match=r"test cache: .*c\.pt is truncated or garbled .* recomputing it") as record:
        assert load_checked(path, "test cache") is None
    assert len([w for w in record if issubclass(w.category, CacheWarning)]) == 1
    assert not path.exists() and (tmp_path / "c.pt.corrupt").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checked(path, "test cache") is None  # the recompute then writes a fresh file; no second warning meanwhile


def _fill(path: str, seed: int, times: int) -> None:
    for _ in range(times):
        save_atomic({"w": torch.full((200_000,), float(seed))}, path)


def test_two_processes_filling_the_same_key_leave_one_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "key.pt"
    # spawn, not fork: a forked child of a process whose OpenMP pool is already running (any earlier torch op in the
    # session) can hang in its first parallel op, as the whole suite showed
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_fill, args=(str(path), s, 15)) for s in (1, 2)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=120)
            assert p.exitcode == 0
    finally:  # a hung writer must not outlive the test (multiprocessing joins it at interpreter exit)
        for p in procs:
            if p.is_alive():
                p.kill()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = load_checked(path, "test cache")["w"]
    assert w.shape == (200_000,) and float(w[0]) in (1.0, 2.0) and torch.all(w == w[0])  # one writer's whole file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pt"]  # no temporary file left
