"""``graft compare``: transfer against training from scratch on the user's data, by label budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ._cli_common import _fail, _print_json, err, out
from .errors import GraftError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command()(compare)


def compare(
    data: Path = typer.Argument(
        ..., help="Labelled data, as for `graft train`: an image folder (train/ val/ test/ optional) or a text table."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for compare.csv, compare.json and compare.png."),
    budgets: str = typer.Option("2,8,32,all", help="Labelled examples per class, comma-separated; 'all' = every one."),
    seeds: int = typer.Option(3, help="Seeds per budget (each draws its own sample and initialisation)."),
    strategies: str | None = typer.Option(
        None,
        help="Comma-separated: scratch (same architecture, random weights), feature-extraction, fine-tune, lora "
        "(default: these; for text also few-shot when installed).",
    ),
    backbone: str | None = typer.Option(
        None, "--backbone", "--model", "-m", help="Backbone (see `graft models`); default efficientnet_lite0 / minilm."
    ),
    epochs: int | None = typer.Option(
        None,
        help="Epochs of scratch, fine-tune and lora runs (default: the strategy's; scratch 6). Feature extraction "
        "and few-shot keep their own (those of a head on embeddings).",
    ),
    val: Path | None = typer.Option(
        None,
        "--val",
        help="Test data every run is scored on (default: DATA's test/ or val/ split, else a stratified 30% holdout).",
    ),
    max_test: int | None = typer.Option(None, help="Score on a stratified sample of at most this many test examples."),
    image_size: int | None = typer.Option(None, help="Image input size instead of the backbone's (e.g. 160)."),
    text_column: str | None = typer.Option(None, help="Text column of a table (default: auto-detected)."),
    label_column: str | None = typer.Option(None, help="Label column of a table (default: auto-detected)."),
    batch_size: int = typer.Option(32, help="Examples per step (small budgets use n/4, at least 4)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    overwrite: bool = typer.Option(
        False, "--overwrite", metavar="", help="Replace an earlier comparison's files in the output folder."
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print compare.json on stdout."),
) -> None:
    """Train from scratch and with each transfer strategy at several label budgets and seeds, score every run on one
    fixed test split, and show the gain of transfer in accuracy points and in training time.

    Example: graft compare data/ants_bees --budgets 2,8,32,all --seeds 3 -o runs/cmp
    """
    from .selection.compare import compare as run_compare
    from .selection.compare_report import report

    options: dict[str, Any] = {
        k: v
        for k, v in (("image_size", image_size), ("text_column", text_column), ("label_column", label_column))
        if v is not None
    }
    try:
        table = run_compare(
            data,
            budgets=budgets,
            seeds=seeds,
            strategies=None if strategies is None else [s for s in strategies.split(",") if s.strip()],
            backbone=backbone,
            epochs=epochs,
            val=val,
            max_test=max_test,
            batch_size=batch_size,
            device=device,
            output_dir=output,
            overwrite=overwrite,
            verbose=not as_json,
            **options,
        )
    except GraftError as e:
        _fail(e)
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted.[/] The runs finished so far are in {output}/compare.csv.", highlight=False)
        raise typer.Exit(130) from None
    result = report(table)
    if as_json:
        _print_json(result)
        return
    _print_tables(result, table.attrs.get("test_source", ""))
    out.print(f"written: {output}/compare.csv, compare.json, compare.png", highlight=False)


def _budget(b: Any) -> str:
    return "all" if b == "all" else f"{b}/class"


def _print_tables(result: dict[str, Any], test_source: str) -> None:
    view = Table(title=f"Test accuracy, mean ± std over seeds ({result['test_rows']} test examples: {test_source})")
    view.add_column("strategy")
    n_train = {s["budget"]: s["n_train"] for s in result["summary"]}
    for b in result["budgets"]:
        view.add_column(f"{_budget(b)} (n={n_train.get(b, '?')})", justify="right")
    cells = {(s["strategy"], s["budget"]): s for s in result["summary"]}
    for strategy in dict.fromkeys(s["strategy"] for s in result["summary"]):
        row = [strategy]
        for b in result["budgets"]:
            s = cells.get((strategy, b))
            row.append("-" if s is None else f"{s['mean']:.3f} ± {s['std']:.3f}  {s['seconds']:.1f}s")
        view.add_row(*row)
    out.print(view)
    for g in result["gain"]:
        if g["points"] is None:
            continue
        ratio = g["seconds_best"] / g["seconds_scratch"] if g["seconds_scratch"] else float("nan")
        out.print(
            f"{_budget(g['budget'])} (n={n_train[g['budget']]}): {g['best_strategy']} {g['best']:.3f} vs scratch "
            f"{g['scratch']:.3f} = [bold]{g['points']:+.1f} points[/]; training {g['seconds_best']:.1f}s vs "
            f"{g['seconds_scratch']:.1f}s ({ratio:.2f}x the time)",
            highlight=False,
        )
