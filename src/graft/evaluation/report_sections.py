"""HTML sections of the report beyond the metrics: text examples among the confident errors, the choices of a
``--budget`` run, a backbone ranking and a label-budget comparison (with its plot inline).

Each function takes plain JSON data (as the run folder keeps it) and returns escaped HTML lines; missing keys are
shown as ``-``, so hand-edited or older files render rather than fail.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from .report import _esc, _num

__all__ = [
    "note_section",
    "records_table",
    "text_errors_section",
    "choices_section",
    "rank_section",
    "compare_section",
    "compare_plot",
]

#: characters of an example's text shown in the report
TEXT_LIMIT = 300
#: rows of a table shown before the rest is summarised
MAX_ROWS = 200


def note_section(heading: str, message: str) -> list[str]:
    """A heading with a note in place of the content it would have held."""
    return [f"<h2>{_esc(heading)}</h2>", f'<p class="note">{_esc(message)}</p>']


def _cell(value: Any, column: str = "") -> str:
    """One table cell: numbers right-aligned (timings with one decimal), containers as compact JSON, ``None``/NaN
    as ``-``."""
    if isinstance(value, float) and math.isnan(value):
        value = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        digits = 1 if column == "seconds" or column.endswith("_s") else 4
        return f'<td class="num">{_num(value, digits)}</td>'
    if isinstance(value, (dict, list, tuple)):
        return f"<td>{_esc(json.dumps(value, default=str, ensure_ascii=False))}</td>"
    return f"<td>{_num(value)}</td>"


def records_table(rows: Any, columns: Sequence[str] | None = None) -> list[str]:
    """A table of ``rows`` (a list of dicts), one column per key in first-seen order (or ``columns``)."""
    rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    if not rows:
        return ['<p class="note">no rows.</p>']
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    out = ["<table>", "<tr>" + "".join(f"<th>{_esc(c)}</th>" for c in columns) + "</tr>"]
    out += ["<tr>" + "".join(_cell(r.get(c), str(c)) for c in columns) + "</tr>" for r in rows[:MAX_ROWS]]
    out.append("</table>")
    if len(rows) > MAX_ROWS:
        out.append(f'<p class="note">{len(rows) - MAX_ROWS} more rows not shown.</p>')
    return out


def _shorten(text: Any, limit: int = TEXT_LIMIT) -> str:
    text = " ".join(str(text).split())  # newlines and runs of spaces as one space
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_errors_section(heading: str, examples: Any) -> list[str]:
    """The most confidently wrong text examples: text (shortened), true and predicted label, probability.

    Args:
        heading: The section heading.
        examples: Dicts with ``text`` (and ``pair`` for sentence pairs), ``true``, ``predicted``, ``probability``,
            most confident first; an empty list says that nothing was predicted wrongly.
    """
    rows = [e for e in examples if isinstance(e, dict)] if isinstance(examples, list) else []
    if not rows:
        return note_section(heading, "No example was predicted wrongly.")
    out = [
        f"<h2>{_esc(heading)}</h2>",
        "<table>",
        "<tr><th>#</th><th>text</th><th>true</th><th>predicted</th><th>probability</th></tr>",
    ]
    for i, e in enumerate(rows, 1):
        text = _shorten(e.get("text", ""))
        if e.get("pair") is not None:
            text += " ⟂ " + _shorten(e["pair"], TEXT_LIMIT // 2)
        out.append(
            f'<tr><td class="num">{i}</td><td class="text">{_esc(text)}</td><td>{_esc(e.get("true", "-"))}</td>'
            f'<td>{_esc(e.get("predicted", "-"))}</td><td class="num">{_num(e.get("probability"), 3)}</td></tr>'
        )
    out.append("</table>")
    return out


def _seconds(value: Any) -> str:
    return f"{_num(value, 1)} s" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def choices_section(auto: Any) -> list[str]:
    """What a ``--budget`` run chose and why: budget and time spent per phase, the decisions, the ranked candidates.

    Args:
        auto: ``graft.json``'s ``"auto"`` entry: ``budget_s``, ``spent_s``, ``phases_s`` (phase -> seconds),
            ``decisions`` (dicts with ``what``, ``choice``, ``why``, ``evidence``) and ``rank`` (rows).
    """
    if not isinstance(auto, dict):
        return note_section("Choices", "The run's record of its choices is not readable (expected a JSON object).")
    out = [
        "<h2>Choices</h2>",
        f"<p>budget {_seconds(auto.get('budget_s'))}, spent {_seconds(auto.get('spent_s'))}.</p>",
    ]
    phases = auto.get("phases_s")
    if isinstance(phases, dict) and phases:
        out += ["<table><tr><th>phase</th><th>seconds</th></tr>"]
        out += [f'<tr><th>{_esc(k)}</th><td class="num">{_num(v, 1)}</td></tr>' for k, v in phases.items()]
        out.append("</table>")
    decisions = auto.get("decisions")
    out.append("<h3>Decisions</h3>")
    out += records_table(decisions, ["what", "choice", "why", "evidence"])
    if auto.get("rank"):
        out.append("<h3>Candidates ranked</h3>")
        out += records_table(auto["rank"])
    return out


def rank_section(rank: Any) -> list[str]:
    """The backbone ranking of ``graft rank -o rank.json``: a list of rows (or ``{"score", "ranking"}``)."""
    score = None
    if isinstance(rank, dict):
        score, rank = rank.get("score"), rank.get("ranking")
    out = ["<h2>Rank</h2>"]
    if score:
        out.append(f"<p>Backbones sorted by {_esc(score)} (higher is better).</p>")
    return out + records_table(rank)


def _gain_line(g: dict[str, Any]) -> str:
    points = g.get("points")
    gain = f"{points:+.1f} points" if isinstance(points, (int, float)) and not isinstance(points, bool) else "-"
    return (
        f"<li>budget {_esc(g.get('budget', '-'))}: {_esc(g.get('best_strategy', '-'))} {_num(g.get('best'), 3)} "
        f"vs scratch {_num(g.get('scratch'), 3)} ({_esc(gain)}); "
        f"{_seconds(g.get('seconds_best'))} vs {_seconds(g.get('seconds_scratch'))}</li>"
    )


def compare_section(compare: Any) -> list[str]:
    """The label-budget comparison of ``graft compare``: summary table, gain over training from scratch, a plot.

    Args:
        compare: ``compare.json``: ``data``, ``backbone``, ``test_rows``, ``budgets``, ``rows`` (one per strategy,
            budget and seed), ``summary`` (mean and std per strategy and budget) and ``gain`` (per budget).
    """
    if not isinstance(compare, dict):
        return note_section("Compare", "compare.json is not readable (expected a JSON object).")
    budgets = compare.get("budgets")
    budgets = ", ".join(map(str, budgets)) if isinstance(budgets, list) else budgets
    metric = str(compare.get("metric") or "accuracy")
    out = [
        "<h2>Compare</h2>",
        f"<p>Data: {_esc(compare.get('data', '-'))}; backbone {_esc(compare.get('backbone', '-'))}; "
        f"{_num(compare.get('test_rows'))} test rows; label budgets {_esc(budgets or '-')}. Mean and std: "
        f"{_esc(metric)} over seeds.</p>",
        *records_table(compare.get("summary"), ["strategy", "budget", "n_train", "mean", "std", "seconds"]),
    ]
    gains = [g for g in compare.get("gain") or [] if isinstance(g, dict)]
    if gains:
        out += ["<h3>Gain over training from scratch</h3>", "<ul>", *map(_gain_line, gains), "</ul>"]
    png = compare_plot(compare.get("summary"), metric)
    if png is not None:
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        out.append(f'<img src="{uri}" alt="{_esc(metric)} by labelled examples">')
    if compare.get("rows"):
        out.append("<details><summary>Every run (strategy, budget, seed)</summary>")
        out += records_table(
            compare["rows"], ["strategy", "budget", "seed", "n_train", "accuracy", "f1_macro", "seconds"]
        )
        out.append("</details>")
    return out


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def compare_plot(summary: Any, metric: str = "accuracy") -> bytes | None:
    """PNG bytes of the mean ``metric`` (± std) against labelled training examples, one line per strategy;
    ``None`` when ``summary`` holds no point to draw."""
    lines: dict[str, list[tuple[float, float, float]]] = {}
    for r in summary if isinstance(summary, list) else []:
        if not isinstance(r, dict):
            continue
        x, y = _number(r.get("n_train")), _number(r.get("mean"))
        if x is not None and y is not None and x > 0:
            lines.setdefault(str(r.get("strategy", "?")), []).append((x, y, _number(r.get("std")) or 0.0))
    if not lines:
        return None
    from .plots import _new_figure, _plain

    fig = _new_figure(7.0, 4.2)
    ax = fig.subplots()
    for name, points in lines.items():
        xs, ys, sd = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="o", label=_plain(name, 30))
        ax.fill_between(xs, [a - b for a, b in zip(ys, sd)], [a + b for a, b in zip(ys, sd)], alpha=0.15)
    xs_all = [p[0] for pts in lines.values() for p in pts]
    if max(xs_all) / min(xs_all) > 10:
        ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel(f"{_plain(metric, 30)} (mean over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
