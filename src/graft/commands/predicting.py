"""``graft evaluate`` and ``graft predict``: score a bundle on labelled data (with a report), predict inputs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GraftError

if TYPE_CHECKING:
    from ..evaluation.run_report import ScoredRun

__all__ = [
    "evaluate_run",
    "score_run",
    "discover_inputs",
    "predictions",
    "check_output_path",
    "write_predictions",
    "format_entities",
]


def evaluate_run(
    run: Path,
    data: Path,
    *,
    report: Path | None = None,
    device: str | None = None,
    backend: str | None = None,
    tta: bool = False,
) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    """Metrics of the bundle ``run`` on ``data``, the HTML report written beside them, and what was scored.

    The report goes to ``report``, or to a new folder ``RUN/evaluation/<data>-<split>`` (``-2``, ``-3``, ... when an
    earlier evaluation is there: nothing is overwritten). ``scored`` says which split of ``data`` was used and
    carries a ``warning`` when that split is the one that chose the best epoch, or the training data itself.
    """
    from ..evaluation import write_html_report

    s = score_run(run, data, report, device=device, backend=backend, tta=tta)
    html = write_html_report(
        s.folder / "report.html",
        title=f"Graft evaluation: {run.name}",
        metrics=s.metrics,
        info=s.info,
        images=s.images,
        sections=s.sections,
    )
    return s.metrics, html, s.scored


def score_run(
    run: Path,
    data: Path,
    folder: Path | None = None,
    *,
    device: str | None = None,
    backend: str | None = None,
    tta: bool = False,
) -> ScoredRun:
    """The bundle ``run`` scored on ``data``: metrics, run facts, plots written into ``folder`` (default: a new
    ``RUN/evaluation/<data>-<split>``) and the most confidently wrong examples (Grad-CAM for images, texts)."""
    from ..estimators import load
    from ..evaluation import plot_confusion_matrix
    from ..evaluation.run_report import ScoredRun

    if not Path(data).exists():
        raise GraftError(f"'{data}' does not exist. Give labelled data: a folder, a table or a CSV of image paths.")

    t0 = time.perf_counter()
    model = load(run, device=device, backend=backend)
    if tta:
        model.strategy_.tta = True  # mean of each image's and its mirror image's outputs
    model._keep_evaluated = True
    metrics = model.evaluate(str(data))
    seconds = time.perf_counter() - t0
    split = getattr(model, "evaluated_split_", None)
    scored: dict[str, Any] = {"data": str(data), "split": split}
    trained_on = (getattr(model, "data_", None) or {}).get("train")
    if split in ("val", "train", None) and trained_on is not None and Path(trained_on) == Path(data).resolve():
        what = "the training data itself" if split is None else f"the '{split}' split of the training data"
        scored["warning"] = (
            f"scored {what}"
            + (", which chose the best epoch: the score is optimistic" if split in ("val", None) else "")
            + ". Give held-out data (a test/ split or another folder/table) for an unbiased estimate."
        )
    folder = folder or _new_folder(run / "evaluation" / f"{Path(data).stem or 'data'}-{split or 'all'}")
    images, sections = {}, []
    if "confusion_matrix" in metrics:
        images["Confusion matrix"] = plot_confusion_matrix(
            metrics["confusion_matrix"], metrics["labels"], folder / "confusion_matrix.png"
        )
    if "confusion_matrix" in metrics and hasattr(model, "evaluated_"):
        from ..evaluation.report_sections import text_errors_section
        from ..evaluation.runs import confident_error_grid, confident_error_texts, reliability_diagram

        reliability = reliability_diagram(model, model.evaluated_, folder / "reliability.png")
        if reliability is not None:
            images["Calibration"] = reliability

        grid = confident_error_grid(model, model.evaluated_, folder / "confident_errors.png")
        if grid is not None:
            images["Most confidently wrong images (Grad-CAM: where the model looked)"] = grid
        texts = confident_error_texts(model, model.evaluated_)
        if texts is not None:
            sections = text_errors_section("Most confidently wrong examples", texts)
    info = {
        "run": str(run),
        "data": str(data),
        "split": split or "(whole input)",
        **({"warning": scored["warning"]} if "warning" in scored else {}),
        "seconds": round(seconds, 2),
        "backbone": model.manifest_["backbone"],
        "strategy": model.manifest_["strategy"],
    }
    return ScoredRun(metrics, info, images, sections, scored, folder)


def _new_folder(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``, ... whichever does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


#: inputs read as tables (one row per example), not as one text per line
TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
#: formats of ``graft predict --output``
OUTPUT_FORMATS = (".csv", ".jsonl", ".parquet")


def discover_inputs(
    model: Any, inputs: list[Path] | None, texts: list[str] | None, pairs: list[str] | None = None
) -> list[tuple[Any, list[str]]]:
    """What to predict, in groups of ``(model input, how each row is shown)``.

    Image models: image files, folders (every image under them) and ``path[,label]`` CSV files. Text models: the
    ``--text`` strings, tables (CSV/TSV/JSONL/Parquet: the text columns the model was trained on, or found by name;
    labels ignored), and other files as one text per line. Groups keep the order of the inputs, after the ``--text``
    strings.
    """
    if model.modality == "image":
        if not inputs:
            raise GraftError("give image files, folders or a CSV of paths to predict.")
        from ..data.image_folders import csv_image_paths, list_images

        items: list[str] = []
        for p in inputs:
            if p.is_dir():
                items += list_images(p)
            elif p.suffix.lower() in (".csv", ".tsv"):
                items += csv_image_paths(p)  # every row in file order; labels and splits ignored
            else:
                items.append(str(p))
        return [(items, items)]
    if model.modality == "tabular":
        return _table_inputs(model, inputs)
    groups: list[tuple[Any, list[str]]] = [_given_texts(list(texts or []), list(pairs or []))] if texts or pairs else []
    for p in inputs or []:  # in the order given: results keep it
        if p.suffix.lower() in TABLE_EXTENSIONS and model.task != "token-classification":
            from ..data.text import read_text_table

            table = read_text_table(
                p,
                text_column=getattr(model, "text_column", None),
                text_pair_column=getattr(model, "text_pair_column", None),
            )
            shown = list(table.texts) if table.pairs is None else list(map(shown_pair, table.texts, table.pairs))
            groups.append((table, shown))
        elif model.task == "token-classification" and _token_file(p):
            from ..data.tokens import load_tokens

            words = [list(t) for t in load_tokens(p).tokens]  # the file's words, its tags (if any) ignored
            groups.append((words, [" ".join(w) for w in words]))
        elif lines := _text_lines(p, model):
            groups.append((lines, lines))
    if not groups:
        raise GraftError('give --text "..." (repeatable), a table (CSV, TSV, JSONL, Parquet) or a file of lines.')
    return groups


def _table_inputs(model: Any, inputs: list[Path] | None) -> list[tuple[Any, list[str]]]:
    """Each table's rows, shown by the table's ID column when the model found one (else ``file:row``)."""
    from ..data.tabular import read_frame

    if not inputs:
        raise GraftError("give one or more tables (CSV, TSV, Parquet, JSONL) to predict.")
    ids = [c for c, why in model.schema_.dropped.items() if why.startswith("an ID")]
    groups: list[tuple[Any, list[str]]] = []
    for p in inputs:
        df = read_frame(p, what=f"'{p}'")
        key = next((c for c in ids if c in df.columns), None)
        shown = [str(v) for v in df[key]] if key else [f"{p.name}:{i}" for i in range(len(df))]
        groups.append((df, shown))
    return groups


def _given_texts(texts: list[str], pairs: list[str]) -> tuple[Any, list[str]]:
    """The ``--text`` strings, paired in order with the ``--text-pair`` ones when given."""
    if not pairs:
        return texts, texts
    if len(pairs) != len(texts):
        raise GraftError(f"give one --text-pair per --text; got {len(texts)} --text and {len(pairs)} --text-pair.")
    return list(zip(texts, pairs, strict=True)), list(map(shown_pair, texts, pairs))


def shown_pair(text: str, pair: str) -> str:
    """How a sentence pair is shown in results: ``"text | pair"``."""
    return f"{text} | {pair}"


def _token_file(path: Path) -> bool:
    """A CoNLL or token JSONL file (one word per line, or ``{"tokens": [...]}`` per line), not lines of text."""
    from ..data.detect import _file_task

    return path.is_file() and _file_task(path) == "token-classification"


def _text_lines(path: Path, model: Any) -> list[str]:
    """The non-blank lines of a UTF-8 text file; a clear error for anything else (an image given to a text model)."""
    from ..data.image_folders import IMAGE_EXTENSIONS

    kind = "texts" if model.task != "token-classification" else "sentences"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise GraftError(
            f"'{path}' is an image, and this model reads {kind}: give --text \"...\", a table or a text file."
        )
    if path.is_dir():
        raise GraftError(
            f"'{path}' is a folder, and this model reads {kind}: give --text \"...\", a table (CSV, TSV, JSONL, "
            "Parquet) or a UTF-8 file with one text per line."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GraftError(
            f"'{path}' is not UTF-8 text, and this model reads {kind}: give --text \"...\", a table (CSV, TSV, JSONL, "
            "Parquet) or a UTF-8 file with one text per line."
        ) from None
    except OSError as e:
        raise GraftError(f"cannot read '{path}': {e.strerror or e}.") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def predictions(model: Any, groups: list[tuple[Any, list[str]]], top_k: int = 3) -> list[dict[str, Any]]:
    """One JSON-ready result per input row: entity spans (token models), label lists with probabilities
    (multi-label), or the label with the top-k probabilities."""
    from ..tasks.multilabel import MultiLabel

    results: list[dict[str, Any]] = []
    for data, shown in groups:
        if model.task == "token-classification":
            results += [{"input": t, "entities": e} for t, e in zip(shown, model.predict_entities(list(data)))]
            continue
        proba = model.predict_proba(data)
        if isinstance(model.task_, MultiLabel):
            labels = model.task_.decide(proba, model.classes_)
            results += [
                {
                    "input": item,
                    "labels": lab,
                    "probabilities": {str(c): round(float(v), 6) for c, v in zip(model.classes_, p)},
                }
                for item, lab, p in zip(shown, labels, proba)
            ]
            continue
        k = max(1, min(top_k, proba.shape[1]))
        # a tuned decision (a cost-based threshold of a table model) decides the label, not the arg-max
        decided = model.task_.decide(proba) if hasattr(model.task_, "positive_index") else proba.argmax(1)
        for item, p, d in zip(shown, proba, decided):
            order = p.argsort()[::-1][:k]
            results.append(
                {
                    "input": item,
                    "label": model.classes_[d].item(),
                    "probability": round(float(p[d]), 6),  # of the label given (not always the most probable)
                    "top_k": [{"label": model.classes_[i].item(), "probability": round(float(p[i]), 6)} for i in order],
                }
            )
    return results


def check_output_path(path: Path | None, inputs: Sequence[Path] = ()) -> None:
    """Fail before any work when ``path`` is not a .csv, .jsonl or .parquet file, is one of the ``inputs``, or cannot
    be written (a file where a folder is needed, a read-only place)."""
    from .._utils import check_writable
    from ..errors import ConfigError

    if path is None:
        return
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(
            f"--output '{path}' must end in {', '.join(OUTPUT_FORMATS)}; got '{path.suffix or '(no extension)'}'."
        )
    if any(p.is_file() and p.resolve() == path.resolve() for p in inputs or ()):
        raise ConfigError(f"--output '{path}' is one of the inputs; write the predictions to another file.")
    if path.is_dir():
        raise ConfigError(f"--output '{path}' is a folder; give a file name such as '{path / 'predictions.csv'}'.")
    check_writable(path, "--output")


def write_predictions(path: Path, results: list[dict[str, Any]]) -> Path:
    """Write one row per result (nested values as JSON text in CSV and Parquet), atomically."""
    import json

    import pandas as pd

    from .._utils import atomic_write_bytes

    if path.suffix.lower() == ".jsonl":
        atomic_write_bytes(path, "".join(json.dumps(r, default=str) + "\n" for r in results).encode())
        return path
    flat = [
        {k: json.dumps(v, default=str) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in results
    ]
    for row, r in zip(flat, results):
        if "top_k" in r and "probability" not in r:  # a row kept from an earlier version's partial file
            row["probability"] = next((t["probability"] for t in r["top_k"] if t["label"] == r["label"]), None)
    frame = pd.DataFrame(flat)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        atomic_write_bytes(path, frame.to_csv(index=False).encode())
    else:
        atomic_write_bytes(path, frame.to_parquet(None, index=False))
    return path


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
