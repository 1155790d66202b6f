"""Window plans cover every position and their crossfade weights sum to 1."""

import numpy as np
import pytest

from saga_sr.inference.windows import plan_windows, window_weights


@pytest.mark.parametrize(
    "total,length,overlap",
    [(5, 8, 2), (100, 16, 4), (16, 10, 5), (17, 10, 2), (1000, 128, 32), (129, 128, 32), (128, 128, 32), (7, 3, 0)],
)
def test_plan_covers_and_weights_sum_to_one(total, length, overlap):
    plan = plan_windows(total, length, overlap)
    acc = np.zeros(total)
    for i in range(len(plan)):
        s, e = plan.span(i)
        assert 0 <= s and e <= total and e - s == plan.length
        w = window_weights(plan, i)
        assert (w > 0).all()
        acc[s:e] += w
        if i:
            assert plan.span(i - 1)[1] - s >= min(overlap, length)  # overlap kept
    np.testing.assert_allclose(acc, 1.0, atol=1e-6)


def test_random_plans_and_sample_scaling():
    rng = np.random.default_rng(0)
    for _ in range(50):
        length = int(rng.integers(2, 40))
        overlap = int(rng.integers(0, length))
        total = int(rng.integers(1, 400))
        plan = plan_windows(total, length, overlap).scaled(4)
        acc = np.zeros(plan.total)
        for i in range(len(plan)):
            s, e = plan.span(i)
            acc[s:e] += window_weights(plan, i)
        np.testing.assert_allclose(acc, 1.0, atol=1e-6)


def test_weights_are_linear_ramps():
    plan = plan_windows(20, 12, 4)
    assert plan.starts == (0, 8)
    w0 = window_weights(plan, 0)
    np.testing.assert_allclose(w0[:8], 1.0)
    np.testing.assert_allclose(w0[8:], [0.875, 0.625, 0.375, 0.125])


def test_bad_plans_rejected():
    with pytest.raises(ValueError):
        plan_windows(0, 8, 2)
    with pytest.raises(ValueError):
        plan_windows(10, 8, 8)
