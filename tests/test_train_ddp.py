"""Scale-out: 2-process DDP on CPU (gloo) for a few steps; both ranks must end with identical weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_weights(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ddp_train.py"), str(ROOT / "tests" / "data"), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = torch.load(out / "rank0.pt", weights_only=True), torch.load(out / "rank1.pt", weights_only=True)
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3
    # the weights moved away from the (seeded) initial model, and stayed finite
    from saga_sr.config import prepare_config
    from saga_sr.models.build import build_model

    init = build_model(prepare_config("tiny", compute_rolloff=True, sample_size=4096), seed=1).state_dict()
    key = "model.model.transformer.project_in.weight"
    assert torch.isfinite(r0[key]).all() and not torch.equal(r0[key], init[key])
    assert torch.equal(ckpt["state_dict"]["diffusion." + key], r0[key])
