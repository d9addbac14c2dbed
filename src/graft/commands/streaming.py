"""``graft predict … --output FILE`` at scale: inputs stream through decode → batch → model → writer in chunks, so
memory stays flat however many inputs there are; finished rows are appended (and flushed) to ``FILE.partial.jsonl``
after every chunk, so an interrupted run started again with the same command skips them; unreadable inputs are
skipped and reported; at the end ``FILE`` is written in its format in one atomic step."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import DataError
from .predicting import predictions, write_predictions

__all__ = ["stream_predictions"]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for s in range(0, len(items), size):
        yield items[s : s + size]


def _done_rows(partials: list[Path]) -> dict[str, dict[str, Any]]:
    """Rows already written by an earlier, interrupted run, or by the other processes (a half-written last line is
    ignored); unreadable inputs are rows with a ``skipped`` reason."""
    done: dict[str, dict[str, Any]] = {}
    for partial in partials:
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the run stopped
            done[str(row.get("input"))] = row
    return done


def stream_predictions(
    model: Any,
    groups: list[tuple[Any, list[str]]],
    output: Path,
    *,
    top_k: int = 3,
    chunk_size: int = 256,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Predict ``groups`` (from :func:`~graft.commands.predicting.discover_inputs`) chunk by chunk into ``output``.

    Under ``accelerate launch`` each process takes every n-th input and writes its own ``FILE.partial.<rank>.jsonl``;
    the main process merges them. Returns a summary: rows written, rows reused from an earlier run, inputs skipped as
    unreadable (with reasons). ``on_progress(done, total, skipped)`` is called after each chunk.
    """
    from ..estimators._fitting import process_state

    state = process_state(model.device)
    rank, world = int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))
    partial = output.with_name(output.name + (".partial.jsonl" if world == 1 else f".partial.{rank}.jsonl"))
    output.parent.mkdir(parents=True, exist_ok=True)
    done = _done_rows(sorted(output.parent.glob(output.name + ".partial*.jsonl")))
    reused = sum("skipped" not in r for r in done.values())
    total = sum(len(shown) for _, shown in groups)
    try:
        _predict_chunks(model, groups, partial, done, top_k, chunk_size, rank, world, total, on_progress)
    except BaseException:
        if partial.exists() and partial.stat().st_size == 0:  # nothing to resume from: leave nothing behind
            partial.unlink()
        raise
    state.wait_for_everyone()
    summary: dict[str, Any] = {"output": str(output), "reused": reused}
    if state.is_main_process:
        partials = sorted(output.parent.glob(output.name + ".partial*.jsonl"))
        done = _done_rows(partials)
        order = [name for _, shown in groups for name in shown]
        results = [done[n] for n in order if n in done and "skipped" not in done[n]]
        write_predictions(output, results)
        for p in partials:
            p.unlink(missing_ok=True)
        summary.update(rows=len(results), skipped=[r for r in done.values() if "skipped" in r])
    state.wait_for_everyone()
    return summary


def _predict_chunks(
    model: Any,
    groups: list[tuple[Any, list[str]]],
    partial: Path,
    done: dict[str, dict[str, Any]],
    top_k: int,
    chunk_size: int,
    rank: int,
    world: int,
    total: int,
    on_progress: Callable[[int, int, int], None] | None,
) -> None:
    """Append this process's share of the rows not yet ``done`` to ``partial``, one flushed chunk at a time."""
    position = 0
    with open(partial, "a", encoding="utf-8") as sink:
        for data, shown in groups:
            mine = [i for i, name in enumerate(shown) if name not in done and (position + i) % world == rank]
            position += len(shown)
            for rows in _chunks(mine, chunk_size):
                skipped: list[dict[str, str]] = []
                batch, names = _select(model, data, shown, rows, skipped)
                fresh = predictions(model, [(batch, names)], top_k) if names else []
                for row in fresh + skipped:
                    sink.write(json.dumps(row, default=str) + "\n")
                    done[str(row["input"])] = row
                sink.flush()
                os.fsync(sink.fileno())
                if on_progress is not None:
                    on_progress(len(done), total, sum("skipped" in r for r in done.values()))


def _select(
    model: Any, data: Any, shown: list[str], rows: list[int], skipped: list[dict[str, str]]
) -> tuple[Any, list]:
    """The model inputs of ``rows``; images are decoded here (unreadable ones reported in ``skipped`` and left out)."""
    if model.modality != "image":
        if isinstance(data, list):
            return [data[i] for i in rows], [shown[i] for i in rows]
        if hasattr(data, "iloc"):  # a table's rows
            return data.iloc[rows], [shown[i] for i in rows]
        return data.subset(rows), [shown[i] for i in rows]
    from ..data.images import load_images

    paths = [data[i] for i in rows]
    try:
        images = load_images(paths, short_side=model._preprocessing().resize_size, skip_invalid=True)
    except DataError as e:  # not one readable image in this chunk
        listed = {line[4:].partition(": ")[0]: line[4:].partition(": ")[2] for line in str(e).splitlines()[1:]}
        skipped += [{"input": p, "skipped": listed.get(str(p), "not a readable image")} for p in paths]
        return [], []
    skipped += [{"input": src, "skipped": reason} for src, reason in images.skipped]
    return list(images.images), list(images.sources)
