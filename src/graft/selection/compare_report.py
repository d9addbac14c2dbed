"""The results of :func:`graft.selection.compare.compare`: mean ± std per strategy and budget, the gain of transfer
over training from scratch, and the files ``compare.csv``, ``compare.json`` and ``compare.png`` (written atomically).

``compare.json`` (the schema ``report.html`` reads)::

    {"data": str, "backbone": str, "test_rows": int, "budgets": [2, 8, "all"],
     "rows": [{"strategy", "budget", "seed", "n_train", "accuracy", "f1_macro", "seconds"}],
     "summary": [{"strategy", "budget", "n_train", "mean", "std", "seconds"}],
     "gain": [{"budget", "scratch", "best_strategy", "best", "points", "seconds_scratch", "seconds_best"}]}

``mean``/``std`` are the test accuracy over seeds (sample standard deviation; 0 with one seed), ``seconds`` the mean
training wall time; ``points`` is ``100 * (best - scratch)``; entries that do not apply (no scratch run) are null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_write_bytes, atomic_write_json

__all__ = ["summarize", "transfer_gain", "report", "write_compare", "plot_compare"]

#: the from-scratch baseline's strategy name
SCRATCH = "scratch"


def _order(values: Any) -> list[Any]:
    """Distinct values in first-seen order."""
    return list(dict.fromkeys(values))


def summarize(table: Any) -> list[dict[str, Any]]:
    """Per strategy and budget (in run order): ``n_train``, mean and std of the test accuracy over seeds, mean
    seconds."""
    out = []
    for strategy in _order(table["strategy"]):
        for budget in _order(table["budget"]):
            runs = table[(table["strategy"] == strategy) & (table["budget"] == budget)]
            if runs.empty:
                continue
            acc = runs["accuracy"].to_numpy(dtype=float)
            out.append(
                {
                    "strategy": strategy,
                    "budget": budget,
                    "n_train": int(round(float(runs["n_train"].mean()))),
                    "mean": round(float(acc.mean()), 4),
                    "std": round(float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, 4),
                    "seconds": round(float(runs["seconds"].mean()), 2),
                }
            )
    return out


def transfer_gain(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per budget: the scratch accuracy, the best other strategy (ties: the faster), its accuracy, the gain in points
    and both mean training times."""
    out = []
    for budget in _order(s["budget"] for s in summary):
        at = [s for s in summary if s["budget"] == budget]
        scratch = next((s for s in at if s["strategy"] == SCRATCH), None)
        others = [s for s in at if s["strategy"] != SCRATCH]
        best = max(others, key=lambda s: (s["mean"], -s["seconds"])) if others else None
        points = None
        if scratch is not None and best is not None:
            points = round(100 * (best["mean"] - scratch["mean"]), 1)
        out.append(
            {
                "budget": budget,
                "scratch": None if scratch is None else scratch["mean"],
                "best_strategy": None if best is None else best["strategy"],
                "best": None if best is None else best["mean"],
                "points": points,
                "seconds_scratch": None if scratch is None else scratch["seconds"],
                "seconds_best": None if best is None else best["seconds"],
            }
        )
    return out


def report(table: Any) -> dict[str, Any]:
    """The ``compare.json`` object of a :func:`~graft.selection.compare.compare` table."""
    summary = summarize(table)
    rows = [
        {
            "strategy": str(r["strategy"]),
            "budget": r["budget"] if r["budget"] == "all" else int(r["budget"]),
            "seed": int(r["seed"]),
            "n_train": int(r["n_train"]),
            "accuracy": round(float(r["accuracy"]), 4),
            "f1_macro": round(float(r["f1_macro"]), 4),
            "seconds": round(float(r["seconds"]), 2),
        }
        for r in table.to_dict("records")
    ]
    return {
        "data": str(table.attrs.get("data", "")),
        "backbone": str(table.attrs.get("backbone", "")),
        "test_rows": int(table.attrs.get("test_rows", 0)),
        "budgets": list(table.attrs.get("budgets", _order(table["budget"]))),
        "rows": rows,
        "summary": summary,
        "gain": transfer_gain(summary),
    }


def write_compare(table: Any, output_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.csv`` (one row per run), ``compare.json`` and ``compare.png`` into ``output_dir``."""
    from ..errors import ConfigError

    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"'{out}' is a file; give a folder as the output directory (-o).")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "compare.csv", "json": out / "compare.json", "png": out / "compare.png"}
    data = report(table)
    atomic_write_bytes(paths["csv"], table.to_csv(index=False).encode())
    atomic_write_json(paths["json"], data)
    plot_compare(data, paths["png"])
    return paths


def plot_compare(data: dict[str, Any], path: str | Path) -> Path:
    """Test accuracy against labelled training examples (log scale), one line per strategy with a ± std band."""
    from ..evaluation.plots import _new_figure, _save_png

    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    ticks: dict[int, str] = {}
    for strategy in _order(s["strategy"] for s in data["summary"]):
        points = sorted((s for s in data["summary"] if s["strategy"] == strategy), key=lambda s: s["n_train"])
        x = np.asarray([s["n_train"] for s in points], float)
        mean = np.asarray([s["mean"] for s in points])
        std = np.asarray([s["std"] for s in points])
        style = {"linestyle": "--", "color": "0.35"} if strategy == SCRATCH else {}
        (line,) = ax.plot(x, mean, marker="o", label=strategy, **style)
        low, high = np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1)
        ax.fill_between(x, low, high, alpha=0.18, color=line.get_color(), linewidth=0)
        for s in points:
            per = "all" if s["budget"] == "all" else f"{s['budget']}/class"
            ticks.setdefault(int(s["n_train"]), f"{s['n_train']}\n({per})")
    ax.set_xscale("log")
    if ticks:
        ax.set_xticks(sorted(ticks), [ticks[k] for k in sorted(ticks)])
        ax.minorticks_off()
        lo, hi = min(ticks), max(ticks)
        ax.set_xlim(lo / 1.3, hi * 1.3 if hi > lo else lo * 1.3)
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel(f"test accuracy ({data['test_rows']} examples)")
    name = Path(data["data"]).name or data["data"]
    ax.set_title(f"{name}: transfer from {data['backbone']} vs training from scratch", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save_png(fig, path)
