"""The ``graft`` commands that ship a model: ``export`` (ONNX / TorchScript, parity check) and ``serve`` (HTTP)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._cli_common import _fail, _print_json, out
from .errors import GraftError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command()(export)
    app.command()(serve)


def export(
    run: Path = typer.Argument(..., help="Run directory / bundle."),
    output: Path = typer.Option(..., "--output", "-o", help="The model file to write (.onnx, or .pt for TorchScript)."),
    fmt: str | None = typer.Option(None, "--format", help="onnx or torchscript (default: from the extension)."),
    data: Path | None = typer.Option(
        None, "--data", help="Real inputs for the parity check (default: the training data recorded in the bundle)."
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the parity report as JSON."),
) -> None:
    """Export a model to ONNX or TorchScript, with its preprocessing in OUTPUT.json, and check it against the
    PyTorch model on real inputs (largest probability difference, top-1 agreement).

    Example: graft export runs/ants --format onnx -o ants.onnx
    """
    from .estimators import load
    from .export import describe_parity, export_model

    try:
        report = export_model(load(run, device="cpu"), output, fmt=fmt, data=None if data is None else str(data))
    except GraftError as e:
        _fail(e)
    if as_json:
        _print_json(report)
        return
    out.print(describe_parity(report), highlight=False)
    out.print(f"{report.get('format', fmt)}: {output}  (preprocessing and labels: {output}.json)", highlight=False)


def serve(
    run: Path = typer.Argument(..., help="Run directory / bundle."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000, help="Port."),
    device: str = typer.Option("cpu", help="cpu, cuda, ..."),
    api_key_env: str | None = typer.Option(None, help="Environment variable holding an API key to require."),
    max_batch: int = typer.Option(32, help="Most inputs in one forward pass (concurrent requests are batched)."),
    max_wait_ms: float = typer.Option(5.0, help="How long a request waits for others to share its batch."),
    no_batching: bool = typer.Option(False, "--no-batching", metavar="", help="Run each request on its own."),
    backend: str = typer.Option("torch", help="How the network runs: torch, onnxruntime, openvino or auto."),
    model_threads: int | None = typer.Option(None, help="Threads of one forward pass (default: one per core)."),
    decode_threads: int | None = typer.Option(
        None, help="Threads decoding images while the model runs; 0: on the event loop (default: 2, 0 for torch)."
    ),
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, docs at /docs, a page at /.

    Example: graft serve runs/ants --port 8000 --backend openvino;  curl -F file=@ant.jpg localhost:8000/predict
    """
    import uvicorn

    from .serve import ServeConfig, create_app

    try:
        config = ServeConfig(
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            batching=not no_batching,
            api_key_env=api_key_env,
            model_threads=model_threads,
            decode_threads=decode_threads,
        )
        application = create_app(run, device=device, config=config, backend=backend)
    except GraftError as e:
        _fail(e)
    uvicorn.run(application, host=host, port=port, log_level="warning")
