"""Known answers for the time grids and the Euler sampler."""

import pytest
import torch

from saga_sr.inference.samplers import euler
from saga_sr.inference.schedules import linear_quadratic, logsnr_linear, make_schedule


def test_linear_quadratic_paper_grid():
    ts = linear_quadratic(100)
    assert ts.shape == (101,) and ts[0] == 1.0 and ts[-1] == 0.0
    # first 50 steps: the 1000-step linear grid
    assert torch.allclose(ts[:51], 1.0 - torch.arange(51, dtype=torch.float64) / 1000)
    # then 0.95 * (1 - s^2), s = k / 50
    s = torch.arange(51, dtype=torch.float64) / 50
    assert torch.allclose(ts[50:], 0.95 * (1 - s**2))
    assert (ts[1:] < ts[:-1]).all()


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 250])
def test_linear_quadratic_shapes(steps):
    ts = linear_quadratic(steps, emulated_steps=1000)
    assert len(ts) == steps + 1 and ts[0] == 1.0 and ts[-1] == 0.0
    assert (ts[1:] < ts[:-1]).all()


def test_linear_quadratic_rejects_bad_args():
    with pytest.raises(ValueError):
        linear_quadratic(0)
    with pytest.raises(ValueError):
        linear_quadratic(100, emulated_steps=40)


def test_logsnr_linear_matches_stable_audio_tools():
    expected = torch.tensor([1, 0.9933, 0.9820, 0.9526, 0.8808, 0.7311, 0.5, 0.2689, 0], dtype=torch.float64)
    assert torch.allclose(logsnr_linear(8), expected, atol=1e-4)


def test_make_schedule_names():
    assert torch.equal(make_schedule("linear_quadratic", 10), linear_quadratic(10))
    with pytest.raises(ValueError, match="known"):
        make_schedule("karras", 10)


def test_euler_constant_field_is_exact():
    x0 = torch.randn(2, 3, 5)
    v = torch.randn(2, 3, 5)
    out = euler(lambda x, t: v, x0, linear_quadratic(17))
    assert torch.allclose(out, x0 - v, atol=1e-6)  # integrates dt from 1 to 0


def test_euler_steps_callback_and_no_in_place():
    x0 = torch.ones(4)
    seen = []
    out = euler(
        lambda x, t: x * 0 + t,
        x0,
        torch.tensor([1.0, 0.5, 0.0]),
        callback=lambda i, t, x: seen.append((i, t, x.clone())),
    )
    # v(t=1) = 1 for dt = -0.5, then v(t=0.5) = 0.5 for dt = -0.5
    assert torch.allclose(out, torch.full((4,), 1 - 0.5 - 0.25))
    assert [s[:2] for s in seen] == [(0, 0.5), (1, 0.0)]
    assert torch.equal(x0, torch.ones(4))
