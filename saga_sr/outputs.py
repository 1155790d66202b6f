"""Where command outputs go and how they are written: the output contract every command shares.

- `-o`: with exactly one input *file* and an `-o` ending in an audio extension, `-o` is that output file;
  otherwise it is a folder (an audio-looking `-o` with several inputs is refused, not made into a folder).
- Existing outputs are refused unless `overwrite` (replace them) or `skip_existing` (keep them: resume an
  interrupted batch); an output that would replace an input or collide with another output is refused.
- Every output folder is checked writable before any work starts, and nothing is created by the check.
- Writes are atomic: a temporary beside the target, renamed over it. Temporaries are created here and only
  here, with the permissions of an ordinary file or folder (0666 / 0777 less the umask, e.g. 0644 / 0755;
  `tempfile.mkstemp` / `mkdtemp` would give 0600 / 0700; `make_ordinary` fixes a file a library wrote
  0600, as safetensors does). Their names are recognisable,
  `.NAME.PID-TOKEN.saga-partial`, so a run into a folder removes those a killed run (SIGKILL) left behind.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

from saga_sr.errors import OutputError

TEMP_SUFFIX = ".saga-partial"
_TEMP_RE = re.compile(r"^\..*\.(\d+)-[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + "$")


# ---- temporaries -------------------------------------------------------------------------------------------
def temp_name(path: Path) -> Path:
    """A fresh recognisable temporary name beside `path` (not created)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def new_temp_file(path: str | os.PathLike) -> Path:
    """An empty temporary file beside `path` (mode 0666 less the umask), for writing then `os.replace`."""
    path = Path(path)
    while True:
        tmp = temp_name(path)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def new_temp_dir(path: str | os.PathLike) -> Path:
    """An empty temporary folder beside `path` (mode 0777 less the umask)."""
    path = Path(path)
    while True:
        tmp = temp_name(path)
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else set-and-restore."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_ordinary(path: str | os.PathLike) -> None:
    """Give a file written by a library that forces 0600 (safetensors) the mode of an ordinary file."""
    os.chmod(path, 0o666 & ~current_umask())


def remove_temp(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp.exists() or tmp.is_symlink():
        tmp.unlink()


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary file path beside `path`; on success it replaces `path`, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_file(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        remove_temp(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically with ordinary permissions."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries in `folder` (not below it) whose writing process no longer runs; return them.

    The PID is in the name, so a concurrent run's live temporaries are left alone."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = _TEMP_RE.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            remove_temp(entry)
            removed.append(entry)
    return removed


# ---- planning ----------------------------------------------------------------------------------------------
def names_a_file(output: str | os.PathLike, extensions: Iterable[str]) -> bool:
    """Whether `-o output` means a file: it ends in one of `extensions` and is not an existing folder."""
    out = Path(output)
    return out.suffix.lower() in {e.lower() for e in extensions} and not out.is_dir()


def plan_outputs(
    found: Sequence[tuple[Path, Path]],
    output: str | os.PathLike,
    *,
    suffix: str | None,
    file_extensions: Iterable[str],
    single_input_file: bool,
) -> list[tuple[Path, Path]]:
    """(input, output) pairs for `found` (input, name relative to its argument) under the `-o` contract.

    `suffix` replaces each relative name's extension in folder mode (None keeps it). `single_input_file`:
    the command named exactly one input and it is a file. Refuses an output that would replace an input and
    two inputs written to one output."""
    out = Path(output)
    if names_a_file(out, file_extensions):
        if not (single_input_file and len(found) == 1):
            raise OutputError(
                f"-o {out}: a file name, but {len(found)} inputs were given; -o names a file only "
                "for one input file, otherwise a folder"
            )
        pairs = [(found[0][0], out)]
    else:
        if out.exists() and not out.is_dir():
            raise OutputError(
                f"-o {out}: exists and is not a folder (an output file needs one input file and an audio extension)"
            )
        pairs = [(src, out / (rel.with_suffix(suffix) if suffix else rel)) for src, rel in found]
    sources = {src.resolve() for src, _ in found}
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        key = dst.resolve()
        if key in sources:
            raise OutputError(f"output {dst} would replace the input {key}; choose another -o")
        if key in seen:
            raise OutputError(f"inputs {seen[key]} and {src} would both be written to {dst}")
        seen[key] = src
    return pairs


def apply_existing_policy(
    pairs: Sequence[tuple[Path, Path]], *, overwrite: bool = False, skip_existing: bool = False
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(pairs to do, outputs kept because they exist). Existing outputs are an error unless a flag says what
    to do with them; an output path that is a folder is always an error."""
    if overwrite and skip_existing:
        raise OutputError("--overwrite and --skip-existing contradict each other; give one")
    todo, kept = [], []
    for src, dst in pairs:
        if dst.is_dir():
            raise OutputError(f"output {dst} is a folder; cannot write a file there")
        if dst.exists() and not overwrite:
            kept.append(dst)
        else:
            todo.append((src, dst))
    if kept and not skip_existing:
        more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
        raise OutputError(
            f"output {kept[0]}{more} already exists; pass --overwrite to replace "
            f"{'them' if more else 'it'} or --skip-existing to keep {'them' if more else 'it'}"
        )
    return todo, kept


def check_writable(paths: Iterable[str | os.PathLike]) -> None:
    """OutputError unless every path's folder exists writable or can be created. Nothing is left behind: the
    nearest existing folder is tried with an empty folder made and removed at once, because `os.access` says
    yes to root everywhere, also where the file system refuses (/proc, a read-only mount)."""
    checked: set[Path] = set()
    probed: set[Path] = set()
    for p in paths:
        folder = Path(p).absolute().parent
        if folder in checked:
            continue
        checked.add(folder)
        probe = folder
        while not probe.exists():
            if probe.is_symlink():
                raise OutputError(f"{p}: {probe} is a broken link")
            probe = probe.parent
        if not probe.is_dir():
            raise OutputError(f"{p}: cannot create the folder {folder}: {probe} is a file")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise OutputError(f"{p}: the folder {probe} is not writable")
        if probe not in probed:
            probed.add(probe)
            try:
                os.rmdir(tempfile.mkdtemp(prefix=".saga-probe-", dir=probe))
            except OSError as exc:
                raise OutputError(f"{p}: the folder {probe} is not writable ({exc.strerror or exc})") from None


def prepare_folders(paths: Iterable[str | os.PathLike]) -> int:
    """Create the output folders of `paths` and remove stale temporaries in them; the count removed."""
    count = 0
    for folder in sorted({Path(p).parent for p in paths}):
        folder.mkdir(parents=True, exist_ok=True)
        count += len(clean_stale_temps(folder))
    return count
