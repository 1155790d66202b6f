"""Model configs: stable-audio-tools' JSON format plus our documented keys, validated before use.

`load_config(path_or_name)` reads a file (or a config shipped in saga_sr/configs by name) and raises
ConfigError listing every problem; `check_config(cfg)` returns them (`check_runnable(cfg)` also the objective a
model to train or sample needs); `derive_rung` makes the ladder's rungs;
`prepare_config` is the config a training run uses (roll-off conditioner added on request, segment override).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from saga_sr.config.checks import check_config, check_runnable, conditioner_types, objective_problem, pretransform_facts
from saga_sr.config.rungs import (
    ROLLOFF_NUMBER_IDS,
    RUNGS,
    TINY_T5_CONFIG,
    derive_rung,
    drop_lr_bridge,
    with_rolloff_conditioner,
)
from saga_sr.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def shipped_configs() -> list[str]:
    """Names of the configs in saga_sr/configs (without .json)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def config_path(name: str) -> Path:
    """The file of a shipped config, by name with or without `.json`."""
    stem = name[:-5] if name.endswith(".json") else name
    path = CONFIG_DIR / f"{stem}.json"
    if not path.is_file():
        raise ConfigError([f"no shipped config named '{name}'; shipped: {', '.join(shipped_configs())}"])
    return path


class _DuplicateKey(ValueError):
    """A key that appears twice in one JSON object."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """json object hook: a repeated key is an error, since a silently dropped value is a wrong config."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_config(path_or_name: str | Path) -> dict:
    """Parse a config file (or shipped name) without validating it."""
    path = Path(path_or_name)
    if not path.is_file():
        if len(path.parts) > 1 or not (CONFIG_DIR / f"{path.name.removesuffix('.json')}.json").is_file():
            raise ConfigError([f"config file not found: {path} (shipped names: {', '.join(shipped_configs())})"])
        path = config_path(path.name)
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"], source=str(path)
        ) from None
    except _DuplicateKey as exc:
        raise ConfigError(
            [f"{exc.args[0]}: key given twice (JSON would keep only the last)"], source=str(path)
        ) from None
    except UnicodeDecodeError as exc:  # a ValueError too: before the number-length clause
        raise ConfigError(
            [f"cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})"], source=str(path)
        ) from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise ConfigError(
            [f"not a usable config: it holds a number too long to read ({str(exc).split(':')[0]})"], source=str(path)
        ) from None
    except RecursionError:
        raise ConfigError(
            ["not a usable config: objects or lists nested too deeply to read"], source=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc}"], source=str(path)) from exc
    if not isinstance(cfg, dict):
        raise ConfigError(["(top level): expected a JSON object"], source=str(path))
    return cfg


def validated(cfg: dict, source: str | None = None) -> dict:
    """`cfg` itself when every rule holds, else ConfigError listing every problem."""
    problems = check_config(cfg)
    if problems:
        raise ConfigError(problems, source=source)
    return cfg


def load_config(path_or_name: str | Path | dict[str, Any]) -> dict:
    """A validated config from a path, a shipped name (e.g. 'tiny') or a dict (deep-copied)."""
    if isinstance(path_or_name, dict):
        return validated(copy.deepcopy(path_or_name))
    cfg = read_config(path_or_name)
    return validated(cfg, source=str(path_or_name))


def model_identity(cfg: dict) -> dict:
    """What a checkpoint's weights depend on: the `model` section, rate and channels (None where absent)."""
    return {k: cfg.get(k) for k in ("model", "sample_rate", "audio_channels")}


def resume_identity(cfg: dict) -> dict:
    """The config as JSON values without `training.max_steps`, which a resumed run may raise."""
    config = json.loads(json.dumps(cfg, default=str))
    (config.get("training") or {}).pop("max_steps", None)
    return config


def uses_rolloff(cfg: dict) -> bool:
    """True when the config's conditioners read roll-offs (number ids or the Fourier roll-off conditioner)."""
    ids = {c.get("id") for c in cfg["model"]["conditioning"]["configs"]}
    return bool(ids & set(ROLLOFF_NUMBER_IDS)) or bool(cfg["model"]["diffusion"].get("rolloff_conditioner"))


def prepare_config(model_config, *, compute_rolloff: bool = False, sample_size: int | None = None) -> dict:
    """The validated config for this run: `--compute_rolloff` on a config without roll-off conditioning adds
    the Fourier roll-off conditioner (prepend width = embed_dim); `sample_size` overrides the segment."""
    cfg = copy.deepcopy(model_config) if isinstance(model_config, dict) else read_config(model_config)
    source = None if isinstance(model_config, dict) else str(model_config)
    try:
        add_rolloff = compute_rolloff and not uses_rolloff(cfg)
    except (KeyError, TypeError, AttributeError):  # malformed: `validated` below lists the problems
        add_rolloff = False
    if add_rolloff:
        cfg = with_rolloff_conditioner(cfg)
    if sample_size:
        cfg["sample_size"] = int(sample_size)
    return validated(cfg, source=source)


__all__ = [
    "CONFIG_DIR",
    "RUNGS",
    "TINY_T5_CONFIG",
    "check_config",
    "check_runnable",
    "conditioner_types",
    "config_path",
    "derive_rung",
    "drop_lr_bridge",
    "load_config",
    "model_identity",
    "objective_problem",
    "prepare_config",
    "pretransform_facts",
    "read_config",
    "resume_identity",
    "shipped_configs",
    "uses_rolloff",
    "validated",
    "with_rolloff_conditioner",
]
