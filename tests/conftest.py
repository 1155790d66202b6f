"""Fixtures shared across test files: tiny random models (built, exported, wrapped in an Upsampler) and a
SeaweedFS S3 server on 127.0.0.1 (see s3_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
import torch
from s3_server import s3_env, s3_server  # noqa: F401 (fixtures)

RANDOM_STD = 0.05  # random weights this small keep a tiny model's output finite and still input-dependent


def tiny_model(
    *,
    config: str = "tiny",
    sample_size: int | None = 8192,
    edit: Callable[[dict], None] | None = None,
    randomize: Iterable[str] = (),
    jitter: float = 0.0,
) -> torch.nn.Module:
    """A shipped config (128-frame windows by default: fast, and many windows per second of audio; None keeps
    the config's), built with seed 0. `edit(cfg)` changes the config before building. `randomize` names
    submodules ("dit", "rolloff_conditioner") whose weights are drawn at std RANDOM_STD from one generator seeded
    1, in that order: the real init zeroes the DiT's residual branches, so without it the conditioning would have
    no effect. `jitter` then adds jitter x N(0, 1) to every weight (the pretransform's and conditioners' too)."""
    from saga_sr.config import load_config
    from saga_sr.models.build import build_model

    cfg = load_config(config)
    if sample_size is not None:
        cfg["sample_size"] = sample_size
    if edit is not None:
        edit(cfg)
    model = build_model(cfg, seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name in randomize:
            for p in getattr(model, name).parameters():
                p.copy_(torch.randn(p.shape, generator=g) * RANDOM_STD)
        if jitter:
            for p in model.parameters():
                p.add_(jitter * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="session")
def make_tiny_model() -> Callable[..., torch.nn.Module]:
    """The `tiny_model` factory, for tests that vary the config."""
    return tiny_model


@pytest.fixture(scope="session")
def make_model_dir(tmp_path_factory):
    """Factory: `make_model_dir(model=None, **tiny_model_options)` exports a model into a fresh folder."""
    from saga_sr.models.checkpoint import export_model

    def make(model: torch.nn.Module | None = None, **options):
        return export_model(
            model if model is not None else tiny_model(**options), tmp_path_factory.mktemp("model") / "model"
        )

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(make_model_dir):
    """The plain tiny model (128-frame windows, seed 0) exported once per session; tests only read it."""
    return make_model_dir()


@pytest.fixture(scope="module")
def random_upsampler():
    """An Upsampler on the tiny model with every DiT weight random, one per test module."""
    from saga_sr.inference.pipeline import Upsampler

    return Upsampler(tiny_model(randomize=("dit",)), "cpu", "fp32")


@pytest.fixture(scope="session")
def make_noise_batch():
    """Factory: `make_noise_batch(n, samples, seed, **metadata)` -> (HR audio [n, 1, samples], metadata) of quiet
    noise with an LR input, the item fields a training step reads, and any extra metadata fields."""

    def make(n: int, samples: int, seed: int, **extra):
        g = torch.Generator().manual_seed(seed)
        audio = 0.1 * torch.randn(n, 1, samples, generator=g)
        metadata = [
            {
                "prompt": "",
                "lr_audio": 0.1 * torch.randn(1, samples, generator=g),
                "seconds_start": 0.0,
                "seconds_total": 1.0,
                "input_rolloff": 0.3,
                "target_rolloff": 0.9,
                **extra,
            }
            for _ in range(n)
        ]
        return audio, metadata

    return make
