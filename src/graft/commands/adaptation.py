"""``graft compare-adaptation``: every domain-adaptation method on one source/target pair, as table rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean

__all__ = ["ADAPTATION_METHODS", "COMPARE_COLUMNS", "parse_methods", "check_table_path", "compare_adaptation"]

#: the methods compared by default, the baseline first
ADAPTATION_METHODS: tuple[str, ...] = ("source-only", "dann", "cdan", "mcc", "coral", "mmd", "adabn", "self-training")

#: columns of the comparison: row key, table header, number format
COMPARE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("method", "method", "{}"),
    ("target_accuracy", "target acc", "{:.4f}"),
    ("source_val_accuracy", "source val acc", "{:.4f}"),
    ("a_distance_before", "A-dist before", "{:.3f}"),
    ("a_distance_after", "A-dist after", "{:.3f}"),
    ("val_iwcv_loss", "IWCV loss", "{:.4f}"),
    ("val_target_entropy", "target entropy", "{:.4f}"),
    ("best_epoch", "best epoch", "{}"),
    ("fit_seconds", "fit s", "{:.1f}"),
)


def parse_methods(methods: str) -> list[str]:
    """The comma-separated adaptation methods, in order, without repeats.

    Raises:
        ConfigError: for an empty list or a name that is not a domain-adaptation strategy.
    """
    from ..strategies import list_strategies

    known = list_strategies(adaptation=True)
    names = list(dict.fromkeys(m.strip().lower().replace("_", "-") for m in methods.split(",") if m.strip()))
    if not names:
        raise ConfigError(f"--methods is empty. Give comma-separated names from: {', '.join(known)}.")
    for name in names:
        if name not in known:
            raise ConfigError(
                f"Unknown adaptation method '{name}'.{did_you_mean(name, known)} "
                f"Choose from {', '.join(known)} (comma-separated, e.g. --methods source-only,dann,coral)."
            )
    return names


def check_table_path(path: Path | None) -> None:
    """Fail before any training when ``path`` cannot be written as CSV or JSON."""
    if path is not None and path.suffix.lower() not in (".csv", ".json"):
        raise ConfigError(f"--output '{path}' must end in .csv or .json; got '{path.suffix or '(no extension)'}'.")
    if path is not None:
        from .._utils import check_writable

        check_writable(path, "--output")


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as CSV (one header line) or a JSON list, by the file's extension, atomically."""
    from .._utils import atomic_write_bytes, atomic_write_json

    if path.suffix.lower() == ".json":
        atomic_write_json(path, rows)
        return
    import csv
    import io

    buf = io.StringIO()
    fields = list(rows[0]) if rows else [c for c, _, _ in COMPARE_COLUMNS]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def compare_adaptation(
    source: Path,
    target: Path,
    *,
    methods: list[str],
    task: str,
    target_test: Path | None = None,
    model: str | None = None,
    val: Path | None = None,
    deep: bool = False,
    runs: Path | None = None,
    output: Path | None = None,
    image: dict[str, Any] | None = None,
    text: dict[str, Any] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    **common: Any,
) -> list[dict[str, Any]]:
    """Train each method on ``source`` with the same unlabelled ``target``; one row per method.

    The frozen embeddings are computed by the first method and read from the embedding cache by the others. Methods
    that cannot train a backbone (AdaBN) stay on the embeddings with ``deep``.
    """
    from ..strategies import get_strategy
    from .training import make_estimator

    check_table_path(output)
    rows: list[dict[str, Any]] = []
    for name in methods:
        clf = make_estimator(
            task,
            model,
            name,
            deep=deep and get_strategy(name).supports_deep,
            image=image or {},
            text=text or {},
            output_dir=None if runs is None else runs / name,
            cache=True,  # later methods read the first one's embeddings
            **common,
        )
        clf.fit(str(source), val=None if val is None else str(val), target=str(target))
        best = clf.best_metrics_ or {}
        diagnostics = getattr(clf, "adaptation_diagnostics_", {}) or {}
        row: dict[str, Any] = {
            "method": name,
            "target_accuracy": None,
            "source_val_accuracy": best.get("val_accuracy"),
            "a_distance_before": diagnostics.get("a_distance_before"),
            "a_distance_after": diagnostics.get("a_distance_after"),
            "val_iwcv_loss": best.get("val_iwcv_loss"),
            "density_ratio_range": diagnostics.get("density_ratio_range"),
            "val_target_entropy": best.get("val_target_entropy"),
            "best_epoch": clf.best_epoch_,
            "fit_seconds": round(clf.fit_seconds_, 2),
            "embed_seconds": round(getattr(clf, "embed_seconds_", 0.0), 2),
        }
        if target_test is not None:
            row["target_accuracy"] = clf.evaluate(str(target_test))["accuracy"]
        if runs is not None:
            row["run"] = str(runs / name)
        rows.append(row)
        if on_done is not None:
            on_done(row)
    if output is not None:
        write_table(output, rows)
    return rows
