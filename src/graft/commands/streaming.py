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


def _done_rows(partial: Path) -> dict[str, dict[str, Any]]:
    """Rows already written by an earlier, interrupted run (a half-written last line is ignored)."""
    done: dict[str, dict[str, Any]] = {}
    if partial.exists():
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

    Returns a summary: rows written, rows reused from an earlier run, inputs skipped as unreadable (with reasons).
    ``on_progress(done, total, skipped)`` is called after each chunk.
    """
    partial = output.with_name(output.name + ".partial.jsonl")
    done = _done_rows(partial)
    reused = len(done)
    total = sum(len(shown) for _, shown in groups)
    skipped: list[dict[str, str]] = []
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "a", encoding="utf-8") as sink:
        for data, shown in groups:
            todo = [i for i, name in enumerate(shown) if name not in done]
            for rows in _chunks(todo, chunk_size):
                batch, names = _select(model, data, shown, rows, skipped)
                fresh = predictions(model, [(batch, names)], top_k) if names else []
                for row in fresh:
                    sink.write(json.dumps(row, default=str) + "\n")
                    done[str(row["input"])] = row
                sink.flush()
                os.fsync(sink.fileno())
                if on_progress is not None:
                    on_progress(len(done) + len(skipped), total, len(skipped))
    order = [name for _, shown in groups for name in shown]
    results = [done[name] for name in order if name in done]
    write_predictions(output, results)
    partial.unlink(missing_ok=True)
    return {"output": str(output), "rows": len(results), "reused": reused, "skipped": skipped}


def _select(
    model: Any, data: Any, shown: list[str], rows: list[int], skipped: list[dict[str, str]]
) -> tuple[Any, list]:
    """The model inputs of ``rows``; images are decoded here (unreadable ones reported in ``skipped`` and left out)."""
    if model.modality != "image":
        if isinstance(data, list):
            return [data[i] for i in rows], [shown[i] for i in rows]
        return data.subset(rows), [shown[i] for i in rows]
    from ..data.images import load_images

    paths = [data[i] for i in rows]
    try:
        images = load_images(paths, short_side=model._preprocessing().resize_size, skip_invalid=True)
    except DataError as e:  # not one readable image in this chunk
        listed = {line[4:].partition(": ")[0]: line[4:].partition(": ")[2] for line in str(e).splitlines()[1:]}
        skipped += [{"input": p, "reason": listed.get(str(p), "not a readable image")} for p in paths]
        return [], []
    skipped += [{"input": src, "reason": reason} for src, reason in images.skipped]
    return list(images.images), list(images.sources)
