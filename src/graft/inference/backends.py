"""Running a frozen network: eager PyTorch, onnxruntime, OpenVINO, or ``auto``.

onnxruntime and OpenVINO run the network exported once to ONNX (cached under ``$GRAFT_CACHE_DIR/onnx``, keyed by its
weights and input layout); each is imported only when chosen (or by ``auto``, when installed). ``auto`` times eager
PyTorch and every installed backend on a probe batch and keeps the fastest whose outputs agree with eager fp32
(relative error at most ``TOLERANCE``); the choice is cached per machine, model and set of installed backends in
``$GRAFT_CACHE_DIR/backends.json``, so the micro-benchmark runs once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._cache import weights_fingerprint
from .._utils import atomic_write_json, cache_root
from ..errors import ConfigError

__all__ = ["BACKENDS", "TOLERANCE", "NamedInputs", "Runner", "export_example", "make_runner", "runner_for"]

BACKENDS = ("torch", "onnxruntime", "openvino", "auto")
#: the backends that run the exported ONNX network, and the packages each needs (onnxscript: the exporter)
_EXPORTED = {"onnxruntime": ("onnxruntime", "onnxscript", "onnx"), "openvino": ("openvino", "onnxscript", "onnx")}
#: largest relative error ``|out - eager| / |eager|`` (L2 over a probe batch) a backend may have to be chosen by auto
TOLERANCE = 1e-4

Runner = Callable[[Any], torch.Tensor]


class NamedInputs(nn.Module):
    """A module that takes a tensor or a dict of tensors, as a function of positional tensors (``names`` order)."""

    def __init__(self, model: nn.Module, names: list[str], as_dict: bool) -> None:
        super().__init__()
        self.model, self.names, self.as_dict = model, names, as_dict

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        if self.as_dict:
            return self.model(dict(zip(self.names, tensors)))
        return self.model(tensors[0])


def _named(inputs: Any) -> tuple[dict[str, torch.Tensor], bool]:
    if isinstance(inputs, dict):
        return {k: v.contiguous() for k, v in inputs.items()}, True
    return {"input": inputs.contiguous()}, False


def export_example(named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``named`` with at least two rows: the exporter fixes an axis of size 1 to a constant, so a one-row example
    would give a model that only takes batches of one."""
    if all(v.shape[0] > 1 for v in named.values()):
        return named
    return {k: torch.cat([v, v]).contiguous() if v.shape[0] == 1 else v for k, v in named.items()}


def export_onnx(module: nn.Module, example: Any, path: Path) -> None:
    """``module`` (eval mode, CPU) as ONNX with dynamic batch and, for dict inputs, sequence axes."""
    named, as_dict = _named(example)
    named = export_example(named)
    wrapper = NamedInputs(module, list(named), as_dict).eval()
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=4096)
    shapes = tuple({0: batch, 1: seq} if as_dict and v.dim() == 2 else {0: batch} for v in named.values())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter reports its steps on stdout
        program = torch.onnx.export(
            wrapper,
            tuple(named.values()),
            dynamo=True,
            input_names=list(named),
            output_names=["output"],
            dynamic_shapes={"tensors": shapes},
        )
    program.save(str(tmp))
    tmp.replace(path)


def _onnx_runner(path: Path) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]

    def run(inputs: Any) -> torch.Tensor:
        named = inputs if isinstance(inputs, dict) else {"input": inputs}
        # numpy makes the (NCHW) copy of a channels-last batch on this thread, without waking torch's pool
        feed = {k: np.ascontiguousarray(named[k].cpu().numpy()) for k in wanted}
        return torch.from_numpy(session.run(None, feed)[0])

    return run


def _openvino_runner(path: Path) -> Runner:
    """OpenVINO on the CPU, in fp32 (its CPU plugin would otherwise pick bf16 on CPUs that have it, which is not
    within ``TOLERANCE`` of eager fp32), with as many threads as PyTorch; one infer request per calling thread."""
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
    }
    compiled = ov.Core().compile_model(ov.Core().read_model(str(path)), "CPU", config)
    wanted = [i.get_any_name() for i in compiled.inputs]
    local = threading.local()

    def run(inputs: Any) -> torch.Tensor:
        named = inputs if isinstance(inputs, dict) else {"input": inputs}
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        feed = {k: np.ascontiguousarray(named[k].cpu().numpy()) for k in wanted}
        # the request's output buffer is reused by its next call: infer copies the outputs out (share_outputs=False)
        return torch.from_numpy(request.infer(feed, share_inputs=True)[0])

    return run


_RUNNERS: dict[str, Callable[[Path], Runner]] = {"onnxruntime": _onnx_runner, "openvino": _openvino_runner}


def _installed(backend: str) -> bool:
    """Whether the packages ``backend`` needs can be imported (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in _EXPORTED[backend])


def _model_key(module: nn.Module, example: Any) -> str:
    named, _ = _named(example)
    layout = [(k, v.dim(), str(v.dtype)) for k, v in named.items()]
    return hashlib.blake2b(f"{weights_fingerprint(module)}{layout}".encode(), digest_size=16).hexdigest()


def _machine() -> str:
    return f"{platform.machine()}-{platform.processor() or 'cpu'}-{os.cpu_count()}cpu-{torch.get_num_threads()}t"


def _rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12))


def make_runner(
    module: nn.Module, backend: str, example: Any, *, device: torch.device | None = None
) -> tuple[str, Runner | None]:
    """``(backend used, runner)``; the runner is ``None`` for eager PyTorch (the caller's module runs as it is).

    Args:
        module: the frozen network, in eval mode.
        backend: ``torch``, ``onnxruntime``, ``openvino`` or ``auto``.
        example: one batch of inputs (a tensor or a dict of tensors), for the export and the micro-benchmark.
        device: where the module runs; onnxruntime and OpenVINO are used on the CPU only (``auto`` keeps PyTorch
            elsewhere).

    Example:
        >>> used, runner = make_runner(net.eval(), "auto", torch.rand(8, 3, 224, 224))  # doctest: +SKIP
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got '{backend}'.")
    on_cpu = device is None or torch.device(device).type == "cpu"
    if backend == "torch" or (backend == "auto" and not on_cpu):
        return "torch", None
    if backend != "auto" and not _installed(backend):
        raise ConfigError(f"backend '{backend}' needs: pip install {' '.join(_EXPORTED[backend])} (or graft[deploy]).")
    candidates = [backend] if backend != "auto" else [b for b in _EXPORTED if _installed(b)]
    if not candidates:
        return "torch", None
    key = _model_key(module, example)
    path = cache_root() / "onnx" / f"{key}.onnx"
    if not path.exists():
        export_onnx(module.cpu().eval(), example, path)
    if backend != "auto":
        return backend, _RUNNERS[backend](path)
    return _choose(module, candidates, path, example, key)


def runner_for(est: Any, module: nn.Module, data: Any, rows: Any) -> Runner | None:
    """The runner of ``est.backend`` for the frozen ``module`` of a fitted estimator, made once per module (the
    first batch of ``rows`` of ``data`` is the example); sets ``est.backend_used_``."""
    if est.backend == "torch" or len(rows) == 0:
        if est.__dict__.get("backend_used_") != "torch":  # set once: predicting leaves the estimator as it was
            est.backend_used_ = "torch"
        return None
    runners = est.__dict__.setdefault("_runners", {})
    if id(module) not in runners:
        _, example = next(iter(est._batches(data, list(rows)[:8])))
        module.eval()
        runners[id(module)] = make_runner(module, est.backend, example, device=est._device())
    est.backend_used_ = runners[id(module)][0]
    return runners[id(module)][1]  # type: ignore[no-any-return]


def _choose(module: nn.Module, candidates: list[str], path: Path, example: Any, key: str) -> tuple[str, Runner | None]:
    """The fastest of eager PyTorch and the ``candidates`` on ``example`` among those that agree with eager fp32;
    timed once per machine, model and set of candidates (a later call builds only the chosen backend)."""
    store = cache_root() / "backends.json"
    decisions: dict[str, Any] = {}
    with contextlib.suppress(OSError, json.JSONDecodeError):
        decisions = json.loads(store.read_text())
    slot = f"{_machine()}/{key}/{'+'.join(candidates)}"
    entry = decisions.get(slot)
    if entry is not None and entry.get("backend") in ("torch", *candidates):
        pick = entry["backend"]
        return pick, (None if pick == "torch" else _RUNNERS[pick](path))
    runners = {name: _RUNNERS[name](path) for name in candidates}
    with torch.no_grad():
        eager = module(example).float()
        errors = {name: _rel_error(run(example), eager) for name, run in runners.items()}
        calls: dict[str, Callable[[], Any]] = {"torch": lambda: module(example)}
        calls.update({name: (lambda r=run: r(example)) for name, run in runners.items()})
        times = {}
        for name, fn in calls.items():
            fn()  # warm-up
            t0 = time.perf_counter()
            for _ in range(3):
                fn()
            times[name] = (time.perf_counter() - t0) / 3
    agreeing = ["torch", *(name for name in candidates if errors[name] <= TOLERANCE)]
    pick = min(agreeing, key=lambda name: times[name])
    decisions[slot] = {"backend": pick, "seconds_per_batch": times, "rel_error": errors}
    atomic_write_json(store, decisions)
    return pick, runners.get(pick)
