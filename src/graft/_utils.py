"""Small helpers shared across the package: atomic writes, seeding, hashing, runtime tuning."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DiskFullError, UnwritableError

_ALLOCATOR_TUNED = False


def tune_allocator() -> None:
    """Keep glibc from mmap-ing and unmapping every large activation buffer.

    With the default malloc, each buffer above the mmap threshold is returned to the kernel after use, and the
    next forward pass page-faults it back in. On a 2-core CPU that halves convnet throughput. Setting
    ``M_MMAP_MAX=0`` and a huge ``M_TRIM_THRESHOLD`` keeps freed memory in the process. No-op off glibc.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    if os.environ.get("GRAFT_NO_MALLOC_TUNING"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX
        libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: errno values of a full disk, and how messages name them
_DISK_FULL = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded"}


def _disk_full(path: Path, exc: OSError) -> DiskFullError:
    err = DiskFullError(
        f"Cannot write '{path}': {_DISK_FULL[exc.errno]} ({exc.strerror or exc}). Free some space on that disk or "
        "write somewhere else (output_dir / -o for runs and models, GRAFT_CACHE_DIR for the embedding cache), then "
        "run again; a training run continues from its last checkpoint with resume=True (--resume). No file was left "
        "half-written."
    )
    err.errno = exc.errno
    return err


def check_writable(path: str | os.PathLike[str], what: str = "") -> None:
    """Fail before any work when a file cannot be created at ``path`` (its folder may not exist yet): a file stands
    where a folder is needed, or the nearest existing folder takes no new files. ``what`` names the option (``-o``).

    Raises:
        UnwritableError: saying why, naming ``what``.
    """
    path = Path(path)
    place = path.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        if not place.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(place))
        with tempfile.TemporaryFile(dir=place):
            pass
    except OSError as exc:
        raise _unwritable(path, exc, what) from None


def _unwritable(path: Path, exc: OSError, what: str = "") -> UnwritableError:
    blocker = next((p for p in (path, path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), None)
    why = f"'{blocker}' is a file, not a folder" if blocker is not None and blocker != path else exc.strerror or exc
    option = f" ({what})" if what else ""
    err = UnwritableError(f"Cannot write '{path}'{option}: {why}. Choose another place to write it.")
    err.errno = exc.errno
    return err


def _stage(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file in ``path``'s folder (flushed to disk); return the temporary name."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise _disk_full(path, exc) from exc
        raise _unwritable(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            raise _disk_full(path, exc) from exc
        raise
    return tmp


def atomic_write_files(files: Sequence[tuple[str | os.PathLike[str], bytes]]) -> None:
    """Write each ``(path, data)`` through a temporary file in the same folder, then rename them into place in order.

    Every file is written out before the first rename, so a write that fails (a full disk) leaves all the targets as
    they were and no temporary file behind. A crash between two renames leaves the earlier files new and the later
    ones old (write the file that marks the set complete last).

    Raises:
        DiskFullError: the disk or the quota is full.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            staged.append((_stage(Path(path), data), Path(path)))
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:  # the ones already renamed are gone
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    Raises:
        DiskFullError: the disk or the quota is full (``path`` is left as it was).
    """
    atomic_write_files([(path, data)])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented JSON text (numpy values and paths as plain values)."""
    return (json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n").encode()


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename.

    On error the temporary folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise FileExistsError(path)
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_root() -> Path:
    """Where Graft keeps its on-disk caches: ``$GRAFT_CACHE_DIR`` or ``~/.cache/graft``."""
    env = os.environ.get("GRAFT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graft"


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (tiny ops are slower when split across threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def watched() -> bool:
    """Whether a person is likely watching this process: stderr is a terminal, or it runs in a Jupyter kernel."""
    import sys

    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def resolve_device(device: str = "auto") -> str:
    """``auto`` as the best available device (CUDA, then Apple MPS, then the CPU); other names unchanged.

    Raises:
        ConfigError: the device is not a device name, or names one this machine does not have.
    """
    import torch

    from .errors import ConfigError

    if device != "auto":
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ConfigError(f"'{device}' is not a device; use auto, cpu, cuda, cuda:1 or mps.") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device '{device}': this machine has no CUDA GPU that torch can use. Use cpu or auto.")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device '{device}': there are {torch.cuda.device_count()} CUDA devices (cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1})."
            )
        mps = getattr(torch.backends, "mps", None)
        if dev.type == "mps" and not (mps is not None and mps.is_available()):
            raise ConfigError(f"device '{device}': Apple MPS is not available here. Use cpu or auto.")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    return device
