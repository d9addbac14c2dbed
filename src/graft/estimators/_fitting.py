"""Pieces of a fit that are not the estimator's API: the data of one split, validation arguments, the run folder."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["FitData", "split_val", "prepare_run_dir", "process_state", "check_settings", "summarize_fit"]


def split_val(val: Any) -> tuple[Any, Any]:
    """``fit(val=...)``: inputs alone, or an ``(X, y)`` tuple for arrays and lists."""
    if val is None:
        return None, None
    return val if isinstance(val, tuple) else (val, None)


class FitData:
    """Inputs read for one split: ``items`` (modality-specific), encoded labels ``y``, content hashes, sources.

    ``derived`` holds what a modality computes once per split (token ids, NER windows); subsets start without it.
    """

    def __init__(
        self, items: Any, y: Any, hashes: Sequence[str], sources: Sequence[str], split: str | None = None
    ) -> None:
        self.items, self.y, self.hashes, self.sources = items, y, list(hashes), list(sources)
        self.split = split  # the split of a folder or table that was read (train, val, test), if one was chosen
        self.derived: dict[str, Any] = {}
        self.groups: list[str] | None = None  # the group (patient, study) of each example, when the data names them

    def __len__(self) -> int:
        return len(self.hashes)

    def subset(self, idx: Sequence[int]) -> FitData:
        idx = list(idx)
        items = self.items.subset(idx) if hasattr(self.items, "subset") else [self.items[i] for i in idx]
        y = None if self.y is None else self.y[idx]
        out = FitData(items, y, [self.hashes[i] for i in idx], [self.sources[i] for i in idx])
        out.groups = None if self.groups is None else [self.groups[i] for i in idx]
        return out


def prepare_run_dir(
    output_dir: str | Path | None, *, resume: bool, overwrite: bool, device: str = "auto"
) -> Path | None:
    """Create (or check, when resuming) the run directory; ``None`` when there is none.

    Under ``accelerate launch`` every process checks, the main process alone deletes and creates, and the others
    wait for it.

    Raises:
        ConfigError: the directory exists and neither ``resume`` nor ``overwrite`` was given, or ``resume`` was given
            for a directory without checkpoints; ``output_dir`` is an existing file or cannot be created.
    """
    if output_dir is None:
        return None
    run = Path(output_dir)
    if run.exists() and not run.is_dir():
        raise ConfigError(
            f"The run directory '{run}' is a file. Choose a folder path for output_dir (CLI: -o) that is not an "
            "existing file."
        )
    if run.exists() and any(run.iterdir()) and not resume and not overwrite:
        raise ConfigError(
            f"Run directory '{run}' already exists. Pass resume=True (CLI: --resume) to continue it, "
            "overwrite=True (--overwrite) to replace it, or choose another output directory."
        )
    if resume and not (run / "checkpoints").exists():
        raise ConfigError(f"Nothing to resume in '{run}': it has no checkpoints/. Start the run without resume.")
    state = process_state(device)
    if state.is_main_process:
        _check_lock(run)
        if run.exists() and any(run.iterdir()) and not resume:
            shutil.rmtree(run)
        try:
            run.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # no write permission, a read-only disk, a file where a parent folder should be
            raise ConfigError(
                f"Cannot create the run directory '{run}': {e.strerror or e}. Choose an output directory "
                "(CLI: -o) in a folder you can write to."
            ) from None
        _take_lock(run)
        if resume:
            _remove_partial_writes(run)
    state.wait_for_everyone()
    return run


def _remove_partial_writes(run: Path) -> None:
    """Delete the temporary files of writes a killed run left unfinished (``.<name>.<random>.tmp``, never renamed into
    place). Called with the run's lock held, so no live process is writing them."""
    for tmp in run.rglob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)


LOCK = ".graft.lock"


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _check_lock(run: Path) -> None:
    """Refuse a run directory another live process is training into (a stale lock of a killed run is taken over)."""
    import os
    import socket

    lock = run / LOCK
    try:
        owner = lock.read_text().split()
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError:
        owner = []
    if len(owner) >= 2 and owner[1] == socket.gethostname() and owner[0].isdigit():
        pid = int(owner[0])
        if pid != os.getpid() and _alive(pid):
            raise ConfigError(
                f"another graft process (pid {pid}) is training into '{run}'. Wait for it to finish, stop it, or "
                "choose another output directory."
            )


def _take_lock(run: Path) -> None:
    import atexit
    import os
    import socket

    lock = run / LOCK
    lock.write_text(f"{os.getpid()} {socket.gethostname()}\n")
    atexit.register(release_lock, run)


@contextlib.contextmanager
def discard_if_empty(run: Path | None, *, resume: bool, device: str = "auto") -> Iterator[None]:
    """Around a fit into ``run``: when it fails before writing anything there (no checkpoint, no metrics), the new
    run directory is removed rather than left empty; a resumed run's directory, or one with files, is kept."""
    try:
        yield
    except BaseException:
        if run is not None and not resume and process_state(device).is_main_process:
            release_lock(run)
            with contextlib.suppress(OSError):
                run.rmdir()  # only an empty folder
        raise


def release_lock(run: Path) -> None:
    """Remove this process's lock of ``run`` (at the end of a fit, and at exit after a failure)."""
    import os

    lock = run / LOCK
    try:
        if lock.read_text().split()[0] == str(os.getpid()):
            lock.unlink()
    except (OSError, IndexError):
        pass


class _SingleProcess:
    is_main_process = True

    def wait_for_everyone(self) -> None:
        return None


def process_state(device: str = "auto") -> Any:
    """This process's place among the processes of ``accelerate launch`` (a trivial one-process state otherwise, so a
    plain run initialises no distributed state before its first phase picks a device)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _SingleProcess()
    from accelerate import PartialState

    from .._utils import resolve_device

    return PartialState(cpu=resolve_device(device) == "cpu")


def describe_data(X: Any, val: Any, target: Any, train: FitData) -> dict[str, Any]:
    """Where the training data came from, for the bundle: paths (resolved) or the kind of in-memory input, the table
    columns read (texts), and a fingerprint of the training examples' content hashes."""
    import hashlib
    import sys

    def where(v: Any) -> str | None:
        if v is None:
            return None
        if isinstance(v, (str, Path)):
            return str(Path(v).resolve())
        return f"in memory ({type(v).__name__})"

    digest = hashlib.blake2b(digest_size=16)
    for h in sorted(train.hashes):
        digest.update(h.encode())
    out: dict[str, Any] = {"train": where(X), "val": where(val), "target": where(target)}
    columns = getattr(train.items, "columns", None)
    if columns:
        out["columns"] = dict(columns)
    out["fingerprint"] = digest.hexdigest()
    if sys.argv and Path(sys.argv[0]).name in ("graft", "__main__.py"):  # the CLI (also under accelerate launch)
        import shlex

        out["command"] = " ".join(shlex.quote(a) for a in ["graft", *sys.argv[1:]])
    return out


def check_settings(est: Any, strategy: Any) -> None:
    """Every setting of ``est`` checked before any file is read or written (a bad one is a ConfigError)."""
    from .._utils import resolve_device
    from ..training.loop import TrainConfig

    resolve_device(est.device)
    if strategy.tasks and est.task not in strategy.tasks:
        from ..strategies.base import list_strategies

        raise ConfigError(
            f"The '{strategy.name}' strategy is made for {' and '.join(strategy.tasks)}, not for {type(est).__name__} "
            f"({est.task}). Use one of: {', '.join(list_strategies(adaptation=False, task=est.task))}."
        )
    from ..inference import BACKENDS

    if est.backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got '{est.backend}'.")
    if est.log_with is not None:
        import importlib.util

        if est.output_dir is None:
            raise ConfigError(f"log_with='{est.log_with}' writes under the run directory: give output_dir (CLI: -o).")
        package = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}.get(est.log_with)
        if package is None:
            raise ConfigError(f"log_with must be tensorboard, wandb or mlflow; got '{est.log_with}'.")
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"log_with='{est.log_with}' needs the {package} package: pip install {package}.")
    if not 0.0 <= float(est.val_fraction or 0.0) < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1); got {est.val_fraction}.")
    if est.patience is not None and est.patience < 1:
        raise ConfigError(f"patience must be >= 1 epoch (or None); got {est.patience}.")
    TrainConfig(
        epochs=int(est.epochs if est.epochs is not None else strategy.default_epochs),
        lr=float(est.lr if est.lr not in (None, "auto") else strategy.lr_for(est.modality)),
        batch_size=est.batch_size,
        grad_accum=est.grad_accum,
        precision=est.precision,
        schedule=est.schedule,
    )


def plain(v: Any) -> Any:
    """A numpy scalar as its Python value (JSON-ready), anything else unchanged."""
    return v.item() if isinstance(v, np.generic) else v


def summarize_fit(est: Any) -> dict[str, Any]:
    """``est.training_summary()``: rows, best epoch and metrics, times, adaptation diagnostics, importance weights."""
    adaptation = getattr(est, "adaptation_diagnostics_", None) if est.strategy_.adaptation else None
    weights = getattr(est, "importance_weights_", None)
    return {
        "n_train": est.n_train_,
        "n_val": est.n_val_,
        "best_epoch": est.best_epoch_,
        "best": est.best_metrics_,
        "fit_seconds": round(est.fit_seconds_, 2),
        "embed_seconds": round(getattr(est, "embed_seconds_", 0.0), 2),
        **({"label_prompts": est.label_prompts_} if getattr(est, "label_prompts_", 0) else {}),
        **({"adaptation": adaptation} if adaptation is not None else {}),
        **({"importance_weights": weights} if weights is not None else {}),
        "val": None
        if est.val_metrics_ is None
        else {k: est.val_metrics_[k] for k in est.task_.summary_keys if k in est.val_metrics_},
    }
