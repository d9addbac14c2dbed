"""``graft train DATA --budget 5m``: the command's budgeted form, which chooses backbone, strategy, learning rate and
epochs itself (:func:`graft.selection.budget.train_within_budget`) and prints each decision with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._cli_common import _fail, _print_json, err, out
from .errors import ConfigError, GraftError

__all__ = ["train_with_budget"]

#: ``graft train`` options that a budgeted run takes; every other one it chooses itself or does not support
_ALLOWED = {
    "data",
    "output",
    "model",
    "task",
    "image_size",
    "text_column",
    "text_pair_column",
    "label_column",
    "max_length",
    "strategy",
    "val",
    "batch_size",
    "precision",
    "augment",
    "seed",
    "device",
    "skip_invalid",
    "overwrite",
    "as_json",
    "budget",
}


def _set(ctx: typer.Context, name: str) -> bool:
    """Whether the option ``name`` was given (on the command line or by an environment variable)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _given(ctx: typer.Context) -> list[str]:
    """Options of the command line that a budgeted run does not take."""
    return ["--" + name.replace("_", "-") for name in ctx.params if name not in _ALLOWED and _set(ctx, name)]


def _from_command_line() -> bool:
    """This process runs ``graft train`` (``graft``, ``python -m graft``): the budget's clock starts with it, so
    interpreter start-up and imports count too; called from Python (tests, notebooks), it starts now."""
    import sys

    return len(sys.argv) > 1 and sys.argv[1] == "train" and Path(sys.argv[0]).name in ("graft", "__main__.py")


def train_with_budget(ctx: typer.Context, budget: str) -> None:
    """Run ``graft train`` with ``--budget``; the other options are read from the command's context ``ctx``."""
    from .selection.budget import parse_budget, process_start, train_within_budget

    p: dict[str, Any] = ctx.params
    as_json = bool(p["as_json"])
    try:
        parse_budget(budget)
        extra = _given(ctx)
        if extra:
            raise ConfigError(
                f"{', '.join(extra)} cannot be combined with --budget, which chooses the backbone, strategy, learning "
                "rate and epochs itself; leave them out, or train without --budget."
            )
        say = (lambda line: None) if as_json else (lambda line: out.print(f"[bold]auto[/] {line}", highlight=False))
        result = train_within_budget(
            p["data"],
            budget,
            output_dir=p["output"],
            val=p["val"],
            task=p["task"],
            candidates=[m.strip() for m in p["model"].split(",") if m.strip()] if p["model"] else None,
            strategy=p["strategy"] if _set(ctx, "strategy") else None,
            image={"augment": p["augment"], "skip_invalid": p["skip_invalid"], "image_size": p["image_size"]},
            text={
                "max_length": p["max_length"],
                "text_column": p["text_column"],
                "text_pair_column": p["text_pair_column"],
                "label_column": p["label_column"],
            },
            batch_size=p["batch_size"],
            precision=p["precision"],
            seed=p["seed"],
            device=p["device"],
            overwrite=p["overwrite"],
            verbose=not as_json,
            say=say,
            started=process_start() if _from_command_line() else None,
        )
    except GraftError as e:
        _fail(e)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted.[/]", highlight=False)
        raise typer.Exit(130) from None
    est, record = result.estimator, result.record
    summary = {"run": str(p["output"]), "model": est.backbone, **est.training_summary(), "auto": record}
    if as_json:
        _print_json(summary)
        return
    phases = ", ".join(f"{k.replace('_', '-')} {v:.1f}s" for k, v in record["phases_s"].items())
    budget = record["budget_s"]
    given = f"{budget:g}s" if budget < 3600 else f"{budget / 3600:g}h"
    line = f"[bold green]done[/] in {record['spent_s']:.1f}s of a {given} budget ({phases})"
    if summary["val"]:
        line += " | val " + ", ".join(f"{k.replace('_', ' ')} {x:.4f}" for k, x in summary["val"].items())
    out.print(line, highlight=False)
    what = "IMAGE" if est.modality == "image" else '--text "..."'
    out.print(
        f'bundle: {Path(p["output"])}/  (decisions in graft.json under "auto"; graft predict {p["output"]} {what})'
    )
