"""Lightning callbacks of a training run: export the inference folder after each validation and at the end."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from saga_sr.models.checkpoint import export_model, model_state_from_module_state

log = logging.getLogger(__name__)


class ExportCallback(L.Callback):
    """Keeps OUT/model/{config.json, model.safetensors} current (EMA weights when EMA is on); rank 0 only."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)

    def export(self, trainer: L.Trainer, module) -> None:
        # every rank takes part (FSDP gathers the full weights here); rank 0 writes
        full = trainer.strategy.lightning_module_state_dict()
        if trainer.is_global_zero:
            export_model(module.diffusion, self.out_dir, state_dict=model_state_from_module_state(full))

    def on_validation_end(self, trainer: L.Trainer, module) -> None:
        if not trainer.sanity_checking:
            self.export(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module) -> None:
        self.export(trainer, module)


class StepBanner(L.Callback):
    """Prints the step a run starts at (so a resumed run shows where it continues)."""

    def on_train_start(self, trainer: L.Trainer, module) -> None:
        if trainer.is_global_zero:
            log.info("training from step %d to %d", trainer.global_step, trainer.max_steps)
