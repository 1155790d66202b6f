"""Rerun the model with other sampling settings on the LR inputs an earlier `saga-sr evaluate` wrote, so each
variant's output sits beside the baseline's (OUT/audio/<cutoff>hz/<clip>/ours.target_default.wav) and
bench/visqol_diagnosis.py can score it (`--extra NAME=OUT`). The path is evaluate's own: load_systems ->
model_fn(lr, sr, cutoff) with the default target roll-off and seed 0.

    python bench/visqol_variants.py EVAL_DIR OUT [--steps N] [--cfg-audio A --cfg-text T] [--model DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from saga_sr.audio.io import load_audio, save_audio
from saga_sr.evaluation.evaluate import load_systems
from saga_sr.models.shipped import default_model_path

SR = 44100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--cfg-audio", type=float, default=None)
    ap.add_argument("--cfg-text", type=float, default=None)
    a = ap.parse_args()
    model_fn, _ = load_systems(a.model or default_model_path(), steps=a.steps, cfg_audio=a.cfg_audio,
                               cfg_text=a.cfg_text, seed=0)
    for lr_path in sorted((a.eval_dir / "audio").rglob("unprocessed.wav")):
        rel = lr_path.parent.relative_to(a.eval_dir)
        cutoff = float(rel.parts[1][:-2])
        lr, _ = load_audio(lr_path, target_sr=SR)
        ours = model_fn(lr, SR, cutoff)["ours"]
        save_audio(a.out / rel / "ours.target_default.wav", ours[:, : lr.shape[-1]], SR, subtype="FLOAT")
        print(rel.as_posix(), flush=True)


if __name__ == "__main__":
    main()
