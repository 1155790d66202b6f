"""Model configs: stable-audio-tools' JSON format plus our documented keys, validated before use.

`load_config(path_or_name)` reads a file (or a config shipped in saga_sr/configs by name) and raises
ConfigError listing every problem; `check_config(cfg)` returns them; `derive_rung` makes the seeds' ladder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from saga_sr.config.checks import check_config, conditioner_types, pretransform_facts
from saga_sr.config.rungs import RUNGS, TINY_T5_CONFIG, derive_rung, with_rolloff_conditioner
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


def read_config(path_or_name: str | Path) -> dict:
    """Parse a config file (or shipped name) without validating it."""
    path = Path(path_or_name)
    if not path.is_file():
        if len(path.parts) > 1 or not (CONFIG_DIR / f"{path.name.removesuffix('.json')}.json").is_file():
            raise ConfigError([f"config file not found: {path} (shipped names: {', '.join(shipped_configs())})"])
        path = config_path(path.name)
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError([f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"], source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
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


__all__ = ["CONFIG_DIR", "RUNGS", "TINY_T5_CONFIG", "check_config", "conditioner_types", "config_path",
           "derive_rung", "load_config", "pretransform_facts", "read_config", "shipped_configs", "validated",
           "with_rolloff_conditioner"]
