"""PNG plots for evaluation reports: confusion matrix and training curves.

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
from ..errors import DataError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_confusion_matrix", "plot_history"]

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


def plot_history(history: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Draw training curves: a loss panel and a metric panel, side by side.

    The x axis is each entry's ``"epoch"`` if present, else its 1-based position. Every numeric key that
    contains ``"loss"`` goes to the loss panel; every other numeric key starting with ``"val_"`` or
    ``"train_"`` goes to the metric panel. Entries may omit keys (e.g. validation every few epochs); each
    curve uses only the epochs where it has a finite value.

    Args:
        history: One dict per epoch, e.g. ``{"epoch": 1, "train_loss": 0.9, "val_loss": 1.1,
            "val_accuracy": 0.6}``.
        path: Destination PNG file; parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        DataError: If ``history`` is empty.
    """
    if not history:
        raise DataError("cannot plot an empty training history.")
    xs = [float(row["epoch"]) if _is_number(row.get("epoch")) else float(i + 1) for i, row in enumerate(history)]

    keys: list[str] = []
    for row in history:
        for key, value in row.items():
            if key != "epoch" and key not in keys and _is_number(value):
                keys.append(key)
    loss_keys = [k for k in keys if "loss" in k]
    metric_keys = [k for k in keys if "loss" not in k and (k.startswith("val_") or k.startswith("train_"))]

    fig = _new_figure(11.0, 4.2)
    loss_ax, metric_ax = fig.subplots(1, 2)
    for ax, panel_keys, name in ((loss_ax, loss_keys, "loss"), (metric_ax, metric_keys, "metric")):
        drawn = False
        for key in panel_keys:
            points = [
                (x, float(row[key]))
                for x, row in zip(xs, history, strict=True)
                if _is_number(row.get(key)) and math.isfinite(float(row[key]))
            ]
            if not points:
                continue
            px, py = zip(*points, strict=True)
            style = "--" if key.startswith("train_") and name == "metric" else "-"
            ax.plot(px, py, style, marker="o" if len(points) <= 30 else None, markersize=3, label=_plain(key))
            drawn = True
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title("loss" if name == "loss" else "metrics")
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(
                0.5,
                0.5,
                f"no {name} recorded",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="grey",
            )
    fig.tight_layout()
    return _save_png(fig, path)
