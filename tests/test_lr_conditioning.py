"""The LR condition options: the flow relative to the input's level (model.diffusion.lr_gain), the DSP prefill
(model.diffusion.lr_prefill) and the target low-pass augmentation
(training.target_lowpass_prob): what they compute, that training, validation and upsampling agree on the
gain, and that every parameter-free pretransform config trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saga_sr.config import check_config, read_config
from saga_sr.data.dataset import target_lowpass
from saga_sr.models.build import build_model


def _gain_cfg(frames: int = 3, floor: float = 0.1) -> dict:
    cfg = read_config("mini")
    cfg["sample_size"] = 4096
    cfg["model"]["diffusion"]["lr_gain"] = {"smooth_frames": frames, "floor": floor}
    for key in ("lr_prefill", "target_band_limit", "envelope_follow", "lr_bridge"):  # each test turns on its own
        cfg["model"]["diffusion"].pop(key, None)
    return cfg


def test_gain_follows_the_input_level_frame_by_frame_and_is_floored():
    model = build_model(_gain_cfg(frames=1, floor=0.1), seed=0)
    z_lr = torch.ones(1, model.latent_channels, 8)
    z_lr[..., 4:] = 0.01  # a quiet second half
    z_lr[..., 6:] = 0.0  # and digital silence at the end
    g = model.lr_gain(z_lr)[0, 0]
    assert g.shape == (8,)
    torch.testing.assert_close(g[:4], torch.ones(4))  # RMS over channels of a constant 1
    torch.testing.assert_close(g[4:6], torch.full((2,), 0.0707), atol=1e-3, rtol=0)  # floor: 0.1 x window RMS
    assert g[6:].min() > 0  # never zero: the flow divides by it


def test_gain_is_off_without_the_config_key():
    cfg = _gain_cfg()
    assert build_model(cfg, seed=0).lr_gain(torch.ones(1, 258, 4)) is not None
    del cfg["model"]["diffusion"]["lr_gain"]
    assert build_model(cfg, seed=0).lr_gain(torch.ones(1, 258, 4)) is None


def test_bad_gain_and_augmentation_settings_are_refused():
    cfg = _gain_cfg()
    cfg["model"]["diffusion"]["lr_gain"]["floor"] = 2.0
    cfg["training"]["target_lowpass_prob"] = -0.5
    problems = check_config(cfg)
    assert any("lr_gain.floor" in p for p in problems), problems
    assert any("target_lowpass_prob" in p for p in problems), problems


def test_training_loss_is_the_flow_loss_of_the_normalised_latents():
    """flow_step divides HR and LR latents by the LR's gain: the same loss as computing it by hand."""
    from saga_sr.flow import flow_loss, interpolate, velocity_target
    from saga_sr.training.module import SAGASRTrainer

    cfg = _gain_cfg()
    module = SAGASRTrainer(build_model(cfg, seed=0), use_ema=False, lr_dropout_prob=0.0, cfg_dropout_prob=0.0)
    module.diffusion.rolloff_conditioner = None  # no roll-off token dropout draws in this comparison
    g = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(2, 1, 4096, generator=g)
    audio[1] *= 0.01
    md = [
        {
            "lr_audio": 0.5 * audio[i],
            "padding_mask": torch.ones(4096, dtype=torch.bool),
            "prompt": "music",
            "input_rolloff": 0.2,
            "target_rolloff": 0.8,
        }
        for i in range(2)
    ]
    t = torch.tensor([0.3, 0.7])
    loss = module.flow_step(audio, md, torch.Generator().manual_seed(5), t=t, dropout=False)

    model = module.diffusion
    gen = torch.Generator().manual_seed(5)
    z, z_lr = model.encode(audio), model.encode(torch.stack([m["lr_audio"] for m in md]))
    gain = model.lr_gain(z_lr)
    z, z_lr = z / gain, z_lr / gain
    noise = torch.randn(z.shape, generator=gen)
    inputs = module.dit_inputs(md, t)
    pred = model(interpolate(z, noise, t), t, input_concat_cond=z_lr, **inputs)
    expected = flow_loss(pred, velocity_target(z, noise), None)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=0)  # float32 recomputation of the same graph


def test_upsampling_multiplies_the_sample_back_by_the_gain():
    """A stand-in DiT whose flow ends exactly at its LR input (v = (x_t - z_lr) / t, the rectified-flow velocity
    of a point mass): the sampled latent is the *normalised* LR, so only multiplying it back by the gain gives
    the input's level steps back (a 40 dB quieter second half stays 40 dB quieter; without it, ~0 dB)."""
    from saga_sr.inference.pipeline import Upsampler

    model = build_model(_gain_cfg(frames=1), seed=0).eval()

    def point_mass(x, t, input_concat_cond=None, **_):
        return (x - input_concat_cond) / t[:, None, None]

    model.model.forward = point_mass
    loud = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.3
    wav = np.concatenate([loud, 0.01 * loud])
    out = Upsampler(model).upsample(wav, 16000, steps=3, cfg_audio=1.0, cfg_text=1.0, lfr=False)[0]
    half, margin = out.shape[-1] // 2, 4096
    ratio = np.sqrt(np.mean(out[half + margin :] ** 2) / np.mean(out[: half - margin] ** 2))
    assert 0.008 < ratio < 0.0125, ratio


@pytest.mark.parametrize("name", ["mini", "mini_patched", "mini_stft512"])
def test_parameter_free_pretransform_configs_train_one_step(name):
    """A training step (posterior, flow, backward) for each shipped parameter-free pretransform config."""
    from saga_sr.training.module import SAGASRTrainer

    cfg = read_config(name)
    cfg["sample_size"] = 4096
    module = SAGASRTrainer(build_model(cfg, seed=0), use_ema=False)
    audio = 0.1 * torch.randn(1, 1, 4096, generator=torch.Generator().manual_seed(0))
    md = [
        {
            "lr_audio": 0.5 * audio[0],
            "padding_mask": torch.ones(4096, dtype=torch.bool),
            "prompt": "music",
            "input_rolloff": 0.2,
            "target_rolloff": 0.8,
            "lr_cutoff_hz": 4000.0,
        }
    ]
    loss = module.flow_step(audio, md, torch.Generator().manual_seed(1))
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.diffusion.model.parameters())


def test_target_lowpass_cuts_the_hr_at_the_drawn_band():
    from saga_sr.audio.bandedge import band_edge

    sr = 44100
    hr = np.random.default_rng(0).standard_normal((1, sr)).astype(np.float32) * 0.1
    band, cut = target_lowpass(hr, sr, 4000.0, 20000.0, np.random.default_rng(3))
    assert 5000.0 <= band <= 0.97 * 20000.0
    edge = band_edge(cut, sr).hz  # where the filtered spectrum meets the floor: just above the passband
    assert band <= edge < 1.12 * band, (edge, band)
    assert target_lowpass(hr, sr, 12000.0, 14000.0, np.random.default_rng(0)) is None  # no room above 1.25 x


def test_dataset_items_with_a_narrowed_target_say_so_in_their_roll_off(tmp_path):
    import soundfile as sf

    from saga_sr.audio.bandedge import band_edge
    from saga_sr.audio.spectral import hz_to_normalized
    from saga_sr.data import SAGASRDataset

    sr = 44100
    sf.write(tmp_path / "noise.wav", np.random.default_rng(1).standard_normal(sr) * 0.1, sr)
    kw = dict(compute_rolloff=True, cutoff_range=(2000, 6000), seed=0)
    plain = SAGASRDataset(tmp_path, 16384, sr, 1, deterministic=True, **kw)
    aug = SAGASRDataset(tmp_path, 16384, sr, 1, deterministic=True, target_lowpass_prob=1.0, **kw)
    (hr0, md0), (hr1, md1) = plain[0], aug[0]
    torch.testing.assert_close(md0["lr_audio"], md1["lr_audio"])  # the LR is the same draw
    assert md1["rolloff_high"] < md0["rolloff_high"]
    assert md1["target_rolloff"] == pytest.approx(hz_to_normalized(md1["rolloff_high"], sr))
    assert md1["rolloff_high"] <= band_edge(hr1.numpy(), sr).hz < 1.12 * md1["rolloff_high"]
    assert band_edge(hr0.numpy(), sr).hz > 20000


def test_lr_input_is_the_dsp_fill_only_when_the_config_asks():
    from saga_sr.audio.bwe import dsp_bandwidth_extension

    cfg = _gain_cfg()
    lr = 0.1 * torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(0))
    assert build_model(cfg, seed=0).lr_input(lr, [4000.0, 6000.0], [1, 2]) is lr
    cfg["model"]["diffusion"]["lr_prefill"] = "dsp"
    out = build_model(cfg, seed=0).lr_input(lr, [4000.0, 6000.0], [1, 2])
    for i, (cut, seed) in enumerate(((4000.0, 1), (6000.0, 2))):
        np.testing.assert_array_equal(out[i].numpy(), dsp_bandwidth_extension(lr[i].numpy(), 44100, cut, seed))


def test_training_prefills_at_each_items_cutoff_and_needs_it():
    from saga_sr.errors import DataError
    from saga_sr.training.module import SAGASRTrainer

    cfg = _gain_cfg()
    cfg["model"]["diffusion"]["lr_prefill"] = "dsp"
    module = SAGASRTrainer(build_model(cfg, seed=0), use_ema=False)
    seen = []
    inner = module.diffusion.lr_input
    module.diffusion.lr_input = lambda lr, cut, seeds: seen.append(list(cut)) or inner(lr, cut, seeds)
    audio = 0.1 * torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(0))
    md = [
        {
            "lr_audio": 0.5 * audio[i],
            "padding_mask": torch.ones(4096, dtype=torch.bool),
            "prompt": "music",
            "input_rolloff": 0.2,
            "target_rolloff": 0.8,
            "lr_cutoff_hz": c,
        }
        for i, c in enumerate((3000.0, 7000.0))
    ]
    assert torch.isfinite(module.flow_step(audio, md, torch.Generator().manual_seed(1)))
    assert seen == [[3000.0, 7000.0]]
    for m in md:
        del m["lr_cutoff_hz"]
    with pytest.raises(DataError, match="lr_cutoff_hz"):
        module.flow_step(audio, md, torch.Generator().manual_seed(1))


def test_upsampling_prefills_at_the_input_band_edge():
    from saga_sr.inference.pipeline import Upsampler

    cfg = _gain_cfg()
    cfg["model"]["diffusion"]["lr_prefill"] = "dsp"
    model = build_model(cfg, seed=0).eval()
    seen = []
    inner = model.lr_input
    model.lr_input = lambda lr, cut, seeds: seen.extend(cut) or inner(lr, cut, seeds)
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    up = Upsampler(model)
    _, info = up.upsample_with_info(wav, 16000, steps=1)
    assert seen and set(seen) == {info.band_edge_hz}


def test_prepare_refuses_a_prefill_config(tmp_path):
    from saga_sr.data.prepare import prepare_shards
    from saga_sr.errors import ConfigError

    cfg = _gain_cfg()
    cfg["model"]["diffusion"]["lr_prefill"] = "dsp"
    with pytest.raises(ConfigError, match="lr_prefill"):
        prepare_shards([tmp_path], tmp_path / "shards", build_model(cfg, seed=0))


@pytest.mark.parametrize("band_limit", [False, True])
def test_upsampling_enforces_the_target_band_when_the_config_says_so(band_limit):
    """model.diffusion.target_band_limit: the output has nothing above the target roll-off (random DiT:
    whatever it generates up there is removed); without it the high band is the model's."""
    from saga_sr.inference.pipeline import Upsampler

    cfg = _gain_cfg()
    cfg["model"]["diffusion"]["target_band_limit"] = band_limit
    up = Upsampler(build_model(cfg, seed=0).eval())
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    out, info = up.upsample_with_info(wav, 16000, steps=2, target_rolloff=12000.0)
    out = out[0]
    spec = np.abs(np.fft.rfft(out)) ** 2
    f = np.fft.rfftfreq(len(out), 1 / 44100)
    above = 10 * np.log10(spec[(f > 12500) & (f < 20000)].mean() + 1e-30)
    below = 10 * np.log10(spec[(f > 8500) & (f < 11000)].mean() + 1e-30)
    assert info.target_band_limit is band_limit
    assert bool(above < below - 35) == band_limit, (above, below)
    _, info = up.upsample_with_info(wav, 16000, steps=1)  # no target given: the default asks for the full band
    assert info.target_band_limit is False
