"""The package layering (README "Layout") holds: a module imports only from its own layer or lower ones, no
two packages import each other, and no two modules import each other (directly or round a longer loop).
Imports are read with `ast` from every module, including the ones inside functions and under
`if TYPE_CHECKING:`, so neither a lazy nor a typing-only import can hide a dependency."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import saga_sr

# lowest first; `saga_sr/__init__.py` (the version string) sits below all of them
LAYERS = (
    "errors",
    "seeding",
    "outputs",
    "audio",
    "config",
    "models",
    "flow",
    "data",
    "inference",
    "training",
    "evaluation",
    "experiments",
    "app",
    "cli",
)
PACKAGE_DIR = Path(saga_sr.__file__).resolve().parent
# files that are not layers of their own: the `python -m saga_sr` entry point is part of the CLI
FILE_LAYER = {"__main__": "cli"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a `saga_sr...` module name; None for the package root and for other libraries."""
    parts = module.split(".")
    if parts[0] != "saga_sr" or len(parts) == 1:
        return None
    return FILE_LAYER.get(parts[1], parts[1])


def saga_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported saga_sr module) for every import in the file, at any depth; relative imports resolved."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from saga_sr import audio` names a package; `from saga_sr import __version__` names the root
            out += [
                (node.lineno, f"{target}.{a.name}" if target == "saga_sr" and not a.name.startswith("__") else target)
                for a in node.names
            ]
    return [(line, name) for line, name in out if name == "saga_sr" or name.startswith("saga_sr.")]


def package_modules() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def upward_imports(files: list[Path]) -> list[str]:
    bad = []
    for path in files:
        mine = layer_of(module_name(path))
        for line, target in saga_imports(path):
            theirs = layer_of(target)
            if mine is None and target != "saga_sr":
                bad.append(f"{path.name}:{line}: the package root imports {target}")
            elif mine is not None and theirs is not None and LAYERS.index(theirs) > LAYERS.index(mine):
                bad.append(f"{path.relative_to(PACKAGE_DIR)}:{line}: {mine} imports {target} ({theirs} is higher)")
    return bad


def package_cycles(files: list[Path]) -> list[list[str]]:
    """Every cycle in the graph of layer -> imported layer (self-imports left out), as its list of layers."""
    edges: dict[str, set[str]] = {}
    for path in files:
        mine = layer_of(module_name(path))
        for _, target in saga_imports(path):
            theirs = layer_of(target)
            if mine and theirs and theirs != mine:
                edges.setdefault(mine, set()).add(theirs)
    cycles, seen = [], set()

    def walk(node: str, stack: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in stack:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle + [nxt])
            else:
                walk(nxt, stack + [nxt])

    for start in sorted(edges):
        walk(start, [start])
    return cycles


def module_imports(path: Path, known: set[str]) -> set[str]:
    """The saga_sr modules `path` imports: `from a.b import c` names module a.b.c when that is a module of
    `known`, else a.b itself (a package's __init__)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            out |= {f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names}
    return {m for m in out if m in known and m != me}


def module_cycles(files: list[Path]) -> list[list[str]]:
    """The modules that import each other, as groups (strongly connected components of size > 1), sorted."""
    graph = {module_name(p): set() for p in files}
    for p in files:
        graph[module_name(p)] = module_imports(p, set(graph))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def test_every_module_belongs_to_a_layer():
    unknown = sorted({layer_of(module_name(p)) for p in package_modules()} - set(LAYERS) - {None})
    assert not unknown, f"packages/modules outside the layer order {LAYERS}: {unknown} (add them to README and here)"


def test_no_module_imports_a_higher_layer():
    bad = upward_imports(package_modules())
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycle_between_packages():
    cycles = package_cycles(package_modules())
    assert not cycles, "import cycles between packages: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_import_cycle_between_modules():
    cycles = module_cycles(package_modules())
    assert not cycles, "modules that import each other: " + "; ".join(" <-> ".join(c) for c in cycles)


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A throwaway `saga_sr` tree, so the checkers are shown to catch what they claim to."""
    root = tmp_path / "saga_sr"
    monkeypatch.setattr(f"{__name__}.PACKAGE_DIR", root)
    _write(root, "__init__.py", "")
    return root


def test_checker_catches_a_function_level_upward_import(fake_package):
    ok = _write(fake_package, "models/build.py", "from saga_sr.audio.io import load_audio\nfrom ..errors import X\n")
    bad = _write(fake_package, "audio/io.py", "def f():\n    from saga_sr.training import run\n")
    rel = _write(fake_package, "models/sao.py", "def f():\n    from ..inference import pipeline\n")
    assert upward_imports([ok]) == []
    assert upward_imports([bad]) == ["audio/io.py:2: audio imports saga_sr.training (training is higher)"]
    assert upward_imports([rel]) == ["models/sao.py:2: models imports saga_sr.inference (inference is higher)"]


def test_checker_catches_a_cycle(fake_package):
    a = _write(fake_package, "evaluation/evaluate.py", "from saga_sr.experiments import stats\n")
    b = _write(fake_package, "experiments/report.py", "import saga_sr.evaluation.evaluate\n")
    c = _write(fake_package, "experiments/ladder.py", "from saga_sr import evaluation\n")
    assert package_cycles([a, b]) == [["evaluation", "experiments", "evaluation"]]
    assert package_cycles([a, c]) == [["evaluation", "experiments", "evaluation"]]
    assert package_cycles([b, c]) == []


def test_checker_catches_a_module_cycle(fake_package):
    init = _write(fake_package, "inference/__init__.py", "")
    pipe = _write(fake_package, "inference/pipeline.py", "from saga_sr.inference.chunks import ChunkDecoder\n")
    typing_only = _write(
        fake_package,
        "inference/chunks.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from saga_sr.inference.pipeline import Upsampler\n",
    )
    lazy = _write(fake_package, "inference/stream.py", "def f():\n    from . import pipeline\n")
    leaf = _write(fake_package, "inference/windows.py", "import saga_sr.inference.pipeline\n")
    assert module_cycles([init, pipe, typing_only]) == [["saga_sr.inference.chunks", "saga_sr.inference.pipeline"]]
    assert module_cycles([init, pipe, leaf]) == []
    lazy_cycle = _write(fake_package, "inference/chunks.py", "from .stream import f\n")
    assert module_cycles([init, pipe, lazy_cycle, lazy]) == [
        ["saga_sr.inference.chunks", "saga_sr.inference.pipeline", "saga_sr.inference.stream"]
    ]


def test_loading_a_model_does_not_import_lightning_and_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from saga_sr.cli import build_parser\n"
        "build_parser()\n"
        "assert 'torch' not in sys.modules, 'saga-sr --help imports torch'\n"
        "from saga_sr.models.checkpoint import load_model\n"
        "assert 'lightning' not in sys.modules, 'saga_sr.models.checkpoint imports lightning'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ---- the config is read raw only by saga_sr/config/ and the builder ------------------------------------------
# keys of the config's top level and of its `model` / `training` sections; a subscript or .get/.pop/.setdefault
# with one of them outside the readers below is a raw config read (typed settings exist for it)
CONFIG_KEYS = {
    "model_type",
    "sample_rate",
    "sample_size",
    "audio_channels",
    "model",
    "training",
    "pretransform",
    "conditioning",
    "diffusion",
    "io_channels",
    "optimizer_configs",
}
RAW_READERS = ("config/", "models/build.py")  # the parser, and the builder that turns `model` into modules
# reads of other objects that share a key name: (file, expression) -> why it is not the config
NOT_CONFIG = {
    ("data/latents.py", "info['pretransform']"): "the shards' prepare_info.json, compared with the typed settings",
    ("training/module.py", "ema['model']"): "the EMA copy's ModuleDict, whose DiT is named `model` as in SAT",
}


def raw_config_reads(text: str) -> list[tuple[int, str]]:
    """(line, expression) of every subscript or .get/.pop/.setdefault with a config key in `text`."""
    out = []
    for node in ast.walk(ast.parse(text)):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop", "setdefault")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        if isinstance(key, str) and key in CONFIG_KEYS:
            out.append((node.lineno, ast.unparse(node)))
    return out


def test_the_config_is_read_raw_only_by_config_and_the_builder():
    bad, allowed_seen = [], set()
    for path in package_modules():
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        if rel.startswith(RAW_READERS):
            continue
        for line, expr in raw_config_reads(path.read_text(encoding="utf-8")):
            if (rel, expr) in NOT_CONFIG:
                allowed_seen.add((rel, expr))
            else:
                bad.append(f"{rel}:{line}: {expr}")
    assert not bad, "raw config reads (use ModelSettings / TrainingSettings):\n" + "\n".join(bad)
    assert allowed_seen == set(NOT_CONFIG), f"stale allow-list entries: {set(NOT_CONFIG) - allowed_seen}"


def test_raw_config_read_checker_catches_subscripts_and_gets():
    text = (
        "def f(cfg):\n    d = cfg['model']['diffusion']\n    t = cfg.get('training', {})\n"
        "    return cfg.get('model_type'), d.get('steps'), cfg[key]\n"
    )
    assert sorted(line for line, _ in raw_config_reads(text)) == [2, 2, 3, 4]
