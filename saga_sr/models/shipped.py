"""The model shipped inside the package (saga-sr-mini): what `upsample`, `evaluate`, `demo` and
`app` use without `--model`.

One function, so that the shipped model's location is decided in one place. An install without the weights
(a stripped wheel) gets None, and callers say so and ask for `--model`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SHIPPED_MODEL_DIR", "default_model_path"]

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "models" / "mini"


def default_model_path() -> Path | None:
    """The exported model folder shipped with the package, or None when this install has none."""
    d = SHIPPED_MODEL_DIR
    return d if (d / "config.json").is_file() and (d / "model.safetensors").is_file() else None
