"""``graft evaluate`` and ``graft predict``: score a bundle on labelled data (with a report), predict inputs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import GraftError

__all__ = ["evaluate_run", "discover_inputs", "predictions", "format_entities"]


def evaluate_run(run: Path, data: Path, *, report: Path | None = None, device: str | None = None) -> tuple[dict, Path]:
    """Metrics of the bundle ``run`` on ``data``, and the HTML report written beside them (default
    ``RUN/evaluation/report.html``, with ``confusion_matrix.png`` for single-label tasks)."""
    from ..estimators import load
    from ..evaluation import plot_confusion_matrix, write_html_report

    t0 = time.perf_counter()
    model = load(run, device=device)
    metrics = model.evaluate(str(data))
    seconds = time.perf_counter() - t0
    folder = report or (run / "evaluation")
    images = {}
    if "confusion_matrix" in metrics:
        images["Confusion matrix"] = plot_confusion_matrix(
            metrics["confusion_matrix"], metrics["labels"], folder / "confusion_matrix.png"
        )
    info = {
        "run": str(run),
        "data": str(data),
        "seconds": round(seconds, 2),
        "backbone": model.manifest_["backbone"],
        "strategy": model.manifest_["strategy"],
    }
    html = write_html_report(
        folder / "report.html", title=f"Graft evaluation: {run.name}", metrics=metrics, info=info, images=images
    )
    return metrics, html


def discover_inputs(modality: str, inputs: list[Path] | None, texts: list[str] | None) -> list[str]:
    """What to predict: image files (folders searched recursively) for image models; for text models the given texts
    and each non-empty line of the given text files."""
    if modality == "image":
        if not inputs:
            raise GraftError("give image files or folders to predict.")
        from ..data.image_folders import list_images

        items: list[str] = []
        for p in inputs:
            items += list_images(p) if p.is_dir() else [str(p)]
        return items
    items = list(texts or [])
    for p in inputs or []:
        items += [ln.strip() for ln in Path(p).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not items:
        raise GraftError('give --text "..." (repeatable) or a text file with one text per line.')
    return items


def predictions(model: Any, items: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """One JSON-ready result per input: entity spans (token models), label lists with probabilities
    (multi-label), or the label with the top-k probabilities."""
    if model.task == "token-classification":
        return [{"input": t, "entities": e} for t, e in zip(items, model.predict_entities(items))]
    from ..tasks.multilabel import MultiLabel

    proba = model.predict_proba(items)
    if isinstance(model.task_, MultiLabel):
        labels = model.task_.decide(proba, model.classes_)
        return [
            {
                "input": item,
                "labels": lab,
                "probabilities": {str(c): round(float(v), 6) for c, v in zip(model.classes_, p)},
            }
            for item, lab, p in zip(items, labels, proba)
        ]
    k = max(1, min(top_k, proba.shape[1]))
    results = []
    for item, p in zip(items, proba):
        order = p.argsort()[::-1][:k]
        results.append(
            {
                "input": item,
                "label": model.classes_[order[0]].item(),
                "top_k": [{"label": model.classes_[i].item(), "probability": round(float(p[i]), 6)} for i in order],
            }
        )
    return results


def format_entities(m: dict[str, Any]) -> str:
    """Entity-level metrics as a small text table."""
    lines = [
        f"entities: precision {m['precision']:.4f}  recall {m['recall']:.4f}  F1 {m['f1']:.4f}  "
        f"(token accuracy {m['token_accuracy']:.4f}, {m['n']} sentences, {m['n_entities']} entities)",
        f"{'type':12s} {'precision':>9s} {'recall':>9s} {'f1':>9s} {'support':>8s}",
    ]
    for k, v in m["per_type"].items():
        lines.append(f"{k:12s} {v['precision']:9.4f} {v['recall']:9.4f} {v['f1']:9.4f} {v['support']:8d}")
    return "\n".join(lines)
