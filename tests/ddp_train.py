"""Helper for tests/test_train_ddp.py: a 2-process DDP (gloo, CPU) training run of a tiny SAGA-SR.

Run as a script (Lightning's `ddp` relaunches this same command line as rank 1). Each rank saves its final
weights to OUT/rank{R}.pt so the test can check that both ranks hold the same model.
usage: python tests/ddp_train.py DATA_DIR OUT_DIR
"""

import sys

import torch

from saga_sr.training import module as trainer_module
from saga_sr.training.run import train


def _dump(self) -> None:
    state = {k: v.detach().cpu().clone() for k, v in self.diffusion.state_dict().items()}
    torch.save(state, f"{sys.argv[2]}/rank{self.global_rank}.pt")


if __name__ == "__main__":
    trainer_module.SAGASRTrainer.on_train_end = _dump
    train(
        train_dir=[sys.argv[1]],
        output_dir=sys.argv[2],
        model_config="tiny",
        sample_size=4096,
        batch_size=1,
        max_steps=3,
        num_workers=0,
        strategy="ddp",
        devices=2,
        accelerator="cpu",
        val_every=1000,
        no_progress_bar=True,
        compute_rolloff=True,
        seed=1,
    )
