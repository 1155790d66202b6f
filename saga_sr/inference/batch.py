"""Files processed by several processes (CPU cores, GPUs, nodes): Lightning's predict loop under DDP.

`run_ranks` spreads any per-file step over the ranks and gathers each file's result on rank 0 (`evaluate`
scores its test files this way); `run_batch` is `upsample`'s batch on top of it.

Lightning starts the local processes (`--processes N`: it reruns this command line with LOCAL_RANK set) or joins
the ones torchrun started (any number of nodes), picks each rank's device and opens the process group.
Every rank plans the same sorted (input, output) list before the process group exists, so before any rank
writes; the ranks then check that they planned the same list and rank r takes files r, r + W, r + 2W, ... of it.
Each file runs the single-process step with the same options and seed (the noise depends on the seed and the
window only), so the outputs do not depend on the rank, the order or the number of processes (bit for bit at
the same threads per process: CPU matrix products round differently with other thread counts).

A failing file fails alone. The ranks share a counter and their results through the process group's key-value
store (no collective, so ranks with unequal work never wait on each other until the end): every file's line
shows the files done across the whole batch, and rank 0 prints the summary of all ranks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

__all__ = ["Layout", "failures", "plan_digest", "plan_layout", "predict_module", "run_batch", "run_ranks", "shard"]

# the slowest rank may finish long after the others (one long recording): wait for it this long at the end
RESULT_TIMEOUT = timedelta(days=7)
_DONE, _RESULT, _PLAN = "saga_sr/batch/done", "saga_sr/batch/result/", "saga_sr/batch/plan/"


@dataclass(frozen=True)
class Layout:
    """Where the ranks run: Lightning's accelerator, devices per node, node count, and who started them."""

    accelerator: str  # "cpu" or "gpu"
    devices: int | list[int]  # processes per node (or the GPU indices)
    num_nodes: int
    torchrun: bool  # started by torchrun (else Lightning starts the local processes)

    @property
    def world_size(self) -> int:
        per_node = len(self.devices) if isinstance(self.devices, list) else self.devices
        return per_node * self.num_nodes


def say(line: str) -> None:
    """One line on stderr in a single write: ranks share the stream, and a line written in two pieces (text,
    then newline) can be cut in half by another rank's line."""
    sys.stderr.flush()
    data = (line + "\n").encode("utf-8", "replace")
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured or replaced stream: no descriptor to share
        sys.stderr.write(line + "\n")
        return
    os.write(fd, data)


def _torchrun_world(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(world size, processes per node) when torchrun started this process, else None."""
    if "TORCHELASTIC_RUN_ID" not in environ or "WORLD_SIZE" not in environ:
        return None
    world = int(environ["WORLD_SIZE"])
    return world, int(environ.get("LOCAL_WORLD_SIZE", world))


def plan_layout(
    device: str,
    processes: int,
    devices: Sequence[int] | None,
    environ: Mapping[str, str] = os.environ,
    gpu_count: int = 0,
) -> Layout | None:
    """The layout for `--device`, `--processes` and `--devices` (or torchrun's environment); None for one
    process. ValueError names the option that does not fit."""
    kind = device.split(":")[0]
    started = _torchrun_world(environ)
    if started is not None:
        if processes != 1 or devices:
            raise ValueError(
                "--processes/--devices: torchrun starts the processes (--nnodes, --nproc_per_node); leave them out"
            )
        world, per_node = started
        if kind == "cuda" and ":" in device:
            raise ValueError(
                f"--device {device}: under torchrun each process takes the GPU of its local rank; give --device cuda"
            )
        if world <= 1:
            return None
        return Layout("gpu" if kind == "cuda" else "cpu", per_node, world // per_node, torchrun=True)
    if devices:
        if kind != "cuda":
            raise ValueError(f"--devices: GPU indices need CUDA (--device cuda); this run's device is {device}")
        if processes not in (1, len(devices)):
            raise ValueError(f"--processes {processes}: --devices names {len(devices)} GPU(s), one process each")
        if len(set(devices)) != len(devices) or max(devices) >= gpu_count:
            raise ValueError(
                f"--devices {','.join(map(str, devices))}: this machine has {gpu_count} CUDA "
                "device(s), numbered from 0, each named once"
            )
        return Layout("gpu", list(devices), 1, torchrun=False) if len(devices) > 1 else None
    if processes <= 1:
        return None
    if kind == "cuda":
        if ":" in device:
            raise ValueError(f"--processes {processes} with --device {device}: name the GPUs with --devices")
        if processes > gpu_count:
            raise ValueError(f"--processes {processes}: this machine has {gpu_count} CUDA device(s)")
        return Layout("gpu", processes, 1, torchrun=False)
    if kind != "cpu":
        raise ValueError(f"--processes: not supported with --device {device}; use cpu or cuda")
    return Layout("cpu", processes, 1, torchrun=False)


def shard(items: Sequence, rank: int, world: int) -> list:
    """Rank `rank`'s part of `items`: every world-th item from position `rank`, so the parts of all ranks are
    disjoint, cover `items`, and differ in length by at most one."""
    return list(items[rank::world])


def plan_digest(pairs: Sequence[tuple[Path, Path]]) -> str:
    """A fingerprint of the (input, output) list, compared across ranks before any of them writes."""
    text = "\n".join(f"{src}\t{dst}" for src, dst in pairs)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def check_relaunchable(argv0: str, main_spec: str | None, command: str = "upsample") -> None:
    """ValueError unless this process was started as `saga-sr` / `python -m saga_sr`: Lightning starts the other
    local processes by rerunning this process's command line."""
    if (main_spec or "").startswith("saga_sr") or Path(argv0).name.startswith(("saga-sr", "saga_sr")):
        return
    raise ValueError(
        "--processes/--devices: the other processes rerun this command line, so start it as "
        f"`saga-sr {command} ...` or `python -m saga_sr {command} ...` (or under torchrun)"
    )


@contextlib.contextmanager
def _quiet_lightning():
    """Lightning's start-up notes and training-minded warnings (devices found, process group registered, a
    loader without workers, predict_step returning None) are not the batch's output."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for text in ("predict returned None", ".*does not have many workers", ".*LeafSpec.*is deprecated"):
                warnings.filterwarnings("ignore", message=text)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _store():
    """The process group's key-value store (the rendezvous's TCPStore)."""
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()


def _identity(x):
    return x


def predict_module(
    items: Sequence, name: Callable, digest: str, make_step: Callable, quiet: bool, setup_line: str | None
):
    """The LightningModule whose predict_step runs the step on one item of this rank's part."""
    import lightning as L
    from torch.utils.data import DataLoader

    from saga_sr.errors import OutputError
    from saga_sr.inference.files import failure_line

    class BatchRun(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.done: list[list] = []  # [position in the plan, the step's result] of this rank
            self.failed: list[list] = []  # [position in the plan, item name, 'ITEM: reason'] of this rank
            self.part: list[int] = []
            self.step = None

        def setup(self, stage: str) -> None:
            store, world, rank = _store(), self.trainer.world_size, self.global_rank
            store.set(f"{_PLAN}{rank}", digest)
            keys = [f"{_PLAN}{r}" for r in range(world)]
            store.wait(keys, timedelta(minutes=30))
            if len({store.get(k) for k in keys}) != 1:
                raise OutputError(
                    "the ranks found different input files or outputs (does every node see the "
                    "same folders?); nothing was written"
                )
            if rank == 0 and setup_line:
                print(setup_line, file=sys.stderr)
            self.part = shard(range(len(items)), rank, world)
            self.step = make_step(self.trainer.strategy.root_device)

        def predict_dataloader(self):
            # Lightning refuses an empty loader; a rank with no files (more ranks than files) gets one no-op item
            return DataLoader(self.part or [None], batch_size=None, collate_fn=_identity)

        def predict_step(self, index: int | None, batch_idx: int = 0) -> None:
            if index is None:
                return
            item = items[index]
            try:
                text, result = self.step(item)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 -- one bad item must not stop the batch
                self.failed.append([index, name(item), failure_line(name(item), exc)])
                done = _store().add(_DONE, 1)
                say(f"[{done}/{len(items)}] FAILED {self.failed[-1][2]}")
                return
            self.done.append([index, result])
            done = _store().add(_DONE, 1)
            if not quiet:
                say(f"[{done}/{len(items)}] {text}")

    return BatchRun()


def gather_results(
    store,
    rank: int,
    world: int,
    ok: int,
    failed: list[list],
    ended: Callable[[set[int]], dict[int, str]],
    done: list | None = None,
) -> list[dict] | None:
    """Every rank's counts and failures, on rank 0 (None elsewhere), through `store` (a torch.distributed Store):
    the slowest rank is waited for without holding the others in a collective. `ended(missing)` maps the ranks
    among `missing` whose process has exited to a reason; one that still has not reported then crashed, which
    stops the wait (RankEnded). torchrun stops the other workers itself when one fails. `done`: the rank's
    [position, result] pairs (JSON values), returned under "done"."""
    report = {"rank": rank, "ok": ok, "failed": failed, "done": done or []}
    store.set(f"{_RESULT}{rank}", json.dumps(report))
    if rank != 0:
        return None
    keys = [f"{_RESULT}{r}" for r in range(world)]
    deadline = time.monotonic() + RESULT_TIMEOUT.total_seconds()
    while not store.check(keys):
        gone = ended({r for r, k in enumerate(keys) if not store.check([k])})
        crashed = [text for r, text in gone.items() if not store.check([keys[r]])]  # reported, then exited: fine
        if crashed or time.monotonic() > deadline:
            raise RankEnded(crashed[0] if crashed else f"no result from every rank after {RESULT_TIMEOUT}")
        time.sleep(0.2)
    return [json.loads(store.get(k)) for k in keys]


class RankEnded(RuntimeError):
    """A rank ended before reporting its files."""


def _local_ranks_ended(trainer, missing: set[int]) -> dict[int, str]:
    """{rank: 'rank R ended with exit code X'} for the processes Lightning started here (ranks 1..N-1) among
    `missing` that have exited."""
    procs = getattr(trainer.strategy.launcher, "procs", None) or []
    return {
        rank: f"rank {rank} ended with exit code {proc.returncode}"
        for rank, proc in enumerate(procs, start=1)
        if rank in missing and proc.poll() is not None
    }


def summary_line(ok: int, failed: Sequence[str], kept: int) -> str:
    """The single-process summary line, for the whole batch (`failed`: the failed inputs)."""
    return f"upsample: {ok} ok, {len(failed)} failed, {kept} kept (existing)" + (
        f" ({', '.join(failed)})" if failed else ""
    )


def run_ranks(
    items: Sequence,
    layout: Layout,
    *,
    name: Callable[[object], str],
    digest: str,
    make_step: Callable,
    quiet: bool = False,
    setup_line: str | None = None,
) -> list[dict] | None:
    """Run a step on every item of `items` over the ranks of `layout`, each item on exactly one rank; every
    rank's report on rank 0 (None on the others, once they have reported), in rank order.

    make_step(torch.device) loads what the step needs once per rank and returns step(item) -> (the item's line,
    a JSON value); a step that raises fails that item alone ('ITEM: reason', `name(item)` naming it). `digest`
    fingerprints the plan: ranks that planned differently stop before any step runs. A report is
    {"rank", "ok", "failed": [[position, name, line]], "done": [[position, value]]}; RankEnded when a rank
    crashed before reporting."""
    import lightning as L
    from lightning.fabric.plugins.environments import LightningEnvironment, TorchElasticEnvironment
    from lightning.pytorch.strategies import DDPStrategy

    module = predict_module(list(items), name, digest, make_step, quiet, setup_line)
    environment = TorchElasticEnvironment() if layout.torchrun else LightningEnvironment()
    with _quiet_lightning():
        trainer = L.Trainer(
            accelerator=layout.accelerator,
            devices=layout.devices,
            num_nodes=layout.num_nodes,
            strategy=DDPStrategy(timeout=RESULT_TIMEOUT),
            plugins=[environment],
            precision="32-true",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
            inference_mode=False,
        )
        trainer.predict(module, return_predictions=False)
    return gather_results(
        _store(),
        trainer.global_rank,
        trainer.world_size,
        len(module.done),
        module.failed,
        lambda missing: _local_ranks_ended(trainer, missing),
        module.done,
    )


def failures(results: Sequence[dict], layout: Layout) -> list[list]:
    """Every rank's failures in plan order, as [position, name, line, rank]; the lines of ranks on other nodes
    (printed on their own console) are repeated here."""
    failed = sorted(item + [r["rank"]] for r in results for item in r["failed"])
    per_node = layout.world_size // layout.num_nodes
    for _, _, line, rank in failed:
        if rank >= per_node:
            say(f"FAILED (rank {rank}) {line}")
    return failed


def run_batch(
    pairs: Sequence[tuple[Path, Path]], kept: int, layout: Layout, *, make_step: Callable, quiet: bool = False
) -> int:
    """Upsample `pairs` over the ranks of `layout`; the exit code, on rank 0: 1 if a file failed anywhere, else 0
    (the other ranks exit 0 once they have reported).

    make_step(torch.device) loads the model once per rank and returns step(src, dst) -> the file's line
    (raising with the reason when the file fails). Rank 0 prints the batch's summary on stdout."""

    def make_pair_step(device):
        step = make_step(device)
        return lambda pair: (step(*pair), None)

    try:
        results = run_ranks(
            pairs,
            layout,
            name=lambda pair: str(pair[0]),
            digest=plan_digest(pairs),
            make_step=make_pair_step,
            quiet=quiet,
            setup_line=f"upsample: {kept} existing output(s) kept (--skip-existing)" if kept else None,
        )
    except RankEnded as exc:
        print(
            f"upsample: {exc} before finishing its files; the outputs written are complete, rerun with "
            "--skip-existing to do the rest",
            file=sys.stderr,
        )
        return 1
    if results is None:  # rank 0 exits with the batch's code; a non-zero exit here would make Lightning kill it
        return 0
    failed = failures(results, layout)
    print(summary_line(sum(r["ok"] for r in results), [src for _, src, _, _ in failed], kept))
    return 1 if failed else 0
