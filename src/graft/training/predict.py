"""The one inference loop: batches through a frozen module on its device, in eval mode, without gradients.

Every estimator's embedding, prediction and per-epoch validation passes go through :func:`predict_batches`
(beside :func:`~graft.training.loop.run_loop` for training); export and serving reuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["predict_batches", "to_device", "device_of", "gather_rows"]


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or the tensors of a dict / tuple / list, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def device_of(module: nn.Module) -> torch.device:
    """The device of the module's first parameter (or buffer); the CPU for a module without tensors."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def _prepare(module: nn.Module, device: torch.device, channels_last: bool) -> None:
    """Eval mode, on ``device``, NHWC weights when asked; each step only when needed (a walk over every tensor of a
    large network costs milliseconds, which a single-image request notices)."""
    if any(m.training for m in module.modules()):
        module.eval()
    if device_of(module) != device or any(t.device != device for t in module.buffers()):
        module.to(device)
    if channels_last and not all(
        p.is_contiguous(memory_format=torch.channels_last) for p in module.parameters() if p.dim() == 4
    ):
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def predict_batches(
    module: nn.Module,
    batches: Iterable[tuple[Sequence[int], Any]],
    *,
    total: int,
    device: torch.device | None = None,
    autocast: Callable[[], Any] | None = None,
    forward: Callable[[nn.Module, Any], torch.Tensor] | None = None,
    channels_last: bool = False,
    verbose: bool = False,
    what: str = "predicting",
    runner: Callable[[Any], torch.Tensor] | None = None,
) -> Iterator[tuple[Sequence[int], np.ndarray]]:
    """Run ``module`` over ``batches`` of ``(row indices, inputs)``; yield ``(row indices, float32 outputs)``.

    The module is moved to ``device`` (default: where it is), put in eval mode, and its training flag restored
    afterwards; no gradients are computed (``no_grad``, not ``inference_mode``, so the module's tensors stay usable
    for training afterwards).

    Args:
        module: the network (backbone, head, or both).
        batches: ``(indices, inputs)`` pairs; inputs a tensor or a dict of tensors.
        total: how many rows the batches hold (for the progress bar).
        device: where to run.
        autocast: a mixed-precision context factory (e.g. the training loop's); ``None`` runs in the module's dtype.
        forward: ``forward(module, inputs) -> outputs`` instead of ``module(inputs)`` (e.g. flip test-time
            augmentation).
        channels_last: NHWC memory format for the module and image inputs (faster convnets on CPU).
        verbose: a progress bar on stderr for long passes.
        what: the progress bar's label.
        runner: runs the network instead of the module (another backend, e.g. an onnxruntime session).
    """
    from .loop import _progress

    device = device or device_of(module)
    was_training = module.training
    if runner is None:  # another backend runs the network: the module is not touched
        _prepare(module, device, channels_last)
    progress = _progress(verbose)
    task = progress.add_task(what, total=total, loss="") if progress else None
    try:
        if progress:
            progress.start()
        with torch.no_grad():
            for idx, inputs in batches:
                x = to_device(inputs, device)
                call = runner or module
                with autocast() if autocast else nullcontext():
                    out = forward(call, x) if forward else call(x)
                yield idx, out.float().cpu().numpy()
                if progress and task is not None:
                    progress.update(task, advance=len(idx))
    finally:
        if progress:
            progress.stop()
        if runner is None and any(m.training != was_training for m in module.modules()):
            module.train(was_training)


def gather_rows(pieces: Iterable[tuple[Sequence[int], np.ndarray]], n: int) -> np.ndarray:
    """Put batched outputs back in row order: ``(n, ...)`` float32 (``(0, 0)`` when ``n`` is 0)."""
    out: np.ndarray | None = None
    for idx, z in pieces:
        if out is None:
            out = np.empty((n, *z.shape[1:]), np.float32)
        out[np.asarray(idx, dtype=np.int64)] = z
    return out if out is not None else np.zeros((0, 0), np.float32)
