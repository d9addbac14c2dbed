"""An estimator as bundle parts (weights, manifest, extra files) and back; :func:`load` finds the estimator class by
the task name the bundle records."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..bundle import _DAMAGED
from ..errors import BundleError, GraftError
from ._fitting import plain

if TYPE_CHECKING:
    from .base import TransferEstimator

__all__ = ["ESTIMATORS", "estimator_class", "bundle_parts", "load"]

#: task name in bundles -> (module, class) of its estimator; imported on first use
ESTIMATORS: dict[str, tuple[str, str]] = {
    "image-classification": ("graft.estimators.image", "ImageClassifier"),
    "text-classification": ("graft.estimators.text", "TextClassifier"),
    "token-classification": ("graft.estimators.tokens", "TokenClassifier"),
    "embedding-classification": ("graft.estimators.embedding", "EmbeddingClassifier"),
    "tabular-classification": ("graft.estimators.tabular", "TabularClassifier"),
}


def estimator_class(task: str) -> type[TransferEstimator]:
    """The estimator class registered for ``task``."""
    if task not in ESTIMATORS:
        raise BundleError(f"this Graft version cannot load a '{task}' model; known: {', '.join(ESTIMATORS)}.")
    module, name = ESTIMATORS[task]
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def bundle_parts(
    est: TransferEstimator,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], Callable[[Path], None]]:
    """``(tensors, manifest, write_extra_files)`` of a fitted estimator."""
    params = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in est.get_params(deep=False).items()
        if k not in ("strategy", "output_dir", "overwrite")
    }
    adaptation = getattr(est, "adaptation_diagnostics_", None) if est.strategy_.adaptation else None
    manifest = {
        "task": est.task,
        "estimator": type(est).__name__,
        "labels": [plain(c) for c in est.classes_],
        "backbone": est.backbone_.spec,
        "feature_dim": est.backbone_.feature_dim,
        "head": est.model_.head.config(),
        "strategy": est.strategy_.to_config(),
        "label_task": est.task_.name,
        "params": params,
        "training": {
            "n_train": getattr(est, "n_train_", None),
            "n_val": getattr(est, "n_val_", None),
            "best_epoch": getattr(est, "best_epoch_", None),
            "best_epochs": getattr(est, "best_epochs_", None),
            "best": getattr(est, "best_metrics_", None),
            "fit_seconds": round(getattr(est, "fit_seconds_", 0.0), 3),
            "history": getattr(est, "history_", []),
            "adaptation": adaptation,
            "importance_weights": getattr(est, "importance_weights_", None),
            "data": getattr(est, "data_", None),
        },
        "metrics": {"val": getattr(est, "val_metrics_", None)},
        **est.task_.state(),  # e.g. multi-label thresholds at the top level, as format 1 readers expect
        **est._bundle_extra(),
    }
    tensors = dict(est.model_.state_dict())
    return tensors, manifest, est._save_files


def restore(
    cls: type[TransferEstimator], path: Path, m: dict[str, Any], tensors: dict[str, torch.Tensor], device: str | None
) -> TransferEstimator:
    """A fitted estimator from a bundle's manifest and weights."""
    from ..strategies import resolve_strategy
    from ..tasks.classification import ClassificationHead, TransferModel

    params = dict(m["params"])
    if device is not None:
        params["device"] = device
    est = cls(**params, strategy=m["strategy"]["name"])
    est.strategy = resolve_strategy(m["strategy"]["name"], **m["strategy"]["params"])
    backbone = est._backbone_from_bundle(path, m)
    est.strategy.restore(backbone.module)  # e.g. LoRA adapters kept separate (merge=False)
    _check_head(path, m["head"], tensors)
    if len(m["labels"]) != int(m["head"]["num_classes"]):
        raise BundleError(
            f"'{path / 'graft.json'}' lists {len(m['labels'])} labels but its head has {m['head']['num_classes']} "
            f"outputs.{_DAMAGED}"
        )
    model = TransferModel(backbone.module, ClassificationHead.from_config(m["head"]))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise BundleError(
            f"'{path / 'model.safetensors'}' does not fit the architecture in graft.json: {str(e)[:300]}"
        ) from None
    model.eval()
    est.backbone_, est.model_, est.strategy_ = backbone, model, est.strategy
    est._saved_clinical = isinstance(m.get("clinical"), dict)  # the task's state says whether it was clinical
    est.task_ = est._make_task()
    est.task_.load_state(m)
    est.classes_ = np.asarray(m["labels"])
    est.val_metrics_ = (m.get("metrics") or {}).get("val")
    training = m.get("training") or {}
    est.history_ = training.get("history", [])
    est.n_train_, est.n_val_ = training.get("n_train"), training.get("n_val")
    est.best_epoch_, est.best_metrics_ = training.get("best_epoch"), training.get("best") or {}
    est.best_epochs_ = training.get("best_epochs") or {}
    est.fit_seconds_ = float(training.get("fit_seconds") or 0.0)
    est.data_ = training.get("data")
    if training.get("adaptation") is not None:
        est.adaptation_diagnostics_ = training["adaptation"]
    est.groups_ = m.get("groups")  # salted hashes of the training groups (patients), when the data had them
    est.manifest_ = m
    return est


def _check_head(path: Path, cfg: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """The head ``graft.json`` describes has the shapes of the saved head weights. Checked before the head is built,
    so that a damaged manifest cannot make it allocate a layer of any size."""
    n_in, n_out = int(cfg["in_features"]), int(cfg["num_classes"])
    hidden = None if cfg.get("hidden") is None else int(cfg["hidden"])
    expected = {"head.fc.weight": (n_out, hidden or n_in)}
    if hidden:
        expected["head.bottleneck.0.weight"] = (hidden, n_in)
    for name, shape in expected.items():
        found = tuple(tensors[name].shape) if name in tensors else None
        if found != shape:
            raise BundleError(
                f"'{path / 'model.safetensors'}' does not fit the architecture in graft.json: the head described there "
                f"needs {name} of shape {shape}, the file holds {found or 'no such tensor'}. Restore the bundle from a "
                "copy, or save the model again."
            )


def _damaged(path: Path, exc: BaseException) -> BundleError:
    """The error of a manifest whose entries are missing or of the wrong type."""
    what = f"the entry {exc} is missing" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
    return BundleError(
        f"'{path / 'graft.json'}' cannot be read as a model ({what[:200]}). The file is damaged or was edited: "
        "restore the bundle from a copy, or save the model again."
    )


def load(
    path: str | Path, *, device: str | None = None, backend: str | None = None, verify: bool = True
) -> TransferEstimator:
    """Load a bundle written by ``save`` / ``graft train`` as a fitted estimator.

    Args:
        path: the bundle directory.
        device: where to run predictions (default: the saved setting).
        backend: how the network runs for predictions: ``torch``, ``onnxruntime``, ``openvino`` or ``auto``
            (default: saved).
        verify: check weight files against the SHA-256 recorded in ``graft.json``.

    Example:
        >>> model = graft.load("runs/ants")  # doctest: +SKIP
        >>> model.predict(["photo.jpg"])  # doctest: +SKIP
    """
    from ..bundle import read_manifest, read_tensors, verify_files

    path = Path(path)
    m = read_manifest(path)
    cls = estimator_class(str(m.get("task")))
    tensors = read_tensors(path, m, verify=verify)
    if verify:
        verify_files(path, m)
    try:
        est = restore(cls, path, m, tensors, device)
    except GraftError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise _damaged(path, e) from e
    if backend is not None:
        from ..inference import BACKENDS

        if backend not in BACKENDS:
            raise BundleError(f"backend must be one of {', '.join(BACKENDS)}; got '{backend}'.")
        est.backend = backend
    return est
