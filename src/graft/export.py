"""Export a fitted model to ONNX or TorchScript, with its preprocessing written beside it and a parity check.

The exported network maps tensors to logits: images ``pixel_values (N, 3, S, S)`` (resized, centre-cropped,
normalised); texts ``input_ids``, ``attention_mask`` (and ``token_type_ids``) ``(N, L)``; token tagging the same plus
``shape_ids`` when the model adds casing features, giving ``(N, L, C)``; vectors ``features (N, F)`` (standardised).
Batch and sequence axes are dynamic. ``<file>.json`` beside the model holds what a consumer needs to reproduce the
inputs and read the outputs (image size, resize/crop, mean/std; tokenizer folder and max length; label names;
multi-label thresholds; the IOB2 transitions allowed when decoding tags). The parity check runs both the PyTorch
model and the exported one on real inputs and reports the largest probability difference and the top-1 agreement.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._utils import atomic_write_json
from .errors import ConfigError
from .inference.backends import NamedInputs, export_example

__all__ = ["FORMATS", "export_model", "parity", "sidecar", "describe_parity"]

FORMATS = ("onnx", "torchscript")


def _named(est: Any, inputs: Any) -> tuple[dict[str, torch.Tensor], bool]:
    """A batch as named, contiguous tensors (``pixel_values`` / ``features`` for single-tensor models), and whether
    the model takes a dict."""
    if isinstance(inputs, dict):
        return {k: v.contiguous() for k, v in inputs.items()}, True
    return {"pixel_values" if est.modality == "image" else "features": inputs.contiguous()}, False


def _example(est: Any, data: Any, n: int) -> tuple[dict[str, torch.Tensor], bool]:
    """Model inputs for the first ``n`` rows of ``data`` (one batch), and whether the model takes a dict."""
    _, inputs = next(iter(est._batches(data, list(range(min(n, len(data)))))))
    named, as_dict = _named(est, inputs)
    return export_example(named), as_dict


def sidecar(est: Any, names: list[str], fmt: str, path: Path) -> dict[str, Any]:
    """What a consumer needs besides the network (written to ``<path>.json``)."""
    from .tasks.multilabel import MultiLabel
    from .tasks.tagging import TokenTagging

    info: dict[str, Any] = {
        "format": fmt,
        "model": path.name,
        "task": est.task,
        "labels": [c.item() if isinstance(c, np.generic) else c for c in est.classes_],
        "inputs": names,
        "output": "logits",
        "probabilities": "sigmoid" if isinstance(est.task_, MultiLabel) else "softmax",
        "backbone": est.backbone_.spec,
    }
    if isinstance(est.task_, MultiLabel):
        info["thresholds"] = [float(t) for t in est.task_._thresholds(len(est.classes_))]
    if isinstance(est.task_, TokenTagging):
        from .tasks.token_classification import iob2_constraints

        allowed, start = iob2_constraints([str(c) for c in est.classes_])
        info["decoding"] = {
            "allowed_transitions": allowed.tolist(),
            "allowed_start": start.tolist(),
            "first_subtoken": True,
        }
    if est.modality == "image":
        pre = est._preprocessing()
        info["image"] = {
            **pre.to_dict(),
            "resize_shortest_side": pre.resize_size,
            "center_crop": pre.input_size,
            "scale": 1 / 255,
            "layout": "NCHW RGB",
        }
    elif est.modality == "tabular":
        # the float matrix TableSchema writes: standardised numbers (missing: median, then an indicator when the
        # training data had gaps), then category codes (0 missing, 1 unseen, 2 + index in "categories")
        info["table"] = est.schema_.to_dict()
        info["decision"] = est.task_.state()["decision"]
    elif est.modality == "embedding":
        info["features"] = {"standardize": bool(est.standardize)}
        if est.standardize:
            info["features"].update(mean=est.mean_.tolist(), scale=est.scale_.tolist())
    else:
        tok_dir = path.with_name(path.stem + ".tokenizer")
        est.backbone_.tokenizer.save_pretrained(str(tok_dir))
        info["text"] = {
            "tokenizer": tok_dir.name,
            "max_length": int(est.backbone_.spec.get("max_length", 128)),
            "case_features": bool(est.backbone_.spec.get("case_features", False)),
        }
        if info["text"]["case_features"]:
            info["text"]["shape_ids"] = (
                "int64 (N, L) beside input_ids: on each word's first sub-token its casing pattern, 0 elsewhere "
                "(special tokens, later sub-tokens, padding): 1 lower case, 2 Title case, 3 ALL CAPS, 4 a single "
                "capital, 5 mixed case, 6 contains a digit, 7 no letters (graft.tasks.token_classification.word_shape)"
            )
    return info


def _run_exported(fmt: str, path: Path, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        wanted = [i.name for i in session.get_inputs()]
        return session.run(None, {k: inputs[k].numpy() for k in wanted})[0]  # type: ignore[no-any-return]
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(*inputs.values()).float().numpy()  # type: ignore[no-any-return]


def parity(est: Any, fmt: str, path: Path, data: Any, *, batch_size: int = 16) -> dict[str, Any]:
    """Compare the exported model with the PyTorch one on every row of ``data``, batch by batch (the batches have
    other sizes and lengths than the export example): the largest absolute difference of probabilities and the
    share of rows (tokens, for tagging) whose top-1 class agrees."""
    model = est.model_.eval().to("cpu")
    worst, agree, total = 0.0, 0, 0
    for _, inputs in est._batches(data, list(range(len(data))), batch_size):
        named, _ = _named(est, inputs)
        with torch.no_grad():
            ref = model(named if isinstance(inputs, dict) else inputs).float().numpy()
        got = _run_exported(fmt, path, named)
        mask = named["attention_mask"].numpy().astype(bool) if ref.ndim == 3 else np.ones(ref.shape[0], bool)
        p_ref, p_got = _probabilities(est, ref), _probabilities(est, got)
        worst = max(worst, float(np.abs(p_ref - p_got)[mask].max()))
        agree += int((p_ref.argmax(-1) == p_got.argmax(-1))[mask].sum())
        total += int(mask.sum())
    return {"max_abs_prob_diff": worst, "top1_agreement": agree / max(total, 1), "compared": total}


def _probabilities(est: Any, logits: np.ndarray) -> np.ndarray:
    from .tasks.base import sigmoid, softmax_rows
    from .tasks.multilabel import MultiLabel

    return sigmoid(logits) if isinstance(est.task_, MultiLabel) else softmax_rows(logits)


#: the file extensions of each format
EXTENSIONS = {"onnx": (".onnx",), "torchscript": (".pt", ".ts")}


def export_format(path: str | Path, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` when its extension fits it, else the one its extension names.

    Raises:
        ConfigError: an unknown format, or an extension that is not the format's (or names none).
    """
    suffix = Path(path).suffix.lower()
    if fmt is None:
        fmt = next((f for f, exts in EXTENSIONS.items() if suffix in exts), None)
        if fmt is None:
            raise ConfigError(f"cannot tell the format of '{path}': name it .onnx (ONNX) or .pt (TorchScript).")
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}; got '{fmt}'.")
    if suffix not in EXTENSIONS[fmt]:
        raise ConfigError(
            f"{fmt} files end in {' or '.join(EXTENSIONS[fmt])}; got '{path}'. Rename the output, or choose the "
            "format its name says."
        )
    return fmt


def export_model(est: Any, path: str | Path, *, fmt: str | None = None, data: Any = None, check_rows: int = 64) -> dict:
    """Write ``est`` (fitted) as ``fmt`` to ``path`` with ``<path>.json`` beside it; return the parity report.

    Args:
        est: a fitted estimator (``graft.load(run)``).
        path: the model file (``.onnx``, or ``.pt`` / ``.ts`` for TorchScript).
        fmt: ``onnx`` or ``torchscript``; ``None``: the one ``path``'s extension names.
        data: real inputs for the example and the parity check (any input the estimator reads); default: the
            training data recorded in the bundle, when its path still exists.
        check_rows: how many rows of ``data`` the parity check compares.

    Raises:
        ConfigError: an unknown format or one that does not fit the extension (:func:`export_format`), or no data
            for the parity check.
    """
    fmt = export_format(path, fmt)
    path = Path(path)
    if data is None:
        data = (getattr(est, "data_", None) or {}).get("train")
        if data is None or not Path(data).exists():
            raise ConfigError(
                "the parity check needs real inputs: give data (CLI: --data PATH); the training data recorded in the "
                "bundle is not available."
            )
    read = est._read(data, None, what="input")[0]
    read = read.subset(range(min(check_rows, len(read))))
    est.model_.eval().to("cpu")
    inputs, as_dict = _example(est, read, 4)
    names = list(inputs)
    wrapper = NamedInputs(est.model_, names, as_dict).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "onnx":
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=4096)
        shapes = {k: ({0: batch, 1: seq} if v.dim() == 2 and as_dict else {0: batch}) for k, v in inputs.items()}
        import warnings

        # the exporter reports its steps on stdout, and warns when axes share a name (input_ids and attention_mask
        # share batch and sequence by design)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used")
            program = torch.onnx.export(
                wrapper,
                tuple(inputs.values()),
                dynamo=True,
                input_names=names,
                output_names=["logits"],
                dynamic_shapes={"tensors": tuple(shapes.values())},
            )
        program.save(str(tmp))
    else:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            # shape checks of the traced code are recorded as constants; the parity check below runs other batch
            # sizes and lengths to show the trace generalises
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(wrapper, tuple(inputs.values()), strict=False)
        traced.save(str(tmp))
    tmp.replace(path)
    info = sidecar(est, names, fmt, path)
    report = parity(est, fmt, path, read)
    info["parity"] = report
    atomic_write_json(path.with_name(path.name + ".json"), info)
    return {"path": str(path), "format": fmt, "inputs": names, **report}


def describe_parity(report: dict[str, Any]) -> str:
    """One line: whether the exported model agrees with the PyTorch one, and by how much."""
    ok = report["top1_agreement"] == 1.0 and report["max_abs_prob_diff"] <= 1e-4
    what = "tokens" if "shape_ids" in report["inputs"] else "inputs"
    verdict = "[green]parity ok[/]" if ok else "[yellow]parity differs[/]"
    return (
        f"{verdict}: max |Δprob| {report['max_abs_prob_diff']:.2e}, "
        f"top-1 agreement {100 * report['top1_agreement']:.1f}% over {report['compared']} {what}"
    )
