"""SpectrogramPretransform: shapes, exact-enough inversion, what the channels mean, config factory and checks."""

import numpy as np
import pytest
import torch

from saga_sr.config import check_config, load_config
from saga_sr.errors import AudioError
from saga_sr.models.build import build_pretransform
from saga_sr.models.pretransforms import SpectrogramPretransform


def test_shapes_and_parameter_free():
    pre = SpectrogramPretransform(channels=2, n_fft=64, hop=16)
    assert (pre.io_channels, pre.encoded_channels, pre.downsampling_ratio) == (2, 2 * 2 * 33, 16)
    assert len(pre.state_dict()) == 0  # the window is a non-persistent buffer: nothing to ship
    z = pre.encode(torch.randn(3, 2, 160))
    assert z.shape == (3, 132, 10)
    with pytest.raises(AudioError, match="multiple"):
        pre.encode(torch.randn(1, 2, 150))


@pytest.mark.parametrize("n_fft,hop,power", [(64, 16, 0.3), (512, 256, 0.3), (32, 16, 1.0)])
def test_round_trip_is_exact_to_float_precision(n_fft, hop, power):
    pre = SpectrogramPretransform(channels=1, n_fft=n_fft, hop=hop, power=power, scale=0.125)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 40 * hop, generator=g) * 0.1
    x[1, 0, : 10 * hop] = 0  # digital silence survives the compression's clamp
    y = pre.decode(pre.encode(x))
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-5
    assert y[1, 0, : 8 * hop].abs().max() < 1e-6


def test_channels_are_compressed_bins():
    """A sine of bin k lives in channel k (real) / bins + k (imag), at amplitude ** power, nowhere far from k."""
    n_fft, hop, k = 256, 64, 20
    pre = SpectrogramPretransform(channels=1, n_fft=n_fft, hop=hop, power=0.5)
    t = torch.arange(64 * hop)
    for amp in (0.5, 0.005):
        z = pre.encode((amp * torch.sin(2 * np.pi * k * t / n_fft))[None, None])[0, :, 10:-10]
        mag = torch.sqrt(z[:129] ** 2 + z[129:] ** 2)  # [bins, frames]
        assert int(mag.mean(dim=1).argmax()) == k
        assert mag[k + 8 :].max() < 1e-2 * mag[k].mean()  # -40 dB compressed = -80 dB in power
    # 100 x less amplitude -> 10 x less latent at power 0.5: levels compress, quiet bands stay visible
    loud = pre.encode((0.5 * torch.sin(2 * np.pi * k * t / n_fft))[None, None])[0, :, 10:-10]
    quiet = pre.encode((0.005 * torch.sin(2 * np.pi * k * t / n_fft))[None, None])[0, :, 10:-10]
    ratio = torch.hypot(loud[k], loud[129 + k]).mean() / torch.hypot(quiet[k], quiet[129 + k]).mean()
    assert abs(float(ratio) - 10.0) < 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_fft >= 2"):
        SpectrogramPretransform(channels=1, n_fft=16, hop=16)
    with pytest.raises(ValueError, match="power"):
        SpectrogramPretransform(channels=1, n_fft=64, hop=16, power=0)


def test_config_factory_and_checks():
    cfg = load_config("mini")
    pre = build_pretransform(cfg)
    assert isinstance(pre, SpectrogramPretransform)
    assert pre.encoded_channels == cfg["model"]["diffusion"]["config"]["io_channels"]
    bad = load_config("mini")
    bad["model"]["pretransform"]["config"].update(n_fft=250, hop=128)  # under 2 x hop
    problems = "\n".join(check_config(bad))
    assert "model.pretransform.config.n_fft" in problems
    bad = load_config("mini")
    bad["model"]["pretransform"]["config"]["n_fft"] = 512  # 514 latent channels, the DiT still takes 258
    problems = "\n".join(check_config(bad))
    assert "514" in problems and "258" in problems
