"""The model bundle: a directory with ``graft.json`` and ``model.safetensors``. Loading never unpickles.

``graft.json`` records the format version, task, labels, backbone spec, preprocessing, head, strategy,
training configuration, metrics, library versions and the SHA-256 of every weight file. ``graft.json`` is
written last, so a directory holding it is a complete bundle.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._utils import atomic_write_bytes, atomic_write_json, sha256_file
from .errors import BundleError

if TYPE_CHECKING:
    from ._estimator import TransferClassifier

__all__ = ["save_bundle", "load", "read_manifest", "FORMAT", "FORMAT_VERSION"]

FORMAT = "graft-bundle"
FORMAT_VERSION = 1
MANIFEST = "graft.json"
WEIGHTS = "model.safetensors"


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("graft", "torch", "timm", "transformers", "peft", "safetensors", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def save_bundle(est: TransferClassifier, directory: str | Path) -> Path:
    """Write ``est`` (fitted) as a bundle into ``directory`` (created if needed; files replaced atomically)."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in est.model_.state_dict().items()}
    atomic_write_bytes(directory / WEIGHTS, save(state, metadata={"format": FORMAT}))
    est._save_files(directory)
    params = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in est.get_params(deep=False).items()
        if k not in ("strategy", "output_dir", "overwrite")
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": est.task,
        "estimator": type(est).__name__,
        "labels": [_plain(c) for c in est.classes_],
        "backbone": est.backbone_.spec,
        "feature_dim": est.backbone_.feature_dim,
        "head": est.model_.head.config(),
        "strategy": est.strategy_.to_config(),
        "params": params,
        "training": {
            "n_train": getattr(est, "n_train_", None),
            "n_val": getattr(est, "n_val_", None),
            "best_epoch": getattr(est, "best_epoch_", None),
            "best": getattr(est, "best_metrics_", None),
            "fit_seconds": round(getattr(est, "fit_seconds_", 0.0), 3),
            "history": getattr(est, "history_", []),
            "adaptation": getattr(est, "adaptation_diagnostics_", None) if est._has_adaptation_diagnostics() else None,
        },
        "metrics": {"val": getattr(est, "val_metrics_", None)},
        "versions": _versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": {WEIGHTS: sha256_file(directory / WEIGHTS)},
        **est._bundle_extra(),
    }
    atomic_write_json(directory / MANIFEST, manifest)
    return directory


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    mf = path / MANIFEST
    if not mf.exists():
        hint = (
            " It has checkpoints/: the run did not finish; continue it with --resume."
            if (path / "checkpoints").exists()
            else ""
        )
        raise BundleError(f"'{path}' is not a Graft bundle: {MANIFEST} is missing.{hint}")
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"'{mf}' is not valid JSON ({e}).") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"'{mf}' is not a Graft bundle manifest.")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise BundleError(
            f"'{path}' was written by a newer Graft (format {manifest['format_version']}); "
            "upgrade with `pip install -U graft`."
        )
    return manifest


def _estimators() -> dict[str, type[TransferClassifier]]:
    from .embedding import EmbeddingClassifier
    from .ner import TokenClassifier
    from .text import TextClassifier
    from .vision import ImageClassifier

    return {c.task: c for c in (ImageClassifier, TextClassifier, TokenClassifier, EmbeddingClassifier)}


def load(path: str | Path, *, device: str | None = None, verify: bool = True) -> TransferClassifier:
    """Load a bundle written by ``save`` / ``graft train`` as a fitted estimator.

    Args:
        path: the bundle directory.
        device: where to run predictions (default: the saved setting).
        verify: check weight files against the SHA-256 recorded in ``graft.json``.

    Example:
        >>> model = graft.load("runs/ants")  # doctest: +SKIP
        >>> model.predict(["photo.jpg"])  # doctest: +SKIP
    """
    from safetensors.torch import load_file

    from .strategies import resolve_strategy
    from .tasks.classification import ClassificationHead, TransferModel

    path = Path(path)
    m = read_manifest(path)
    weights = path / WEIGHTS
    if not weights.exists():
        raise BundleError(f"'{path}' has no {WEIGHTS}.")
    if verify and sha256_file(weights) != m["files"][WEIGHTS]:
        raise BundleError(f"'{weights}' does not match the hash in {MANIFEST}: the file was changed or damaged.")
    classes = _estimators()
    if m["task"] not in classes:
        raise BundleError(f"'{path}' holds a '{m['task']}' model, which this Graft version cannot load.")
    params = dict(m["params"])
    if device is not None:
        params["device"] = device
    cls = classes[m["task"]]
    est = cls(**params, strategy=m["strategy"]["name"])
    est.strategy = resolve_strategy(m["strategy"]["name"], **m["strategy"]["params"])
    backbone = est._backbone_from_bundle(path, m)
    est.strategy.restore(backbone.module)  # e.g. LoRA adapters kept separate (merge=False)
    model = TransferModel(backbone.module, ClassificationHead.from_config(m["head"]))
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as e:
        raise BundleError(f"'{weights}' does not fit the architecture in {MANIFEST}: {str(e)[:300]}") from None
    model.eval()
    est.backbone_, est.model_, est.strategy_ = backbone, model, est.strategy
    est.classes_ = np.asarray(m["labels"])
    est.val_metrics_ = (m.get("metrics") or {}).get("val")
    training = m.get("training") or {}
    est.history_ = training.get("history", [])
    est.n_train_, est.n_val_ = training.get("n_train"), training.get("n_val")
    est.best_epoch_, est.best_metrics_ = training.get("best_epoch"), training.get("best") or {}
    est.fit_seconds_ = float(training.get("fit_seconds") or 0.0)
    if training.get("adaptation") is not None:
        est.adaptation_diagnostics_ = training["adaptation"]
    if "thresholds" in m:
        est.thresholds_ = np.asarray(m["thresholds"], dtype=float)
    est.manifest_ = m
    return est
