"""PNG plots for evaluation reports: confusion matrix, training curves and source/target feature maps.

matplotlib is imported inside the functions (never when :mod:`graft` is imported), and figures are drawn on
an explicit Agg canvas without ``pyplot``, so plotting neither touches global backend state nor needs a
display. Files are written atomically.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._utils import atomic_write_bytes
from ..errors import ConfigError, DataError, did_you_mean

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_confusion_matrix", "plot_domain_features", "plot_history", "plot_reliability"]

_MAX_TICK_LABEL = 24


def _new_figure(width: float, height: float) -> Figure:
    """Create a figure attached to an Agg canvas (no pyplot, no display).

    Args:
        width: Width in inches.
        height: Height in inches.

    Returns:
        The figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``fig`` to PNG bytes in memory and write them atomically.

    Args:
        fig: The figure to save.
        path: Destination file.

    Returns:
        The destination as a :class:`~pathlib.Path`.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    out = Path(path)
    atomic_write_bytes(out, buf.getvalue())
    return out


def _plain(text: str, limit: int | None = None) -> str:
    """Make user text safe for matplotlib: no mathtext, optionally shortened with an ellipsis.

    Args:
        text: The text.
        limit: Maximum length, or ``None`` for no limit.

    Returns:
        The text with ``$`` escaped so matplotlib draws it literally.
    """
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def plot_confusion_matrix(
    cm: Sequence[Sequence[int]] | np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike[str],
    *,
    normalize: bool = True,
    title: str | None = None,
) -> Path:
    """Draw a confusion matrix as a PNG heat map with the counts written in the cells.

    Args:
        cm: Square matrix of counts, rows are true classes and columns predicted classes.
        labels: Class names in row/column order.
        path: Destination PNG file; parent folders are created.
        normalize: Colour each cell by its share of the row (the recall view), so rare classes stay readable.
            If false, colour by raw count. The annotation is always the count.
        title: Optional title above the plot.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        DataError: If ``cm`` is not a square matrix matching ``labels``.
    """
    counts = np.asarray(cm, dtype=np.float64)
    n = len(labels)
    if counts.ndim != 2 or counts.shape != (n, n):
        raise DataError(f"confusion matrix must be {n}x{n} to match {n} labels, got shape {counts.shape}.")
    if n == 0:
        raise DataError("cannot plot an empty confusion matrix.")
    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        colour = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
        vmax = 1.0
    else:
        colour = counts
        vmax = max(float(counts.max()), 1.0)

    side = min(max(4.5, 0.42 * n + 2.5), 18.0)
    fig = _new_figure(side + 1.0, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(colour, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of true class" if normalize else "count")

    tick_font = 10 if n <= 10 else max(5, 10 - (n - 10) // 4)
    cell_font = 10 if n <= 10 else max(4, 9 - (n - 10) // 4)
    names = [_plain(label, _MAX_TICK_LABEL) for label in labels]
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=45 if n <= 10 else 90, ha="right" if n <= 10 else "center", fontsize=tick_font)
    ax.set_yticklabels(names, fontsize=tick_font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(_plain(title))

    threshold = vmax / 2.0
    for i in range(n):
        for j in range(n):
            value = counts[i, j]
            if value == 0 and n > 10:
                continue  # keep large matrices legible: empty cells are already white
            text = str(int(value)) if float(value).is_integer() else f"{value:.2g}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=cell_font,
                color="white" if colour[i, j] > threshold else "black",
            )
    return _save_png(fig, path)


def _is_number(value: Any) -> bool:
    """True for finite-or-NaN real numbers (not bools, not None)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


#: per-epoch keys that are bookkeeping, not curves
_NOT_CURVES = ("epoch", "phase", "lr", "seconds", "train_samples_per_s")


def _curve_keys(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The loss keys and the [0, 1] metric keys present in ``rows``, in first-seen order."""
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in _NOT_CURVES and key not in keys and _is_number(value):
                keys.append(key)
    losses = [k for k in keys if "loss" in k]
    bounded = [
        k
        for k in keys
        if k not in losses
        and all(0.0 <= float(r[k]) <= 1.0 for r in rows if _is_number(r.get(k)) and math.isfinite(float(r[k])))
    ]
    return losses, bounded


def plot_history(
    history: list[dict[str, Any]], path: str | os.PathLike[str], best_epochs: dict[str, int] | None = None
) -> Path:
    """Draw training curves: one row per phase (e.g. the head warm-up, then fine-tuning), each with a loss panel and
    a metrics panel on a fixed 0-1 axis, the best epoch marked.

    Rows are grouped by each entry's ``"phase"`` (one row when there is none); the x axis is the entry's
    ``"epoch"``. Keys containing ``loss`` go to the loss panel; other numeric keys whose values all lie in [0, 1]
    (accuracy, F1, entropy) to the metrics panel; throughput, learning rate and timings are not drawn. Entries may
    omit keys; each curve uses the epochs where it has a finite value.

    Args:
        history: One dict per epoch, e.g. ``{"phase": "head", "epoch": 1, "train_loss": 0.9, "val_accuracy": 0.6}``.
        path: Destination PNG file; parent folders are created.
        best_epochs: The epoch kept from each phase (drawn as a dashed line), by phase name.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        DataError: If ``history`` is empty.
    """
    if not history:
        raise DataError("cannot plot an empty training history.")
    phases: dict[str, list[dict[str, Any]]] = {}
    for row in history:
        phases.setdefault(str(row.get("phase", "")), []).append(row)
    from matplotlib import ticker

    fig = _new_figure(11.0, 3.6 * len(phases))
    axes = np.atleast_2d(fig.subplots(len(phases), 2, squeeze=False))
    for (phase, rows), (loss_ax, metric_ax) in zip(phases.items(), axes):
        xs = [float(r["epoch"]) if _is_number(r.get("epoch")) else float(i + 1) for i, r in enumerate(rows)]
        loss_keys, metric_keys = _curve_keys(rows)
        best = (best_epochs or {}).get(phase)
        for ax, keys, name in ((loss_ax, loss_keys, "loss"), (metric_ax, metric_keys, "metrics")):
            drawn = False
            for key in keys:
                points = [
                    (x, float(r[key]))
                    for x, r in zip(xs, rows, strict=True)
                    if _is_number(r.get(key)) and math.isfinite(float(r[key]))
                ]
                if not points:
                    continue
                px, py = zip(*points, strict=True)
                style = "--" if key.startswith("train_") else "-"
                ax.plot(px, py, style, marker="o" if len(points) <= 30 else None, markersize=3, label=_plain(key))
                drawn = True
            if best is not None and best > 0:
                ax.axvline(best, color="grey", linestyle=":", linewidth=1.2, label=f"kept: epoch {best}")
            title = f"{_plain(phase, 40)}: {name}" if phase else name
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            ax.grid(True, alpha=0.3)
            if name == "metrics":
                ax.set_ylim(-0.02, 1.02)
            if drawn:
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, f"no {name} recorded", ha="center", va="center", transform=ax.transAxes, color="grey")
    fig.tight_layout()
    return _save_png(fig, path)


#: 2-D projections of :func:`plot_domain_features`
PROJECTIONS: tuple[str, ...] = ("pca", "tsne")


def _project(source: np.ndarray, target: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Project source and target features together to 2-D (one fit on both, so the domains share the axes).

    Args:
        source: Source features, shape (N_s, F).
        target: Target features, shape (N_t, F).
        method: ``"pca"`` or ``"tsne"``.
        seed: Seeds the projection.

    Returns:
        The 2-D source and target points, shapes (N_s, 2) and (N_t, 2).
    """
    x = np.concatenate([source, target]).astype(np.float64)
    if x.shape[1] < 2:  # a single feature: plot it against zero
        x = np.concatenate([x, np.zeros((len(x), 2 - x.shape[1]))], axis=1)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3.0)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    else:
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
    return xy[: len(source)], xy[len(source) :]


def plot_domain_features(
    before_source: Any,
    before_target: Any,
    after_source: Any,
    after_target: Any,
    path: str | os.PathLike[str],
    *,
    source_labels: Sequence[Any] | np.ndarray | None = None,
    a_distance_before: float | None = None,
    a_distance_after: float | None = None,
    method: str = "pca",
    seed: int = 0,
) -> Path:
    """Draw source and target features before and after domain adaptation, side by side, as a PNG.

    Each panel projects its features to 2-D (PCA by default, t-SNE with ``method="tsne"``), fitted on both
    domains together. Source points are circles, coloured by class when ``source_labels`` is given; target points
    (unlabelled) are grey crosses. Well-aligned domains overlap in the right panel.

    Args:
        before_source: Source features before adaptation (e.g. frozen embeddings), shape (N_s, F), a NumPy array
            or torch tensor.
        before_target: Target features before adaptation, shape (N_t, F).
        after_source: Source features after adaptation (e.g. the trained bottleneck's output), shape (N_s, F').
        after_target: Target features after adaptation, shape (N_t, F').
        path: Destination PNG file; parent folders are created.
        source_labels: Optional class of each source row (length N_s), for colours.
        a_distance_before: Optional proxy A-distance shown in the left panel's title.
        a_distance_after: Optional proxy A-distance shown in the right panel's title.
        method: ``"pca"`` or ``"tsne"`` (slower, non-linear).
        seed: Seeds the projection.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: If ``method`` is unknown.
        DataError: If a feature set is empty or not 2-D, the widths of a pair differ, or ``source_labels`` does
            not match the source rows.

    Example:
        >>> plot_domain_features(f_s, f_t, h_s, h_t, "domain_features.png")  # doctest: +SKIP
    """
    if method not in PROJECTIONS:
        raise ConfigError(
            f"Unknown projection '{method}'.{did_you_mean(method, PROJECTIONS)} Choose from {', '.join(PROJECTIONS)}."
        )
    arrays = []
    for name, value in (
        ("before_source", before_source),
        ("before_target", before_target),
        ("after_source", after_source),
        ("after_target", after_target),
    ):
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().float().cpu().numpy()
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 2 or len(arr) == 0:
            raise DataError(f"{name} must be a non-empty (N, F) feature matrix; got shape {arr.shape}.")
        arrays.append(arr)
    bs, bt, as_, at = arrays
    for (s, t), stage in (((bs, bt), "before"), ((as_, at), "after")):
        if s.shape[1] != t.shape[1]:
            raise DataError(
                f"source and target features {stage} adaptation differ in width: {s.shape[1]} vs {t.shape[1]}."
            )
    if len(bs) != len(as_) or len(bt) != len(at):
        raise DataError(
            f"before and after features must have the same rows: source {len(bs)} vs {len(as_)}, "
            f"target {len(bt)} vs {len(at)}."
        )
    labels = None
    if source_labels is not None:
        labels = np.asarray([str(v) for v in np.asarray(source_labels).tolist()])
        if len(labels) != len(bs):
            raise DataError(f"source_labels has {len(labels)} entries for {len(bs)} source rows.")

    fig = _new_figure(11.0, 5.0)
    axes = fig.subplots(1, 2)
    classes = [] if labels is None else sorted(set(labels.tolist()))
    marker_size = 14 if len(bs) + len(bt) <= 1000 else 5
    panels = (("before adaptation", bs, bt, a_distance_before), ("after adaptation", as_, at, a_distance_after))
    for ax, (name, s, t, dist) in zip(axes, panels, strict=True):
        ps, pt = _project(s, t, method, seed)
        ax.scatter(pt[:, 0], pt[:, 1], s=marker_size, marker="x", c="0.55", alpha=0.6, linewidths=0.8, label="target")
        if labels is None or len(classes) > 20:  # too many classes to tell colours apart: one colour for the source
            ax.scatter(ps[:, 0], ps[:, 1], s=marker_size, marker="o", c="tab:blue", alpha=0.6, label="source")
        else:
            cmap = "tab10" if len(classes) <= 10 else "tab20"
            for k, c in enumerate(classes):
                m = labels == c
                ax.scatter(
                    ps[m, 0],
                    ps[m, 1],
                    s=marker_size,
                    marker="o",
                    color=_palette(cmap, k),
                    alpha=0.6,
                    label=f"source: {_plain(c, _MAX_TICK_LABEL)}",
                )
        title = name if dist is None or not math.isfinite(dist) else f"{name} (A-distance {dist:.2f})"
        ax.set_title(title)
        ax.set_xlabel(f"{method.upper() if method == 'pca' else 't-SNE'} 1")
        ax.set_ylabel(f"{method.upper() if method == 'pca' else 't-SNE'} 2")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    fig.tight_layout()
    return _save_png(fig, path)


def _palette(name: str, index: int) -> Any:
    """The ``index``-th colour of a qualitative matplotlib colormap."""
    from matplotlib import colormaps

    cmap = colormaps[name]
    return cmap(index % cmap.N)


def plot_reliability(proba: np.ndarray, y: np.ndarray, path: str | os.PathLike[str], *, bins: int = 15) -> Path:
    """A reliability diagram: per confidence bin, the accuracy of the predicted class against its mean confidence
    (the diagonal is perfect calibration), bar widths by bin, with the top-label expected calibration error (ECE).

    Args:
        proba: ``(N, C)`` class probabilities.
        y: ``(N,)`` true class indices.
        path: the PNG to write (atomically).
        bins: equal-width confidence bins.
    """
    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y)
    if proba.ndim != 2 or len(proba) != len(y) or len(y) == 0:
        raise DataError(f"plot_reliability needs (N, C) probabilities and N labels; got {proba.shape} and {y.shape}.")
    conf, correct = proba.max(1), (proba.argmax(1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)  # the bins of graft.evaluation.clinical.top_label_ece
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    fig = _new_figure(4.6, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        acc, mean_conf = float(correct[m].mean()), float(conf[m].mean())
        ece += m.mean() * abs(acc - mean_conf)
        ax.bar((edges[b] + edges[b + 1]) / 2, acc, width=(edges[1] - edges[0]) * 0.9, color="#4c78a8", alpha=0.8)
        ax.plot([mean_conf], [acc], "o", color="#222", markersize=3)
    ax.plot([0, 1], [0, 1], "--", color="#999", linewidth=1)
    ax.set_xlim(1.0 / proba.shape[1] - 0.02, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence of the predicted class")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability: ECE {ece:.3f} ({len(y)} examples, {bins} bins)")
    return _save_png(fig, path)
