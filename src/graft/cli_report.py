"""``graft report``: regenerate the self-contained report.html of a run (or of a `graft compare` folder)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._cli_common import _fail, _print_json, err, out
from ._utils import check_writable
from .errors import GraftError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command()(report)


def report(
    run: Path = typer.Argument(..., help="Run folder / bundle, or a folder written by `graft compare`."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The .html file (default: RUN/report.html; with --data a new RUN/evaluation/...)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Score the run on this labelled data first, as `graft evaluate` does."
    ),
    device: str | None = typer.Option(None, help="With --data: auto, cpu, cuda, ..."),
    backend: str = typer.Option("torch", help="With --data: how the network runs, as for `graft evaluate --backend`."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the report's path and sections as JSON."),
) -> None:
    """Write the self-contained report.html of a run from what it saved: metrics, training curves, plots, the most
    confidently wrong examples, and the Choices / Rank / Compare results kept in the folder. Sections the run
    cannot fill say so.

    Example: graft report runs/ants;  graft report runs/ants --data data/ants/test -o ants-test.html
    """
    from .commands.reporting import report_run

    try:
        if output is not None:
            check_writable(output, "-o")
        result, scored = report_run(run, output, data=data, device=device, backend=backend)
    except GraftError as e:
        _fail(e)
    if scored is not None and "warning" in scored:
        err.print(f"[yellow]warning:[/] {scored['warning']}", highlight=False)
    if as_json:
        _print_json({**result.to_dict(), **({"scored": scored, "metrics": result.metrics} if scored else {})})
        return
    for note in result.notes:
        err.print(f"[dim]note:[/] {note}", highlight=False)
    out.print(f"report: {result.path} ({len(result.sections)} sections: {', '.join(result.sections)})", highlight=False)
