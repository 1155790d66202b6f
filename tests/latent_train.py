"""Helper for tests/test_train_latents.py: a training run on latent shards that logs, per rank and optimiser
step, the files of its batch (OUT/seen_rank{R}.jsonl), so a test can check coverage, disjointness and resume.

Run as a script (Lightning's `ddp` relaunches this same command line as rank 1), or under torchrun with
`--num_nodes N` (DEVICES is then the processes per node, and torchrun starts them).
usage: python tests/latent_train.py SHARDS OUT MAX_STEPS DEVICES [--resume] [--num_nodes N]
"""

import json
import sys

from saga_sr.training import module as trainer_module
from saga_sr.training.run import train

_step = trainer_module.SAGASRTrainer.training_step


def _logged_step(self, batch, batch_idx):
    with open(f"{sys.argv[2]}/seen_rank{self.global_rank}.jsonl", "a", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "step": self.global_step,
                    "epoch": self.current_epoch,
                    "files": [m["audio_path"] for m in batch[1]],
                    "starts": [m["seconds_start"] for m in batch[1]],
                }
            )
            + "\n"
        )
    return _step(self, batch, batch_idx)


if __name__ == "__main__":
    trainer_module.SAGASRTrainer.training_step = _logged_step
    devices = int(sys.argv[4])
    nodes = int(sys.argv[sys.argv.index("--num_nodes") + 1]) if "--num_nodes" in sys.argv else 1
    train(
        train_latents=sys.argv[1],
        output_dir=sys.argv[2],
        model_config="tiny",
        sample_size=4096,
        batch_size=1,
        max_steps=int(sys.argv[3]),
        num_workers=0,
        accelerator="cpu",
        devices=devices,
        num_nodes=nodes,
        strategy="ddp" if devices * nodes > 1 else "auto",
        val_every=1000,
        checkpoint_every=2,
        no_progress_bar=True,
        seed=1,
        resume="last" if "--resume" in sys.argv else None,
    )
