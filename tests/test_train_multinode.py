"""Two "nodes" of one process each on localhost (torchrun --nnodes 2 --node_rank 0/1, static rendezvous on
127.0.0.1): training on latent shards reads disjoint items per rank and resumes mid-epoch, as on one node."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from latent_fixtures import write_clips

from saga_sr.data.prepare import prepare_shards
from saga_sr.models.build import build_model

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(script_args: list[str], timeout: float = 300) -> None:
    """Run tests/latent_train.py as two torchrun nodes (one process each) on 127.0.0.1; both must succeed."""
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc_per_node",
                "1",
                "--node_rank",
                str(node),
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                port,
                str(ROOT / "tests" / "latent_train.py"),
                *script_args,
                "--num_nodes",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (0, 1)
    ]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for node, (p, text) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"node {node}:\n{text[-3000:]}"


def _seen(out: Path, rank: int) -> list[dict]:
    return [json.loads(line) for line in (out / f"seen_rank{rank}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ten_clip_shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shards10")
    write_clips(root / "audio", [0.15 + 0.05 * i for i in range(10)])
    from saga_sr.training.run import prepare_config

    model = build_model(prepare_config("tiny", sample_size=4096), seed=1)
    prepare_shards([root / "audio"], root / "shards", model, num_lr=2, files_per_part=4, seed=1, progress=False)
    return root / "shards"


@pytest.mark.slow
def test_two_nodes_read_disjoint_items_and_resume_mid_epoch(tmp_path: Path, ten_clip_shards: Path):
    """2 nodes x 1 process, batch 1, 10 items: an epoch is 5 steps per rank covering all 10 items once; stopped
    after 3 steps and resumed by both nodes, the run continues with the 4 items not yet seen."""
    out = tmp_path / "nodes"
    two_nodes([str(ten_clip_shards), str(out), "3", "1"])
    two_nodes([str(ten_clip_shards), str(out), "7", "1", "--resume"])
    seen = {r: _seen(out, r) for r in (0, 1)}
    for r in (0, 1):
        assert [x["step"] for x in seen[r]] == list(range(7))
    epoch0 = [f for r in (0, 1) for x in seen[r][:5] for f in x["files"]]
    assert sorted(epoch0) == sorted(set(epoch0)) and len(epoch0) == 10  # disjoint ranks, whole set once
    before = {f for r in (0, 1) for x in seen[r][:3] for f in x["files"]}
    after = {f for r in (0, 1) for x in seen[r][3:5] for f in x["files"]}
    assert not before & after and len(after) == 4  # no repeat, no skip across the resume
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 7
