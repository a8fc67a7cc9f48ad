from __future__ import annotations

import pytest
import torch

from stylecore.optim import optimize_pixels


def _quadratic(target: torch.Tensor):
    def loss(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"fit": (x - target).pow(2).sum(), "small": 0.1 * x.pow(2).sum()}

    return loss


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loss_decreases_and_history_is_recorded(optimizer: str) -> None:
    target = torch.rand(1, 3, 8, 8)
    res = optimize_pixels(torch.zeros(1, 3, 8, 8), _quadratic(target), steps=40, optimizer=optimizer, lr=0.05 if optimizer == "adam" else None, snapshot_every=15, progress=False)
    total = res.history["total"]
    assert set(res.history) == {"fit", "small", "total"}
    # minimum of |x − t|² + 0.1|x|² is at x = t / 1.1, with value |t|² · 0.1 / 1.1
    assert len(total) == 41 and total[-1] == pytest.approx(float(target.pow(2).sum()) * 0.1 / 1.1, rel=0.01 if optimizer == "lbfgs" else 0.06)
    if optimizer == "lbfgs":  # Adam's momentum may overshoot; L-BFGS on a convex quadratic must not
        assert all(b <= a + 1e-6 for a, b in zip(total, total[1:])), "loss must not increase on a convex problem"
    assert [s for s, _ in res.snapshots] == [15, 30]
    assert res.final()["total"] == pytest.approx(total[-1])
    assert torch.allclose(res.image, target / 1.1, atol=0.01 if optimizer == "lbfgs" else 0.1)
    assert res.seconds > 0 and res.steps == 40


def test_history_total_is_sum_of_terms() -> None:
    res = optimize_pixels(torch.zeros(1, 3, 4, 4), _quadratic(torch.rand(1, 3, 4, 4)), steps=3, progress=False)
    for i in range(4):
        assert res.history["total"][i] == pytest.approx(res.history["fit"][i] + res.history["small"][i], rel=1e-5)


def test_clamp_keeps_pixels_in_range() -> None:
    res = optimize_pixels(torch.full((1, 3, 4, 4), 0.5), _quadratic(torch.full((1, 3, 4, 4), 3.0)), steps=5, optimizer="adam", lr=0.5, progress=False)
    assert res.image.max() <= 1.0
    free = optimize_pixels(torch.full((1, 3, 4, 4), 0.5), _quadratic(torch.full((1, 3, 4, 4), 3.0)), steps=5, optimizer="adam", lr=0.5, clamp=False, progress=False)
    assert free.image.max() > 1.0


def test_deterministic_for_a_seed() -> None:
    def noisy(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"l": (x - torch.rand_like(x)).pow(2).sum()}

    a = optimize_pixels(torch.zeros(1, 3, 4, 4), noisy, steps=5, optimizer="adam", progress=False, seed=1)
    b = optimize_pixels(torch.zeros(1, 3, 4, 4), noisy, steps=5, optimizer="adam", progress=False, seed=1)
    assert torch.equal(a.image, b.image) and a.history == b.history


def test_input_is_not_modified_and_bad_arguments() -> None:
    init = torch.zeros(1, 3, 4, 4)
    optimize_pixels(init, _quadratic(torch.ones(1, 3, 4, 4)), steps=2, progress=False)
    assert init.abs().sum() == 0
    with pytest.raises(ValueError, match="optimizer"):
        optimize_pixels(init, _quadratic(init), steps=1, optimizer="sgd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps"):
        optimize_pixels(init, _quadratic(init), steps=2.5)  # type: ignore[arg-type]


def test_target_loss_stops_early_and_times_are_recorded() -> None:
    target = torch.rand(1, 3, 8, 8)
    full = optimize_pixels(torch.zeros(1, 3, 8, 8), _quadratic(target), steps=30, progress=False)
    assert full.steps == 30 and len(full.times) == len(full.history["total"]) == 31
    assert all(b >= a for a, b in zip(full.times, full.times[1:])) and full.times[-1] <= full.seconds
    goal = full.history["total"][5]
    early = optimize_pixels(torch.zeros(1, 3, 8, 8), _quadratic(target), steps=30, progress=False, target_loss=goal)
    reached = next(i for i, v in enumerate(early.history["total"]) if v <= goal)
    # the run stops one step after the first recorded total at or below the goal (the total of a step's start point)
    assert early.steps == reached + 1 < 30 and early.history["total"][: reached + 1] == full.history["total"][: reached + 1]
    assert all(v > goal for v in early.history["total"][:reached])
