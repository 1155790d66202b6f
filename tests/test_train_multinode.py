"""Two "nodes" of one process each on localhost (torchrun --nnodes 2 --node_rank 0/1, static rendezvous on
127.0.0.1): training on latent shards reads disjoint items per rank and resumes mid-epoch, as on one node."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from latent_fixtures import assert_two_ranks_split_and_resumed, prepare_ten_clip_shards

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


@pytest.fixture(scope="module")
def ten_clip_shards(tmp_path_factory) -> Path:
    return prepare_ten_clip_shards(tmp_path_factory.mktemp("shards10"))


@pytest.mark.slow
def test_two_nodes_read_disjoint_items_and_resume_mid_epoch(tmp_path: Path, ten_clip_shards: Path):
    """2 nodes x 1 process, batch 1, 10 items: an epoch is 5 steps per rank covering all 10 items once; stopped
    after 3 steps and resumed by both nodes, the run continues with the 4 items not yet seen."""
    out = tmp_path / "nodes"
    two_nodes([str(ten_clip_shards), str(out), "3", "1"])
    two_nodes([str(ten_clip_shards), str(out), "7", "1", "--resume"])
    assert_two_ranks_split_and_resumed(out)
