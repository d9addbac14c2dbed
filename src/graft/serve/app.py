"""The HTTP app: ``POST /predict`` (image files as multipart, or JSON texts), ``GET /health``, ``GET /metadata``,
OpenAPI docs at ``/docs``, and a page at ``/`` to try the model.

Malformed input gets a 4xx answer with a JSON ``{"error": ...}`` naming the problem; the server keeps serving. Limits:
request body size, items per request, text length. With an API key (read from an environment variable), every route
but ``/health`` and ``/`` needs the header ``X-API-Key`` (or ``Authorization: Bearer``), compared in constant time.

Image files are decoded and resized in a small pool of threads, so the next requests are decoded while the model runs
the current micro-batch in its own thread. Each answer of ``/predict`` carries a ``Server-Timing`` header: milliseconds
spent reading the request, decoding, in the model's queue and pass, and in the app overall.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hmac
import io
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from ..errors import ConfigError, GraftError

__all__ = ["ServeConfig", "create_app"]


@dataclass
class ServeConfig:
    """Limits and behaviour of the server.

    Args:
        max_batch: most inputs in one forward pass (micro-batches of concurrent requests).
        max_wait_ms: how long the first request of a micro-batch waits for others; ``0`` with ``batching=False``
            runs every request on its own.
        batching: group concurrent requests into micro-batches.
        max_body_mb: largest request body.
        max_items: most images or texts in one request.
        max_text_chars: longest text.
        top_k: classes with probabilities in each answer (default; ``?top_k=`` overrides).
        api_key_env: name of the environment variable holding the API key (``None``: no key).
        model_threads: threads of one forward pass (PyTorch, onnxruntime, OpenVINO); ``None``: PyTorch's default
            (one per core).
        decode_threads: threads that decode and resize images beside the model (the next requests are decoded
            while the model runs the current micro-batch); 0: on the event loop. ``None``: 2 when the network runs
            through onnxruntime or OpenVINO, 0 with eager PyTorch (its OpenMP threads wait for each other at every
            layer, and busy decode threads beside them slowed a 2-core machine down several times).
    """

    max_batch: int = 32
    max_wait_ms: float = 5.0
    batching: bool = True
    max_body_mb: float = 10.0
    max_items: int = 64
    max_text_chars: int = 10_000
    top_k: int = 3
    api_key_env: str | None = None
    model_threads: int | None = None
    decode_threads: int | None = None

    def __post_init__(self) -> None:
        for name, least in (("model_threads", 1), ("decode_threads", 0)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ConfigError(f"{name} must be an integer of at least {least}; got {value!r}.")


class _Reject(Exception):
    """A request the server refuses: status code and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Guard:
    """Body-size limit (by ``Content-Length``) and API key, as plain ASGI middleware (cheaper per request than
    Starlette's ``BaseHTTPMiddleware``)."""

    def __init__(self, app: Any, *, limit: int, limit_mb: float, api_key: str | None) -> None:
        self.app, self.limit, self.limit_mb, self.api_key = app, limit, limit_mb, api_key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length")
        refusal: JSONResponse | None = None
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            refusal = JSONResponse({"error": f"request body over the {self.limit_mb:g} MB limit."}, status_code=413)
        elif self.api_key is not None and scope.get("path") not in ("/", "/health"):
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                refusal = JSONResponse({"error": "missing or wrong API key (header X-API-Key)."}, status_code=401)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _blank_image() -> Any:
    from PIL import Image

    return Image.new("RGB", (64, 64), (128, 128, 128))


def _decode_image(name: str, data: bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise _Reject(400, f"file '{name}' is empty.")
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise _Reject(400, f"file '{name}' is not an image Pillow can read ({type(e).__name__}).") from None
    return im


def _decoded(files: list[tuple[str, bytes]], short_side: int) -> list[tuple[Any, str]]:
    """``(RGB uint8 array resized for the model, name)`` of each image file of a request."""
    from ..data.dicom import is_dicom
    from ..data.image_decode import _decode_dicom_file, decode_pil
    from ..errors import DECODER_ERRORS

    out = []
    for name, data in files:
        try:
            if data and is_dicom(name, data):  # as graft predict reads it: windowed, MONOCHROME1 inverted, RGB
                decoded = _decode_dicom_file(data, "", short_side)
                if decoded.image is None:  # says why (multi-frame, no pixel data, ...), never quoting patient data
                    raise _Reject(400, f"file '{name}': {decoded.reason}")
                out.append((decoded.image, name))
                continue
            out.append((decode_pil(_decode_image(name, data), short_side), name))
        except MemoryError:
            raise
        except DECODER_ERRORS as e:
            raise _Reject(400, f"file '{name}' is not an image that can be read ({type(e).__name__}).") from None
    return out


def _image_set(items: list[tuple[Any, str]]) -> Any:
    """Decoded images as the model's input; they are not hashed (nothing is cached), so each gets a key of its own."""
    import secrets

    from ..data.images import ImageSet

    return ImageSet([a for a, _ in items], None, [n for _, n in items], [secrets.token_hex(16) for _ in items])


def create_app(
    run: str | Path, *, device: str = "cpu", config: ServeConfig | None = None, backend: str = "torch"
) -> Any:
    """A FastAPI app serving the bundle ``run``."""
    import asyncio

    from .. import __version__
    from ..commands.predicting import predictions, shown_pair
    from ..estimators import load
    from .batching import MicroBatcher

    cfg = config or ServeConfig()
    api_key = None
    if cfg.api_key_env is not None:
        api_key = os.environ.get(cfg.api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env {cfg.api_key_env}: that environment variable is not set or empty.")
    # the model is loaded, warmed up and run in one worker thread (see MicroBatcher)
    worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="graft-model")
    if cfg.model_threads is not None:  # before loading: onnxruntime and OpenVINO take PyTorch's thread count
        import torch

        worker.submit(torch.set_num_threads, cfg.model_threads).result()
    model = worker.submit(load, run, device=device, backend=backend).result()
    modality = model.modality if model.modality in ("image", "tabular") else "text"
    short_side = model._preprocessing().resize_size if modality == "image" else 0

    def run_batch(items: list[Any]) -> list[Any]:
        # images arrive decoded and resized (see _decoded): the model thread only crops, normalises and runs them
        shown = (
            [shown_pair(*t) if isinstance(t, tuple) else t for t in items]
            if modality == "text"
            else [f"input {i}" for i in range(len(items))]
        )
        data = {"tabular": _rows_frame, "image": _image_set}.get(modality, list)(items)
        return predictions(model, [(data, shown)], top_k=len(model.classes_))

    # one pass before the first request: builds the inference backend (an ONNX export for onnxruntime) and warms it
    columns = {c.name: c.kind for c in model.schema_.columns} if modality == "tabular" else {}
    if modality == "image":
        blank = io.BytesIO()
        _blank_image().save(blank, format="PNG")
        warm = _decoded([("warm-up", blank.getvalue())], short_side)
    else:
        text = ("warm-up", "warm-up") if getattr(model, "pairs_", None) else "warm-up"  # a sentence-pair model: a pair
        warm = {"text": [text], "tabular": [dict.fromkeys(columns)]}[modality]
    worker.submit(run_batch, warm).result()
    threads = cfg.decode_threads
    if threads is None:
        threads = 0 if getattr(model, "backend_used_", "torch") == "torch" else 2
    decoder = (
        concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="graft-decode")
        if modality == "image" and threads > 0
        else None
    )
    # without batching every request is one pass of its own (a batch "limit" of 1 never lets another join it)
    batcher = MicroBatcher(
        run_batch, cfg.max_batch if cfg.batching else 1, cfg.max_wait_ms / 1000 if cfg.batching else 0, worker
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()
        if decoder is not None:
            decoder.shutdown(wait=False)

    app = FastAPI(
        title="Graft model server", version=__version__, description=f"Serving {Path(run).name}.", lifespan=lifespan
    )
    app.state.batcher = batcher
    metadata = {
        "task": model.task,
        "modality": modality,
        "labels": [c.item() if hasattr(c, "item") else c for c in model.classes_],
        "backbone": model.manifest_.get("backbone"),
        "strategy": model.manifest_.get("strategy"),
        "metrics": (model.manifest_.get("metrics") or {}).get("val"),
        "graft_version": __version__,
        "limits": {"max_items": cfg.max_items, "max_body_mb": cfg.max_body_mb, "max_text_chars": cfg.max_text_chars},
    }
    if modality == "tabular":
        metadata["columns"] = columns
        metadata["decision"] = model.task_.state()["decision"]

    @app.exception_handler(_Reject)
    async def _rejected(request: Request, exc: _Reject) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"invalid request: {where}: {first.get('msg', 'malformed')}"}, status_code=422)

    @app.exception_handler(GraftError)
    async def _graft_error(request: Request, exc: GraftError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    app.add_middleware(_Guard, limit=int(cfg.max_body_mb * 1024 * 1024), limit_mb=cfg.max_body_mb, api_key=api_key)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        return metadata

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return resources.files("graft.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.post("/predict")
    async def predict(request: Request, top_k: int | None = None) -> JSONResponse:
        t0 = time.perf_counter()
        with batcher.arriving():  # a micro-batch being formed waits for this request (at most max_wait)
            items = await _read_inputs(request, modality, cfg, columns)
            t1 = time.perf_counter()
            if decoder is not None:  # image files: decoded beside the event loop and the model
                items = await asyncio.get_running_loop().run_in_executor(decoder, _decoded, items, short_side)
            elif modality == "image":
                items = _decoded(items, short_side)
        t2 = time.perf_counter()
        results = await batcher.submit(items)
        t3 = time.perf_counter()
        k = max(1, top_k or cfg.top_k)
        for r in results:
            r.pop("input", None)
            if "top_k" in r:
                r["top_k"] = r["top_k"][:k]
        # plain JSON values: no response-model encoding pass
        response = JSONResponse({"predictions": results})
        # where the time went, in milliseconds (browsers' developer tools show it; benchmarks read it)
        spans = {"read": t1 - t0, "decode": t2 - t1, "model": t3 - t2, "app": time.perf_counter() - t0}
        response.headers["Server-Timing"] = ", ".join(f"{name};dur={1000 * sec:.2f}" for name, sec in spans.items())
        return response

    return app


async def _read_inputs(request: Any, modality: str, cfg: ServeConfig, columns: dict[str, str]) -> list[Any]:
    """The request's image files (multipart ``file`` fields, as ``(name, bytes)``) or texts (JSON ``{"texts": [...]}``
    or ``{"text": "..."}``, with ``"text_pairs": [...]`` for a sentence-pair model: ``(text, pair)`` tuples) or table
    rows."""
    import json

    body = await request.body()
    if len(body) > cfg.max_body_mb * 1024 * 1024:
        raise _Reject(413, f"request body over the {cfg.max_body_mb:g} MB limit.")
    kind = request.headers.get("content-type", "")
    if modality == "image":
        if not kind.startswith("multipart/form-data"):
            raise _Reject(415, "send images as multipart/form-data file fields (curl -F file=@photo.jpg).")
        form = await request.form()
        files = [v for _, v in form.multi_items() if hasattr(v, "read")]
        if not files:
            raise _Reject(400, "no file fields in the form; send curl -F file=@photo.jpg.")
        if len(files) > cfg.max_items:
            raise _Reject(413, f"{len(files)} images in one request; the limit is {cfg.max_items}.")
        return [(f.filename or f"file {i}", await f.read()) for i, f in enumerate(files)]
    example = '{"rows": [{"column": value, ...}]}' if modality == "tabular" else '{"texts": ["..."]}'
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _Reject(400, f"the body is not JSON ({e}); send {example}.") from None
    if modality == "tabular":
        return _rows_of(payload, cfg, columns)
    texts = _listed(
        payload, "texts", "text", str, "strings", '{"texts": ["...", ...]} or {"text": "..."}', cfg.max_items
    )
    pairs = payload.get("text_pairs") if isinstance(payload, dict) else None
    if pairs is not None and (
        not isinstance(pairs, list) or len(pairs) != len(texts) or not all(isinstance(t, str) for t in pairs)
    ):
        raise _Reject(422, f"text_pairs must be a list of {len(texts)} strings, one second text per text.")
    for i, t in enumerate(texts + (pairs or [])):
        if not t.strip():
            raise _Reject(422, f"text {i} is empty." if i < len(texts) else f"text_pairs {i - len(texts)} is empty.")
        if len(t) > cfg.max_text_chars:
            raise _Reject(413, f"text {i} has {len(t)} characters; the limit is {cfg.max_text_chars}.")
    return texts if pairs is None else list(zip(texts, pairs, strict=True))


def _listed(payload: Any, plural: str, single: str, kind: type, what: str, example: str, limit: int) -> list[Any]:
    """``payload[plural]`` (a non-empty list of ``kind``, at most ``limit``) or ``[payload[single]]``."""
    if not isinstance(payload, dict) or (plural not in payload and single not in payload):
        raise _Reject(422, f"send a JSON object {example}.")
    items = payload.get(plural, [payload.get(single)])
    if plural not in payload and isinstance(payload.get(single), list):
        raise _Reject(422, f'"{single}" takes one; send a list as "{plural}": {example}.')
    if not isinstance(items, list) or not items or not all(isinstance(v, kind) for v in items):
        raise _Reject(422, f'"{plural}" must be a non-empty list of {what}.')
    if len(items) > limit:
        raise _Reject(413, f"{len(items)} {plural} in one request; the limit is {limit}.")
    return items


def _rows_of(payload: Any, cfg: ServeConfig, columns: dict[str, str]) -> list[dict[str, Any]]:
    """The table rows of a request: ``{"rows": [{column: value}, ...]}`` or ``{"row": {...}}``, each with every
    column the model reads (``null`` for a missing value), numbers where the model reads numbers."""
    example = '{"rows": [{"column": value, ...}, ...]} or {"row": {...}}'
    rows = _listed(payload, "rows", "row", dict, 'objects {"column": value}', example, cfg.max_items)
    for i, r in enumerate(rows):
        missing = [c for c in columns if c not in r]
        if missing:
            raise _Reject(422, f"row {i} lacks column(s) {', '.join(missing[:10])} (send null for a missing value).")
        for name, kind in columns.items():
            v = r[name]
            if v is not None and not isinstance(v, (str, int, float, bool)):
                raise _Reject(422, f"row {i}: column '{name}' must be a number, a string, true/false or null.")
            if kind == "numeric" and isinstance(v, bool):
                raise _Reject(422, f"row {i}: column '{name}' takes a number; got {str(v).lower()}.")
            if kind == "numeric" and isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    raise _Reject(422, f"row {i}: column '{name}' takes a number; got {v!r}.") from None
            if isinstance(v, float) and math.isinf(v):  # not JSON, though Python's json reads it (NaN: missing)
                raise _Reject(
                    422, f"row {i}: column '{name}' is {v}; send a finite number, or null for a missing value."
                )
    return rows


def _rows_frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)
