"""Training: the Lightning module (SAGA-SR logic only), run wiring and CLI arguments (model export and loading
live in saga_sr.models.checkpoint; `load_model` / `export_model` are re-exported here for existing callers).

Heavy imports (torch, lightning) happen in the submodules, so `import saga_sr.training` stays cheap.
"""

__all__ = ["train", "load_model", "export_model", "SAGASRTrainer"]


def __getattr__(name: str):
    if name == "train":
        from saga_sr.training.run import train  # lazy: `import saga_sr.training` stays free of torch

        return train
    if name in ("load_model", "export_model"):
        from saga_sr.models import checkpoint  # lazy: `import saga_sr.training` stays free of torch

        return getattr(checkpoint, name)
    if name == "SAGASRTrainer":
        from saga_sr.training.module import SAGASRTrainer  # lazy: `import saga_sr.training` stays free of torch

        return SAGASRTrainer
    raise AttributeError(name)
