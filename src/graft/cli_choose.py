"""``graft rank``: choose a backbone before training."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from ._cli_common import _fail, _print_json, out
from ._utils import check_writable
from .errors import ConfigError, GraftError

#: the formats the lr-find plot can be written in
PLOT_SUFFIXES = (".png", ".svg", ".pdf")

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command()(rank)
    app.command("lr-find")(lr_find)


def rank(
    data: Path = typer.Argument(..., help="Labelled data, as for `graft train` (image folder or CSV, text table)."),
    models: str = typer.Option(..., "--models", help="Comma-separated backbones (see `graft models`)."),
    score: str = typer.Option("logme", help="Sort by: logme, leep, nce, hscore or linear_probe."),
    max_examples: int = typer.Option(2000, help="Embed at most this many labelled examples (a stratified sample)."),
    task: str = typer.Option("auto", help="auto, image-classification or text-classification."),
    text_column: str | None = typer.Option(None, help="Text column of a table (default: auto-detected)."),
    label_column: str | None = typer.Option(None, help="Label column of a table (default: auto-detected)."),
    device: str = typer.Option("cpu", help="cpu, cuda, mps or auto."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write the rows as JSON (e.g. RUN/rank.json: `graft report` shows it)."
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the table as JSON."),
) -> None:
    """Score backbones on DATA without training them (transferability: LogME, LEEP, NCE, H-score, and a linear
    probe's held-out accuracy); embeddings are cached, so ranking the same data again takes a fraction of the time.

    Example: graft rank data/ants_bees --models efficientnet_lite0,efficientnet_lite1,efficientnet_lite2
    -o runs/ants/rank.json
    """
    from .selection import rank as rank_models

    try:
        if output is not None and output.suffix.lower() != ".json":
            raise ConfigError(f"--output writes JSON: give a .json file (e.g. rank.json), not '{output}'.")
        options = {k: v for k, v in (("text_column", text_column), ("label_column", label_column)) if v is not None}
        table = rank_models(
            data,
            [m.strip() for m in models.split(",") if m.strip()],
            task=task,
            score=score,
            max_examples=max_examples,
            device=device,
            verbose=not as_json,
            **options,
        )
    except GraftError as e:
        _fail(e)
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in table.to_dict("records")
    ]
    if output is not None:
        from ._utils import atomic_write_json

        atomic_write_json(output, rows)
    if as_json:
        _print_json({"score": score, "ranking": rows})
        return
    view = Table(title=f"Backbones for {data} (sorted by {score}; higher is better)")
    for col in table.columns:
        view.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        view.add_row(*("-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()))
    out.print(view)
    if any(v is None for r in rows for v in r.values()):
        out.print(
            "-: the score does not apply here (leep and nce need the backbone's own ImageNet classifier; "
            "linear_probe needs 2+ examples of every class for its held-out folds).",
            highlight=False,
        )
    best = rows[0]
    if best.get(score) is None:
        out.print(f"no backbone has a {score} score here; sort by another (--score logme).", highlight=False)
        return
    out.print(f"recommended: {best['model']} ({score} {best[score]:.4f}); then `graft train {data} -m {best['model']}`")


def lr_find(
    data: Path = typer.Argument(..., help="Labelled training data, as for `graft train`."),
    strategy: str = typer.Option("fine-tune", "--strategy", "-s", help="What trains: fine-tune, feature-extraction..."),
    model: str | None = typer.Option(None, "--model", "-m", help="Backbone (default efficientnet_lite0 / minilm)."),
    output: Path = typer.Option(Path("lr_find.png"), "--output", "-o", help="The plot of loss against learning rate."),
    steps: int = typer.Option(100, help="Training steps of the sweep (1e-7 to 1, exponentially)."),
    batch_size: int = typer.Option(32, help="Examples per step."),
    label_column: str | None = typer.Option(None, help="Label column of a table (default: auto-detected)."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the suggestion and the curve as JSON."),
) -> None:
    """Sweep the learning rate over a short run on a copy of the model and suggest one (fastai's lr_find); use it
    with `graft train --lr`, or let `lr="auto"` run it inside training.

    Example: graft lr-find data/ants_bees --strategy fine-tune -o lr.png
    """
    from .commands.training import make_estimator, resolve_task
    from .selection import lr_find as find

    try:
        if output.suffix.lower() not in PLOT_SUFFIXES:
            raise ConfigError(f"-o '{output}' must end in {', '.join(PLOT_SUFFIXES)} (the plot's format).")
        check_writable(output, "-o")
        task = resolve_task(data, "auto")
        est = make_estimator(
            task,
            model,
            strategy,
            image={},
            text={"label_column": label_column} if task == "text-classification" else {},
            tabular={"label_column": label_column},
            batch_size=batch_size,
            verbose=False,
        )
        result = find(est, str(data), steps=steps)
        result.plot(output)
    except GraftError as e:
        _fail(e)
    if as_json:
        _print_json({**result.to_dict(), "plot": str(output)})
        return
    out.print(f"suggested learning rate: {result.suggestion:.2e} ({result.reason}); plot: {output}", highlight=False)
    out.print(f"train with it: graft train {data} -s {strategy} --lr {result.suggestion:.1e} -o RUN", highlight=False)
