"""A single self-contained HTML evaluation report (inline CSS, images as data URIs, no scripts)."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._utils import atomic_write_bytes

__all__ = ["image_section", "write_html_report"]

_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}

_HEADLINE = [
    ("n", "samples"),
    ("accuracy", "accuracy"),
    ("subset_accuracy", "subset accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("micro_f1", "micro F1"),
    ("macro_f1", "macro F1"),
    ("weighted_f1", "weighted F1"),
    ("log_loss", "log loss"),
    ("roc_auc", "ROC AUC"),
    ("macro_auroc", "macro AUROC"),
    ("quadratic_kappa", "quadratic kappa"),
    ("ece", "calibration error (ECE)"),
]

# Confusion matrices larger than this are only shown as an image; the table would not be readable.
_MAX_CM_TABLE = 30

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; }
th { background: #f4f6f8; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.diag { background: #e3eefb; font-weight: 600; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 8em; }
.card .v { font-size: 1.5em; font-weight: 600; }
.card .k { color: #666; font-size: 0.85em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #888; font-style: italic; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
td.text { max-width: 42em; white-space: pre-wrap; overflow-wrap: anywhere; }
"""


def _esc(value: Any) -> str:
    """Escape any value for HTML text or attribute content."""
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    """Format a number for display (escaped); other values are rendered as escaped text."""
    if isinstance(value, bool):
        return _esc(value)
    if isinstance(value, float):
        return _esc(f"{value:.{digits}f}" if math.isfinite(value) else value)
    if isinstance(value, int):
        return _esc(value)
    return _esc("-" if value is None else value)


def _info_value(value: Any) -> str:
    """Render an ``info`` value as escaped text; containers become compact JSON."""
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (dict, list, tuple)):
        try:
            return _esc(json.dumps(value, default=str, ensure_ascii=False))
        except (TypeError, ValueError):
            return _esc(value)
    return _esc(value)


def _data_uri(path: Path) -> str:
    """Read an image file and return it as a base64 ``data:`` URI."""
    mime = _MIME.get(path.suffix.lower(), "image/png")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _info_section(info: dict[str, Any]) -> list[str]:
    if not info:
        return []
    rows = [f"<tr><th>{_esc(k)}</th><td>{_info_value(v)}</td></tr>" for k, v in info.items()]
    return ["<h2>Run</h2>", "<table>", *rows, "</table>"]


def _headline_section(metrics: dict[str, Any]) -> list[str]:
    items = [(name, metrics[key]) for key, name in _HEADLINE if key in metrics]
    for key, value in (metrics.get("top_k") or {}).items():
        items.append((str(key).replace("_", "-") + " accuracy", value))
    if not items:
        return []
    cards = [f'<div class="card"><div class="v">{_num(v)}</div><div class="k">{_esc(k)}</div></div>' for k, v in items]
    return ["<h2>Metrics</h2>", '<div class="cards">', *cards, "</div>"]


def _per_class_section(metrics: dict[str, Any]) -> list[str]:
    per_class = metrics.get("per_class") or metrics.get("per_label") or metrics.get("per_type") or {}
    if not per_class:
        return []
    out = [
        "<h2>Per class</h2>",
        "<table>",
        "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>",
    ]
    for label, row in per_class.items():
        row = row if isinstance(row, dict) else {}
        cells = "".join(f'<td class="num">{_num(row.get(k))}</td>' for k in ("precision", "recall", "f1", "support"))
        out.append(f"<tr><th>{_esc(label)}</th>{cells}</tr>")
    out.append("</table>")
    return out


def _ci(value: Any, ci: Any) -> str:
    """``0.7412 [0.70, 0.78]``: a value with its confidence interval (escaped)."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or ci[0] is None:
        return _num(value)
    return f"{_num(value)} <small>[{_num(ci[0], 3)}, {_num(ci[1], 3)}]</small>"


def _data_section(metrics: dict[str, Any]) -> list[str]:
    """Classes, their counts in the scored data and the imbalance (largest over smallest class)."""
    per_class = metrics.get("per_class") or {}
    counts = {k: v.get("support") for k, v in per_class.items() if isinstance(v, dict)}
    counts = {k: int(v) for k, v in counts.items() if isinstance(v, (int, float))}
    if not counts:
        return []
    total, smallest = sum(counts.values()), min(counts.values())
    ratio = f"{max(counts.values()) / smallest:.1f}" if smallest else "inf (a class has no example)"
    rows = "".join(
        f'<tr><th>{_esc(k)}</th><td class="num">{v}</td><td class="num">{_num(v / max(total, 1), 3)}</td></tr>'
        for k, v in counts.items()
    )
    return [
        "<h2>Data</h2>",
        f"<p>{total} examples in {len(counts)} classes; imbalance (largest / smallest class) {_esc(ratio)}.</p>",
        "<table><tr><th>class</th><th>examples</th><th>share</th></tr>",
        rows,
        "</table>",
    ]


def _clinical_section(metrics: dict[str, Any]) -> list[str]:
    """Per-class AUROC with its bootstrap CI and the decision metrics at each class's operating threshold."""
    c = metrics.get("clinical")
    if not isinstance(c, dict) or not c.get("per_class"):
        return []
    boot = c.get("bootstrap") or {}
    level = round(100 * (1 - float(boot.get("alpha", 0.05))))
    out = [
        "<h2>Clinical metrics</h2>",
        f"<p>macro AUROC {_ci(c.get('macro_auroc'), c.get('macro_auroc_ci'))}; accuracy "
        f"{_ci(metrics.get('accuracy'), c.get('accuracy_ci'))}. Brackets: {level}% "
        f"bootstrap confidence intervals ({_esc(boot.get('n', '?'))} resamples, {_esc(boot.get('method', ''))}). "
        f"Thresholds: one-vs-rest, chosen on validation ({_esc(c.get('operating_point', 'youden'))}).</p>",
        "<table>",
        "<tr><th>class</th><th>AUROC [95% CI]</th><th>threshold</th><th>sensitivity</th><th>specificity</th>"
        "<th>PPV</th><th>NPV</th><th>F1</th><th>support</th></tr>",
    ]
    auroc, auroc_ci = c.get("auroc") or {}, c.get("auroc_ci") or {}
    for label, row in c["per_class"].items():
        cells = "".join(
            f'<td class="num">{_num(row.get(k))}</td>'
            for k in ("threshold", "sensitivity", "specificity", "ppv", "npv", "f1", "support")
        )
        out.append(
            f'<tr><th>{_esc(label)}</th><td class="num">{_ci(auroc.get(label), auroc_ci.get(label))}</td>{cells}</tr>'
        )
    out.append("</table>")
    return out


def _confusion_table(metrics: dict[str, Any]) -> list[str]:
    cm = metrics.get("confusion_matrix")
    labels = metrics.get("labels") or list((metrics.get("per_class") or {}).keys())
    if not cm or len(cm) != len(labels) or len(labels) > _MAX_CM_TABLE:
        return []
    head = "".join(f"<th>{_esc(label)}</th>" for label in labels)
    out = [
        "<details><summary>Confusion matrix as a table (rows: true, columns: predicted)</summary>",
        "<table>",
        f"<tr><th>true \\ predicted</th>{head}</tr>",
    ]
    for i, (label, row) in enumerate(zip(labels, cm, strict=True)):
        cells = "".join(f'<td class="num{" diag" if i == j else ""}">{_num(v)}</td>' for j, v in enumerate(row))
        out.append(f"<tr><th>{_esc(label)}</th>{cells}</tr>")
    out += ["</table>", "</details>"]
    return out


def image_section(heading: str, path: str | os.PathLike[str]) -> list[str]:
    """An ``<h2>`` heading and the image file embedded as a data URI (a note when the file cannot be read)."""
    out = [f"<h2>{_esc(heading)}</h2>"]
    p = Path(path)
    try:
        uri = _data_uri(p)
    except OSError as e:
        return [*out, f'<p class="note">image not available: {_esc(p.name)} ({_esc(e.strerror or e)})</p>']
    return [*out, f'<img src="{uri}" alt="{_esc(heading)}">']


def _image_sections(images: dict[str, Path] | None) -> list[str]:
    return [line for name, p in (images or {}).items() for line in image_section(str(name).replace("_", " "), p)]


def write_html_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    metrics: dict[str, Any],
    info: dict[str, Any],
    images: dict[str, Path] | None = None,
    sections: Sequence[str] = (),
) -> Path:
    """Write one self-contained HTML report of an evaluation.

    The page holds, in order: the ``info`` key/value table, headline metric cards, the per-class table,
    a collapsible confusion-matrix table (up to 30 classes), then each image under a heading made from its
    key (e.g. ``{"confusion_matrix": ..., "training_curves": ...}``), then the extra ``sections``. Images are
    embedded as base64 data URIs; there is no external CSS, JavaScript or network access. Every user-provided
    string (title, info keys and values, labels, image names) is HTML-escaped. An image file that cannot be read
    is reported in the page instead of failing the whole report.

    Args:
        path: Destination ``.html`` file; parent folders are created.
        title: Page title and heading.
        metrics: A dict from :func:`graft.evaluation.classification_metrics` (missing keys are skipped).
        info: Run facts to show as a table (model, strategy, data, timings, ...). Nested values are shown
            as compact JSON.
        images: Optional mapping of section name to image file (PNG, JPEG, GIF, SVG or WebP).
        sections: HTML fragments added after the images, already escaped (see
            :mod:`graft.evaluation.report_sections`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_esc(title)}</h1>",
        *_info_section(info),
        *_headline_section(metrics),
        *_data_section(metrics),
        *_per_class_section(metrics),
        *_clinical_section(metrics),
        *_confusion_table(metrics),
        *_image_sections(images),
        *sections,
        "</body>",
        "</html>",
    ]
    out = Path(path)
    atomic_write_bytes(out, ("\n".join(parts) + "\n").encode("utf-8"))
    return out
