"""``graft report``: the self-contained report.html of a run folder, optionally after scoring it on labelled data."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..evaluation.run_report import RunReport, write_run_report

__all__ = ["report_run"]


def report_run(
    run: Path,
    output: Path | None = None,
    *,
    data: Path | None = None,
    device: str | None = None,
    backend: str | None = None,
) -> tuple[RunReport, dict[str, object] | None]:
    """Write the report of ``run``; return it (with its metrics) and what was scored (``None`` without ``data``).

    Without ``data`` the report shows what the run saved (validation metrics, curves, plots, choices, rank and
    compare results) and goes to ``output`` or ``RUN/report.html``. With ``data`` the run is first scored on it as
    ``graft evaluate`` does; the report then goes to ``output`` or, with its plots, to a new
    ``RUN/evaluation/<data>-<split>/report.html``.

    Example:
        >>> report, _ = report_run(Path("runs/ants"), data=Path("data/ants/test"))  # doctest: +SKIP
    """
    if data is None:
        return write_run_report(run, output), None
    from .predicting import score_run

    if output is None:
        scored = score_run(run, data, device=device, backend=backend)
        return write_run_report(run, scored.folder / "report.html", scored=scored), scored.scored
    with tempfile.TemporaryDirectory(prefix="graft-report-") as tmp:  # the page embeds the plots
        scored = score_run(run, data, Path(tmp), device=device, backend=backend)
        report = write_run_report(run, output, scored=scored)
    return report, scored.scored
