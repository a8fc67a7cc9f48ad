"""Fig. 5 / Fig. 6 arithmetic of notebook 03 (stylecore.cin.experiments) against naive loops, and the verdict rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stylecore.cin.experiments import (
    LEARNED_MARGIN,
    fig5_verdict,
    fig6_row,
    fig6_verdict,
    learned,
    matched_steps,
    n_style_row,
    style_curve,
    verdict_word,
    windowed,
)


def _naive_windowed(steps, values, total, window):
    out = []
    for t in range(1, total + 1):
        got = [v for j, v in zip(steps, values) if t - window < j + 1 <= t]
        out.append(sum(got) / len(got) if got else math.nan)
    return out


def test_windowed_matches_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    steps = sorted(rng.choice(40, 17, replace=False).tolist())
    values = rng.random(17).tolist()
    for window in (1, 3, 8):
        actual, desired = windowed(steps, values, 40, window), _naive_windowed(steps, values, 40, window)
        assert np.allclose(actual, desired, equal_nan=True)
    assert math.isnan(windowed([5], [1.0], 10, 2)[2])  # no value in (1, 3]
    with pytest.raises(ValueError, match="window"):
        windowed([0], [1.0], 1, 0)


def test_style_curve_keeps_only_the_steps_of_one_style() -> None:
    history = {"style_index": [0, 1, 0, 1, 1], "style": [1.0, 10.0, 3.0, 20.0, 30.0], "content": [0.0] * 5, "total": [0.0] * 5}
    c0 = style_curve(history, 0, 2)["style"]
    assert c0[:4] == [1.0, 1.0, 3.0, 3.0] and math.isnan(c0[4])  # step 5: the window (3, 5] holds only style 1
    assert style_curve(history, None, 1)["style"] == history["style"]


def _losses(style: float, content: float = 1.0) -> dict[str, float]:
    return {"style": style, "content": content, "total": style + content}


def test_n_style_row_and_matched_steps() -> None:
    r = n_style_row(0, "a", _losses(0.9, 2.2), _losses(1.0, 2.0), _losses(5.0, 0.5))
    assert r["d_style"] == pytest.approx(-0.1) and r["d_content"] == pytest.approx(0.1)
    a, b = [2.0, 4.0, 3.0, 1.2], [1.0, 2.0, 2.0, 1.0]
    m = matched_steps([(a, b), ([math.nan] * 4, b)], 4)  # the NaN pair is skipped
    assert m == pytest.approx({1: 1.0, 2: 1.0, 3: 0.5, 4: 0.2})


def test_learned_is_the_stated_margin() -> None:
    assert learned(0.9, 1.0) and not learned(0.91, 1.0) and LEARNED_MARGIN == 0.1
    assert learned(0.5, 1.0, margin=0.5) and not learned(1.1, 1.0)


def test_fig5_verdict_is_not_evaluable_when_a_network_did_not_learn() -> None:
    good = [n_style_row(0, s, _losses(0.95), _losses(1.0), _losses(3.0)) for s in "ab"]
    v = fig5_verdict(good)
    assert v["evaluable"] and v["style"] and v["printed"]["style"] == "reproduced"  # d_style −5 %: inside −8.9 ± 16.5 %
    bad = good[:1] + [n_style_row(0, "b", _losses(2.9), _losses(1.0), _losses(3.0))]  # the N-style network sits at the untrained loss
    v = fig5_verdict(bad)
    assert not v["evaluable"] and v["printed"] == {"style": "not evaluable", "content": "not evaluable"}
    far = [n_style_row(0, s, _losses(0.5), _losses(1.0), _losses(3.0)) for s in "ab"]  # −50 %: outside the band
    assert fig5_verdict(far)["printed"]["style"] == "not reproduced"


def test_fig6_row_and_verdict() -> None:
    r = fig6_row(0, _losses(0.5), _losses(1.0), _losses(2.0), _losses(3.0), [3.0, 2.0, 1.5], [4.0, 1.6, 1.4])
    assert r["d_total"] == pytest.approx((1.5 - 2.0) / 2.0) and r["scratch_steps_to_match"] == 3 and r["speedup"] == pytest.approx(1.0)
    assert fig6_row(0, _losses(0.5), _losses(1.0), _losses(2.0), _losses(3.0), [3.0, 1.0], [4.0, 2.0])["speedup"] is None
    v = fig6_verdict([r])
    assert v["evaluable"] and v["faster"] and v["printed"]["faster"] == "reproduced"
    stuck = fig6_row(0, _losses(1.95), _losses(1.0), _losses(2.0), _losses(3.0), [3.0], [4.0])  # γ/β-only barely moved
    assert fig6_verdict([stuck])["printed"]["faster"] == "not evaluable"
    assert verdict_word(True, False) == "not reproduced"
