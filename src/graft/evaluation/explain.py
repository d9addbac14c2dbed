"""Where an image model looked: Grad-CAM maps of a fitted image classifier, their overlays, and a grid of the most
confidently wrong predictions for reports.

The maps are computed on exactly what the model sees (the centre crop at the model's input size) and drawn over
that crop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["Explanation", "explain_images", "confident_errors", "plot_confident_errors"]


@dataclass
class Explanation:
    """Grad-CAM maps of some images.

    Attributes:
        maps: float32 ``(N, S, S)`` saliency in [0, 1] over each image's centre crop (``S``: the model's input size).
        images: the uint8 ``(S, S, 3)`` centre crops the model saw.
        sources: where each image came from (file path, ``array[i]``, ``image[i]``).
        labels: the predicted class of each image.
        probabilities: the probability of the predicted class.
        targets: the class each map explains (the predicted one unless a target was given).
    """

    maps: np.ndarray
    images: list[np.ndarray]
    sources: list[str]
    labels: list[Any]
    probabilities: list[float]
    targets: list[Any]

    def __len__(self) -> int:
        return len(self.sources)

    def save(self, folder: str | os.PathLike[str], *, suffix: str = "_cam") -> list[Path]:
        """Write each overlay as ``<folder>/<image name><suffix>.png`` (atomically); return the paths."""
        from .saliency import save_overlay

        out, used = [], set()
        for i, (src, image, cam) in enumerate(zip(self.sources, self.images, self.maps, strict=True)):
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(src).stem) or f"image{i}"
            name, k = f"{stem}{suffix}.png", 1
            while name in used:
                k += 1
                name = f"{stem}-{k}{suffix}.png"
            used.add(name)
            out.append(save_overlay(Path(folder) / name, image, cam))
        return out


@dataclass
class _Items:
    images: list[Any]


def explain_images(
    est: Any, X: Any, target: Any = None, *, layer: Any = None, data: Any = None, rows: Sequence[int] | None = None
) -> Explanation:
    """Grad-CAM maps of a fitted image classifier on ``X`` (or on ``rows`` of already read ``data``).

    Args:
        est: a fitted :class:`~graft.ImageClassifier`.
        X: what ``predict`` takes (paths, a folder, PIL images, arrays); ignored when ``data`` is given.
        target: the class to explain (a label of ``est.classes_``) for every image, one label per image, or ``None``
            for each image's predicted class.
        layer: the module (or its name in ``est.model_``) whose output map is weighed; default: the backbone's
            last feature map.
        data: inputs already read by ``est`` (a ``FitData``), e.g. evaluation data.
        rows: positions of ``data`` to explain (default: all).

    Raises:
        DataError: a target label is not one of the model's classes.
    """
    import torch

    from ..data.images import center_crop
    from ..tasks.base import label_key
    from .saliency import grad_cam

    est._check_fitted()
    if data is None:
        data = est._read(X, None, what="input")[0]
    rows = list(range(len(data))) if rows is None else list(rows)
    pre = est._preprocessing()
    images = [data.items.images[i] for i in rows]
    if any(im is None for im in images):  # decoding was skipped for cached embeddings: decode them now
        from ..data.images import load_images

        images = load_images([data.sources[i] for i in rows], short_side=pre.resize_size).images
    from ..estimators._fitting import FitData

    # the model's own inference batches (centre crop, normalisation) of the images
    view = FitData(_Items(images), None, [str(i) for i in range(len(images))], [data.sources[i] for i in rows])
    x = torch.cat([batch for _, batch in est._batches(view, range(len(images)))])
    index = {label_key(c): i for i, c in enumerate(est.classes_)}
    targets_idx: int | list[int] | None = None
    if target is not None:
        wanted = list(target) if isinstance(target, (list, tuple, np.ndarray)) else [target]
        unknown = sorted({str(t) for t in wanted if label_key(t) not in index})
        if unknown:
            raise DataError(
                f"cannot explain class {', '.join(unknown)}: not a label of this model "
                f"(labels: {', '.join(map(str, est.classes_[:20]))})."
            )
        idx = [index[label_key(t)] for t in wanted]
        targets_idx = idx[0] if len(idx) == 1 else idx
    model = est.model_.to(est._device())
    # eval mode, as grad_cam below: batch norm in training mode fails on a single image
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            proba = est.task_.probabilities(model(x.to(est._device())).float().cpu().numpy())
    finally:
        for module, training in flags:
            module.training = training
    maps = grad_cam(model, x, targets_idx, layer=layer, batch_size=2)  # the backward pass keeps every activation
    pred = proba.argmax(1)
    chosen = pred if targets_idx is None else np.broadcast_to(np.asarray(targets_idx), pred.shape)
    return Explanation(
        maps=maps,
        images=[np.ascontiguousarray(center_crop(im, pre.input_size)) for im in images],  # type: ignore[arg-type]
        sources=[data.sources[i] for i in rows],
        labels=[est.classes_[k] for k in pred],
        probabilities=[float(proba[j, k]) for j, k in enumerate(pred)],
        targets=[est.classes_[k] for k in chosen],
    )


def confident_errors(proba: np.ndarray, y: np.ndarray, k: int = 6) -> list[int]:
    """Rows of the ``k`` wrong predictions with the highest predicted-class probability, most confident first."""
    proba, y = np.asarray(proba), np.asarray(y)
    pred = proba.argmax(1)
    wrong = np.flatnonzero(pred != y)
    order = np.argsort(-proba[wrong, pred[wrong]], kind="stable")
    return wrong[order][:k].tolist()


def plot_confident_errors(est: Any, data: Any, proba: np.ndarray, path: Path, k: int = 6) -> Path | None:
    """A grid of Grad-CAM overlays of the ``k`` most confidently wrong images of ``data`` (labels in ``data.y``),
    each titled with its true and predicted class; ``None`` when nothing is wrong."""
    rows = confident_errors(proba, data.y, k)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .._utils import atomic_write_bytes
    from .saliency import overlay

    exp = explain_images(est, None, data=data, rows=rows)
    cols = min(3, len(rows))
    n_rows = -(-len(rows) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.2 * cols, 3.5 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for j, row in enumerate(rows):
        ax = axes.ravel()[j]
        ax.imshow(overlay(exp.images[j], exp.maps[j]))
        true = est.classes_[int(data.y[row])]
        name = Path(exp.sources[j]).name[:28]
        ax.set_title(f"{name}\ntrue {true}, predicted {exp.labels[j]} ({exp.probabilities[j]:.2f})", fontsize=8)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
