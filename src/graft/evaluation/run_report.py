"""``report.html`` from what a run folder keeps: the bundle's metrics and training history, the plots and examples
saved beside it, the choices of a ``--budget`` run (``graft.json``'s ``"auto"``), ``rank.json`` and
``compare.json``. A folder holding only ``compare.json`` (or ``rank.json``) gets a report of just that.

Every section the run cannot fill says so in the page instead of failing the report.
"""

from __future__ import annotations

import html
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BundleError, GraftError
from .report import image_section, write_html_report
from .report_sections import choices_section, compare_section, note_section, rank_section, text_errors_section

__all__ = ["ScoredRun", "RunReport", "write_run_report", "TEXT_ERRORS"]

#: the file in a run folder that keeps the most confidently wrong validation texts
TEXT_ERRORS = "confident_errors.json"
_IMAGE_ERRORS = "Most confidently wrong validation images (Grad-CAM: where the model looked)"
_TEXT_ERRORS_HEADING = "Most confidently wrong validation examples"


@dataclass
class ScoredRun:
    """A run scored on labelled data (``graft evaluate``): what its report shows.

    Attributes:
        metrics: the metrics on the data.
        info: run facts (run, data, split, timings, backbone, strategy).
        images: heading -> plot file (confusion matrix, calibration, Grad-CAM overlays of errors).
        sections: further HTML sections (text examples among the confident errors).
        scored: which data and split were scored, with a ``warning`` when they are not held out.
        folder: where the plots were written.
    """

    metrics: dict[str, Any]
    info: dict[str, Any]
    images: dict[str, Path]
    sections: list[str]
    scored: dict[str, Any]
    folder: Path


@dataclass
class RunReport:
    """What :func:`write_run_report` wrote: the page, its section headings and the notes about missing parts."""

    path: Path
    title: str
    sections: list[str]
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"report": str(self.path), "title": self.title, "sections": self.sections, "notes": self.notes}


def _read_json(path: Path) -> tuple[Any, str | None]:
    """``(content, None)`` of a JSON file, or ``(None, why it could not be read)``."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, ValueError, RecursionError) as e:
        return None, f"{path.name} could not be read ({str(e)[:200]})."


def _manifest_info(m: dict[str, Any]) -> dict[str, Any]:
    """The "Run" table of a bundle: backbone, strategy, classes and the training summary."""
    strategy = m.get("strategy") or {}
    params = ", ".join(f"{k}={v!r}" for k, v in (strategy.get("params") or {}).items())
    training = m.get("training") or {}
    backbone = m.get("backbone") or {}
    return {
        "backbone": (m.get("params") or {}).get("backbone") or backbone.get("name", "-"),
        "strategy": f"{strategy.get('name', '-')}({params})",
        "task": m.get("task", "-"),
        "classes": ", ".join(map(str, (m.get("labels") or [])[:50])),
        **{k: training[k] for k in ("n_train", "n_val", "best_epoch", "fit_seconds") if k in training},
        **{k: training[k] for k in ("adaptation", "importance_weights") if training.get(k) is not None},
        "created": m.get("created", "-"),
        "graft": (m.get("versions") or {}).get("graft", "-"),
    }


def _wrong(metrics: dict[str, Any]) -> int | None:
    """How many predictions the confusion matrix counts as wrong (``None`` without one)."""
    cm = metrics.get("confusion_matrix")
    try:
        return sum(v for i, row in enumerate(cm) for j, v in enumerate(row) if i != j)
    except TypeError:
        return None


class _Page:
    """The sections of a report as they are assembled, with the notes about what the run did not save."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.notes: list[str] = []

    def note(self, heading: str, message: str, *, missing: bool = True) -> None:
        self.lines += note_section(heading, message)
        if missing:
            self.notes.append(f"{heading}: {message}")

    def image(self, heading: str, path: Path) -> None:
        self.lines += image_section(heading, path)

    def plot(self, heading: str, draw: Any, *args: Any, **kwargs: Any) -> None:
        """``draw(*args, **kwargs)`` → a PNG shown under ``heading``; a plot that cannot be drawn is noted."""
        try:
            self.image(heading, draw(*args, **kwargs))
        except (GraftError, ValueError, TypeError, KeyError, OSError) as e:
            self.note(heading, f"could not be drawn from what the run saved ({str(e)[:200]}).")


def _confusion_part(page: _Page, run: Path, m: dict[str, Any], metrics: dict[str, Any] | None, plots: Path) -> None:
    """The validation confusion matrix (or why there are no validation metrics)."""
    from .plots import plot_confusion_matrix

    if metrics is None:
        page.note(
            "Metrics",
            "This run saved no validation metrics (it had no validation split). Score it on labelled data: "
            f"graft report {run} --data DATA.",
        )
    elif "confusion_matrix" in metrics:
        labels = [str(c) for c in (metrics.get("labels") or m.get("labels") or [])]
        cm = metrics["confusion_matrix"]
        page.plot(
            "Confusion matrix (validation)", plot_confusion_matrix, cm, labels, plots / "confusion_matrix.png",
            title="validation",
        )  # fmt: skip


def _history_part(page: _Page, m: dict[str, Any], plots: Path) -> None:
    from .plots import plot_history

    training = m.get("training") or {}
    if training.get("history"):
        best = training.get("best_epochs") or None
        page.plot("Training curves", plot_history, training["history"], plots / "history.png", best_epochs=best)
    else:
        page.note("Training curves", "This run saved no training history.")


def _diagnostic_parts(page: _Page, run: Path, m: dict[str, Any], metrics: dict[str, Any] | None) -> None:
    """Calibration and the most confident errors of the validation split, as the run saved them."""
    if metrics is None or "confusion_matrix" not in metrics:
        return
    if (run / "reliability.png").exists():
        page.image("Calibration (validation)", run / "reliability.png")
    else:
        page.note(
            "Calibration (validation)",
            f"This run saved no reliability diagram; graft report {run} --data DATA draws one on labelled data.",
        )
    none_wrong = _wrong(metrics) == 0
    if m.get("task") == "image-classification":
        if (run / "confident_errors.png").exists():
            page.image(_IMAGE_ERRORS, run / "confident_errors.png")
        elif none_wrong:
            page.note(_IMAGE_ERRORS, "No validation image was predicted wrongly.", missing=False)
        else:
            page.note(_IMAGE_ERRORS, "This run saved no Grad-CAM overlays of its errors.")
    elif m.get("task") == "text-classification":
        examples, problem = _read_json(run / TEXT_ERRORS) if (run / TEXT_ERRORS).exists() else (None, None)
        if isinstance(examples, dict):
            page.lines += text_errors_section(_TEXT_ERRORS_HEADING, examples.get("examples"))
        elif none_wrong:
            page.note(_TEXT_ERRORS_HEADING, "No validation example was predicted wrongly.", missing=False)
        else:
            page.note(_TEXT_ERRORS_HEADING, problem or f"This run saved no examples of its errors ({TEXT_ERRORS}).")


def _domain_part(page: _Page, run: Path, m: dict[str, Any]) -> None:
    if (run / "domain_features.png").exists():
        page.image("Source and target features", run / "domain_features.png")
    elif (m.get("training") or {}).get("adaptation") is not None:
        page.note("Source and target features", "This run saved no plot of its source and target features.")


def _selection_parts(page: _Page, run: Path, m: dict[str, Any] | None) -> None:
    """The choices of a ``--budget`` run, ``rank.json`` and ``compare.json``, when the folder has them."""
    if m is not None and "auto" in m:
        page.lines += choices_section(m["auto"])
    for name, heading, render in (("rank.json", "Rank", rank_section), ("compare.json", "Compare", compare_section)):
        if (run / name).exists():
            content, problem = _read_json(run / name)
            if problem is None:
                page.lines += render(content)
            else:
                page.note(heading, problem)


def write_run_report(
    run: str | Path,
    output: str | Path | None = None,
    *,
    scored: ScoredRun | None = None,
    info: dict[str, Any] | None = None,
    plots_dir: str | Path | None = None,
) -> RunReport:
    """Write the self-contained ``report.html`` of a run folder from what the run saved.

    Args:
        run: a run folder (``graft train -o RUN``, a saved bundle), or a folder with ``compare.json`` /
            ``rank.json`` only.
        output: the ``.html`` file (default ``RUN/report.html``).
        scored: the run scored on other data (see :func:`graft.commands.reporting.report_run`): its metrics and
            plots replace the validation ones.
        info: the "Run" table (default: read from ``graft.json``).
        plots_dir: where the confusion matrix and training curves PNGs are written (default: a temporary folder;
            the page embeds them either way).

    Returns:
        A :class:`RunReport` with the path, the section headings and the notes about missing parts.

    Raises:
        BundleError: ``run`` holds neither a bundle nor ``compare.json`` / ``rank.json``.

    Example:
        >>> write_run_report("runs/ants").sections  # doctest: +SKIP
        ['Run', 'Metrics', 'Data', 'Per class', 'Confusion matrix (validation)', 'Training curves', ...]
    """
    from ..bundle import MANIFEST, read_manifest

    run = Path(run)
    extras = [n for n in ("compare.json", "rank.json") if (run / n).exists()]
    if not (run / MANIFEST).exists() and not extras:
        if run.is_dir():
            raise BundleError(
                f"'{run}' holds no Graft run ({MANIFEST}) and no compare.json or rank.json. Give the folder of "
                "`graft train -o RUN`, `graft compare -o DIR` or `graft rank -o DIR/rank.json`."
            )
        read_manifest(run)  # says what is missing
    manifest = read_manifest(run) if (run / MANIFEST).exists() else None
    output = Path(output) if output is not None else run / "report.html"
    page = _Page()
    with tempfile.TemporaryDirectory(prefix="graft-report-") as tmp:
        plots = Path(plots_dir) if plots_dir is not None else Path(tmp)
        if manifest is None:
            compare, _ = _read_json(run / "compare.json") if "compare.json" in extras else (None, None)
            compare = compare if isinstance(compare, dict) else {}
            title, metrics = f"Graft compare: {run.name}", None
            info = info or {k: compare[k] for k in ("data", "backbone", "test_rows", "budgets") if k in compare}
        elif scored is not None:
            title, metrics, info = f"Graft evaluation: {run.name}", scored.metrics, info or scored.info
            page.lines += [line for h, p in scored.images.items() for line in image_section(h, p)]
            page.lines += scored.sections
            _history_part(page, manifest, plots)
        else:
            title, metrics = f"Graft run: {run.name}", (manifest.get("metrics") or {}).get("val")
            info = info or _manifest_info(manifest)
            _confusion_part(page, run, manifest, metrics, plots)
            _history_part(page, manifest, plots)
            _diagnostic_parts(page, run, manifest, metrics)
        if manifest is not None:
            _domain_part(page, run, manifest)
        _selection_parts(page, run, manifest)
        path = write_html_report(output, title=title, metrics=metrics or {}, info=info, sections=page.lines)
    text = path.read_text(encoding="utf-8")
    headings = [html.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", text)]
    return RunReport(path, title, headings, page.notes, metrics)
