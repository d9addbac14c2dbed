"""``graft compare-adaptation``: every domain-adaptation method on one source/target pair, in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ._cli_common import _fail, _print_json, err, out
from .commands.adaptation import ADAPTATION_METHODS, COMPARE_COLUMNS
from .commands.training import resolve_task
from .errors import GraftError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("compare-adaptation")(compare_adaptation)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def compare_adaptation(
    source: Path = typer.Argument(..., help="Labelled source data (as for `graft train`)."),
    target: Path = typer.Option(..., "--target", help="Unlabelled data of the domain to adapt to."),
    target_test: Path | None = typer.Option(
        None, "--target-test", help="Labelled target data to measure the target accuracy of each method."
    ),
    methods: str = typer.Option(
        ",".join(ADAPTATION_METHODS), "--methods", help="Comma-separated domain-adaptation strategies to compare."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Backbone (see `graft models`); default efficientnet_lite0 / minilm."
    ),
    task: str = typer.Option("auto", help="auto, image-classification or text-classification."),
    val: Path | None = typer.Option(None, "--val", help="Source validation folder/CSV (default: a 20% split)."),
    epochs: int | None = typer.Option(None, help="Epochs of every method (default: each strategy's)."),
    deep: bool = typer.Option(
        False, "--deep", metavar="", help="Train the backbone with each method too (AdaBN excepted)."
    ),
    image_size: int | None = typer.Option(None, help="Image input size instead of the backbone's (e.g. 288)."),
    max_length: int = typer.Option(128, help="Longest text in tokens (longer is truncated)."),
    batch_size: int = typer.Option(32, help="Examples per step."),
    seed: int = typer.Option(0, help="Random seed (the same for every method)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    weights: Path | None = typer.Option(None, help="Local backbone checkpoint (.safetensors or .pth)."),
    runs: Path | None = typer.Option(
        None, "--runs", help="Also keep each method's run (bundle, metrics, domain_features.png) in RUNS/METHOD."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", metavar="", help="Replace existing run directories under --runs."
    ),
    output: Path | None = typer.Option(None, "--output", help="Also write the table to a .csv or .json file."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the rows as one JSON list."),
) -> None:
    """Train every domain-adaptation method on SOURCE with the same --target and compare them: target accuracy
    (with --target-test), A-distance before/after, the unsupervised selection signal at the best epoch.

    The frozen embeddings are computed once (the first method) and read from the embedding cache by the others.

    Example: graft compare-adaptation source/ --target target_unlabelled/ --target-test target_test/
    --methods source-only,dann,coral
    """
    from .commands.adaptation import compare_adaptation as compare
    from .commands.adaptation import parse_methods

    def done(row: dict[str, Any]) -> None:
        if not as_json:
            err.print(f"{row['method']}: done in {row['fit_seconds']:.1f}s", highlight=False)

    try:
        rows = compare(
            source,
            target,
            methods=parse_methods(methods),
            task=resolve_task(source, task),
            target_test=target_test,
            model=model,
            val=val,
            deep=deep,
            runs=runs,
            output=output,
            image=dict(image_size=image_size),
            text=dict(max_length=max_length),
            on_done=done,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            device=device,
            weights=None if weights is None else str(weights),
            overwrite=overwrite,
            verbose=False,
        )
    except GraftError as e:
        _fail(e)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"Domain adaptation: {source} -> {target}")
    columns = [c for c in COMPARE_COLUMNS if c[0] != "target_accuracy" or target_test is not None]
    for _, header, _ in columns:
        table.add_column(header, justify="left" if header == "method" else "right")
    for r in rows:
        table.add_row(*(_cell(r[key], fmt) for key, _, fmt in columns))
    out.print(table)
    scored = [r for r in rows if r["val_iwcv_loss"] is not None]
    ranges = [r.get("density_ratio_range") or [0.0, 1.0] for r in scored]
    if scored and all(lo == hi for lo, hi in ranges):
        out.print(
            "no pick without target labels: the importance weights are all equal (the domains do not overlap in the "
            "embeddings), so the IWCV loss is the plain source validation loss; compare on --target-test.",
            highlight=False,
        )
    elif scored:
        pick = min(scored, key=lambda r: r["val_iwcv_loss"])
        out.print(
            f"lowest importance-weighted validation loss (the pick without target labels): [bold]{pick['method']}[/]",
            highlight=False,
        )
    if output is not None:
        out.print(f"table: {output}")
