"""SAGASRTrainer internals without a Trainer: dropout to the authors' nulls, roll-off prepend, optimiser schedule,
config preparation for --compute_rolloff."""

from __future__ import annotations

import pytest
import torch

from saga_sr.config import prepare_config, read_config
from saga_sr.config.typed import OptimizerSettings
from saga_sr.training.optim import build_optimizer, inverse_lr_factor


def _text_only_tiny() -> dict:
    cfg = read_config("tiny")
    cfg["model"]["conditioning"]["configs"] = cfg["model"]["conditioning"]["configs"][:1]
    diffusion = cfg["model"]["diffusion"]
    diffusion["cross_attention_cond_ids"], diffusion["global_cond_ids"] = ["prompt"], []
    diffusion["config"]["global_cond_dim"] = 0
    return cfg


def _batch(b: int, size: int = 2048):
    g = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(b, 1, size, generator=g)
    md = [
        {
            "lr_audio": 0.5 * audio[i],
            "padding_mask": torch.ones(size, dtype=torch.bool),
            "prompt": f"clip {i}",
            "audio_path": f"clip{i}.wav",
            "input_rolloff": 0.2,
            "target_rolloff": 0.8,
            "lr_cutoff_hz": 4000.0,
        }
        for i in range(b)
    ]
    return audio, md


def _module(cfg: dict, **kw):
    from saga_sr.models.build import build_model
    from saga_sr.training.module import SAGASRTrainer

    return SAGASRTrainer(build_model(cfg, seed=0), use_ema=False, **kw)


def _capture(module) -> list[dict]:
    calls: list[dict] = []
    inner = module.diffusion.model.forward

    def spy(x, t, **kw):
        calls.append({k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})
        return inner(x, t, **kw)

    module.diffusion.model.forward = spy
    return calls


def test_dropout_uses_the_authors_nulls_and_keeps_the_rolloff_prepend():
    cfg = prepare_config(_text_only_tiny(), compute_rolloff=True, sample_size=2048)
    assert cfg["model"]["diffusion"]["rolloff_conditioner"] == {"type": "fourier"}
    audio, md = _batch(3)
    module = _module(cfg, lr_dropout_prob=1.0, cfg_dropout_prob=1.0)
    module.diffusion.rolloff_conditioner.eval()  # its own token dropout is not what this test is about
    calls = _capture(module)
    loss = module.flow_step(audio, md, torch.Generator().manual_seed(1))
    assert torch.isfinite(loss)
    kw = calls[-1]
    assert torch.all(kw["input_concat_cond"] == -5.0)
    assert torch.all(kw["cross_attn_cond"] == 0.0)
    prepend = kw["prepend_cond"]
    assert prepend is not None and prepend.shape == (3, 1, 128) and prepend.abs().sum() > 0
    # no dropout: the LR latent and text reach the DiT, and the prepend is the same roll-off + timestep token
    module.lr_dropout_prob = module.cfg_dropout_prob = 0.0
    module.flow_step(audio, md, torch.Generator().manual_seed(1))
    kw0 = calls[-1]
    z_lr = module.diffusion.encode(torch.stack([m["lr_audio"] for m in md]))
    assert torch.allclose(kw0["input_concat_cond"], z_lr)
    assert kw0["cross_attn_cond"].abs().sum() > 0
    assert torch.allclose(kw0["prepend_cond"], prepend)
    t = torch.full((3,), 0.5)
    assert torch.allclose(
        module.dit_inputs(md, t)["prepend_cond"],
        module.diffusion.build_rolloff_prepend(torch.full((3,), 0.2), torch.full((3,), 0.8), t),
    )


def test_padding_is_masked_out_of_the_loss():
    cfg = prepare_config("tiny", sample_size=2048)
    module = _module(cfg, lr_dropout_prob=0.0, cfg_dropout_prob=0.0)
    audio, md = _batch(2)
    for m in md:
        m["padding_mask"][1024:] = False
    base = module.flow_step(audio, md, torch.Generator().manual_seed(3))
    noisy = audio.clone()
    noisy[..., 1024:] += 5.0  # garbage in the padded half must not change the loss
    assert torch.allclose(module.flow_step(noisy, md, torch.Generator().manual_seed(3)), base, atol=1e-5)


def test_missing_rolloffs_are_a_clear_error():
    from saga_sr.errors import DataError

    module = _module(prepare_config(_text_only_tiny(), compute_rolloff=True, sample_size=2048))
    audio, md = _batch(1)
    del md[0]["input_rolloff"]
    with pytest.raises(DataError, match="compute_rolloff"):
        module.flow_step(audio, md, torch.Generator().manual_seed(0))


def test_inverse_lr_schedule_from_config():
    assert inverse_lr_factor(0) == pytest.approx(0.01)
    assert inverse_lr_factor(99) == pytest.approx((1 - 0.99**100) * (1 + 99 / 1e6) ** -0.5)
    assert inverse_lr_factor(10**6, warmup=0.0) == pytest.approx(2**-0.5)
    p = torch.nn.Parameter(torch.zeros(2))
    opt, sched = build_optimizer([p], OptimizerSettings.from_config(read_config("tiny")), learning_rate=1e-3)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 1e-3
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)  # 1e-3 x warm-up 0.01 at step 0
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * inverse_lr_factor(3))


def test_lr_only_config_never_needs_its_unused_text_encoder():
    """Rung F0: cross_attention_cond_ids [] -- the (absent, pretrained) T5 must not be loaded."""
    cfg = read_config("tiny")
    cfg["model"]["conditioning"]["configs"][0]["config"] = {"t5_model_name": "t5-base", "max_length": 8}
    cfg["model"]["diffusion"]["cross_attention_cond_ids"] = []
    module = _module(prepare_config(cfg, sample_size=2048), lr_dropout_prob=0.0, cfg_dropout_prob=0.0)
    calls = _capture(module)
    audio, md = _batch(2)
    assert torch.isfinite(module.flow_step(audio, md, torch.Generator().manual_seed(0)))
    assert calls[-1]["cross_attn_cond"] is None and calls[-1]["global_embed"].shape == (2, 128)
    assert not any(p.requires_grad for p in module.diffusion.conditioner.conditioners["prompt"].parameters())


def test_export_is_atomic_and_loads_back(tmp_path):
    from saga_sr.models.build import build_model
    from saga_sr.models.checkpoint import export_model, load_model

    model = build_model(prepare_config("tiny", sample_size=2048), seed=0)
    out = tmp_path / "model"
    export_model(model, out)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for p in model.parameters():
        p.data.add_(1.0)
    export_model(model, out)  # replaces the previous export in one rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(out).state_dict()
    key = "model.model.transformer.project_in.weight"
    assert torch.allclose(loaded[key], state[key] + 1.0)
    from saga_sr.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nope")


def test_ema_beta_zero_is_a_value_not_unset():
    from saga_sr.config import load_config
    from saga_sr.config.typed import TrainingSettings
    from saga_sr.models.build import build_model
    from saga_sr.training.module import SAGASRTrainer

    module = SAGASRTrainer(build_model(load_config("tiny"), seed=0), use_ema=True, ema_beta=0.0)
    assert module.diffusion_ema.beta == 0.0
    base = TrainingSettings.from_config(load_config("tiny"))
    assert base.override(ema_beta=None).ema_beta == base.ema_beta  # None = not given
    assert base.override(cfg_dropout_prob=0.0, use_ema=False).cfg_dropout_prob == 0.0


def test_an_objective_other_than_rectified_flow_is_refused_at_build_and_by_the_check(capsys):
    from saga_sr.cli import main
    from saga_sr.config import load_config
    from saga_sr.errors import ConfigError
    from saga_sr.models.build import build_model

    cfg = load_config("tiny")
    cfg["model"]["diffusion"]["diffusion_objective"] = "v"
    with pytest.raises(ConfigError, match="diffusion_objective: 'v' is not supported"):
        build_model(cfg)
    assert build_model(cfg, device="meta").diffusion_objective == "v"  # shapes of any SAT config
    assert main(["config", "check", "stable_audio_open_1.0"]) == 2  # a valid SAT config saga-sr cannot run
    assert "diffusion_objective: 'v' is not supported" in capsys.readouterr().err
