"""A warm-started pilot of issue 20: one config trained from the shipped saga-sr-mini weights for a wall-time
budget, so several candidate changes run side by side (one process each, 1 thread) and get the same CPU time.
Rerunning into the same OUT resumes it (the budget is the run's total: a resumed run needs a larger MINUTES).

    python bench/warm_pilot.py docs/model_card_mini/pilots/config_bridge.json runs/w_bridge --minutes 35 \
        --data data_mini/prepared
    saga-sr evaluate --model runs/w_bridge/model --test-dir data_mini/heldout --perceptual visqol --out eval_bridge
    python bench/paired_eval.py eval_base/per_clip.csv eval_bridge/per_clip.csv --system ours
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="model config (a configs/ name or a JSON file)")
    p.add_argument("out", type=Path, help="run folder")
    p.add_argument("--minutes", type=float, default=35.0, help="training wall time, the run's total (default 35)")
    p.add_argument("--data", type=Path, default=Path("data_mini/prepared"), help="folder with train.csv / val.csv")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps (equal steps = equal CPU)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: pilots run side by side)")
    p.add_argument("--init", default=None, help="weights to start from (default: the shipped saga-sr-mini)")
    args = p.parse_args(argv)

    import torch

    from saga_sr.experiments.mini_recipe import TRAIN_SETTINGS
    from saga_sr.models.shipped import default_model_path
    from saga_sr.training.run import train

    torch.set_num_threads(args.threads)
    resume = "last" if any((args.out / "checkpoints").glob("*.ckpt")) else None
    init = args.init or str(Path(default_model_path()) / "model.safetensors")
    train(
        train_dir=[str(args.data / "train.csv")],
        val_dir=[str(args.data / "val.csv")],
        model_config=args.config,
        output_dir=str(args.out),
        max_steps=args.steps or 10**7,
        max_time=args.minutes,
        seed=0,
        resume=resume,
        pretrained_ckpt=None if resume else init,
        **TRAIN_SETTINGS,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
