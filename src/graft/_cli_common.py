"""What the command modules share: consoles that never wrap piped output, errors without a traceback, JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.console import Console

__all__ = ["out", "err", "_fail", "_print_json", "show_warning"]


def _console(stderr: bool = False) -> Console:
    """Lines are never cut to the terminal's width when the output goes to a pipe or a file (80 columns otherwise
    split paths and summaries); in a terminal, long lines wrap as the terminal wraps them."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty()
    return Console(stderr=stderr, soft_wrap=True, width=100_000 if piped else None)


out = _console()
err = _console(stderr=True)


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False)
    raise typer.Exit(2)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


_PACKAGE = Path(__file__).resolve().parent


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """The command line's ``warnings.showwarning``: a warning raised by Graft reads ``warning: ...`` on stderr (its
    source line and Python's category say nothing to a user); other libraries' warnings keep Python's format."""
    try:
        ours = Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        ours = False
    if not ours:
        import warnings

        (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))
        return
    err.print(f"[yellow]warning:[/] {message}", highlight=False)
