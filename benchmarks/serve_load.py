"""Load test of ``graft serve`` on 127.0.0.1 only: N concurrent clients for a fixed time, with and without
micro-batching; prints requests/s, p50/p99 latency and errors, and the single-request latency beside the raw model
time.

Usage:
    python benchmarks/serve_load.py [--run RUN] [--clients 16] [--seconds 30] [--image IMAGE]

Without ``--run`` a feature-extraction model of the embedded EfficientNet-Lite0 is trained on a few generated images
first (offline). Every request is one image (multipart). The server runs in a child process (uvicorn), bound to
127.0.0.1; the request loop is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train(root: Path) -> tuple[Path, bytes]:
    import numpy as np
    from PIL import Image

    import graft

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (24, 96, 96, 3), dtype=np.uint8)
    y = np.arange(24) % 2
    X[y == 1, :, :, 0] = 255  # a red channel tells the classes apart
    run = root / "run"
    graft.ImageClassifier("efficientnet_lite0", "feature-extraction", device="cpu", verbose=False, output_dir=run).fit(
        X, y
    )
    buf = io.BytesIO()
    Image.fromarray(X[0]).resize((320, 240)).save(buf, format="JPEG")
    return run, buf.getvalue()


async def _load(url: str, image: bytes, clients: int, seconds: float) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                r = await http.post(url + "predict", files={"file": ("x.jpg", image, "image/jpeg")})
                if r.status_code != 200:
                    errors += 1
                else:
                    latencies.append(time.perf_counter() - t0)
            except httpx.HTTPError:
                errors += 1

    t_start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - t_start


def _serve(run: Path, port: int, batching: bool, backend: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "graft", "serve", str(run), "--port", str(port), "--host", "127.0.0.1"]
    cmd += ["--backend", backend]
    if not batching:
        cmd.append("--no-batching")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))


def _raw_model_ms(run: Path, image: bytes, repeats: int = 50) -> tuple[float, float, float]:
    """Median times in this process, one image: decode + preprocessing, the eager PyTorch forward pass, and a raw
    onnxruntime session (the model exported with ``graft export``, no Graft in the loop)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from PIL import Image

    import graft
    from graft.data.images import load_images
    from graft.estimators.image import center_crop_batch
    from graft.export import export_model

    model = graft.load(run, device="cpu")
    pre = model._preprocessing()
    onnx = Path(tempfile.mkdtemp(prefix="graft-load-onnx-")) / "model.onnx"
    export_model(model, onnx, data=[Image.open(io.BytesIO(image))])
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    inputs = []
    decode, forward, raw = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        im = Image.open(io.BytesIO(image))
        inputs.append(center_crop_batch(load_images([im], short_side=pre.resize_size).images, pre))
        decode.append(time.perf_counter() - t0)
    for x in inputs:  # each measured in a loop of its own (torch's threads would slow onnxruntime's right after)
        t0 = time.perf_counter()
        session.run(None, {name: np.ascontiguousarray(x.numpy())})
        raw.append(time.perf_counter() - t0)
    with torch.no_grad():
        for x in inputs:
            t0 = time.perf_counter()
            model.model_(x)
            forward.append(time.perf_counter() - t0)
    return tuple(1000 * float(np.median(v)) for v in (decode, forward, raw))  # type: ignore[return-value]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=None)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--backend", default="torch", help="torch, onnxruntime or auto")
    args = ap.parse_args()
    os.environ.setdefault("GRAFT_CACHE_DIR", tempfile.mkdtemp(prefix="graft-load-"))
    root = Path(tempfile.mkdtemp(prefix="graft-load-run-"))
    run, image = (Path(args.run), None) if args.run else _train(root)
    if image is None:
        raise SystemExit("--run needs an image model and a sample image; leave --run out to generate both")
    decode_ms, forward_ms, raw_ms = _raw_model_ms(run, image)
    print(
        f"one image in-process: decode+preprocess {decode_ms:.1f} ms, eager forward {forward_ms:.1f} ms, "
        f"raw onnxruntime session {raw_ms:.1f} ms"
    )
    rows = []
    for batching in (True, False):
        port = _free_port()
        proc = _serve(run, port, batching, args.backend)
        try:
            url = f"http://127.0.0.1:{port}/"
            single, _, _ = asyncio.run(_load(url, image, 1, min(10.0, args.seconds)))
            lat, errors, wall = asyncio.run(_load(url, image, args.clients, args.seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
        rows.append((batching, len(lat) / wall, 1000 * q[49], 1000 * q[98], errors, 1000 * statistics.median(single)))
    print(f"\n{args.clients} clients for {args.seconds:.0f} s each, one image per request, backend {args.backend}")
    print(f"{'micro-batching':16s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} {'1 client p50':>13s}")
    for batching, rps, p50, p99, errors, single in rows:
        print(f"{'on' if batching else 'off':16s} {rps:8.1f} {p50:8.1f} {p99:8.1f} {errors:7d} {single:12.1f}")
    print(f"\nthroughput ratio on/off: {rows[0][1] / rows[1][1]:.2f}x")
    for batching, *_, single in rows:
        print(
            f"single-request p50 (micro-batching {'on' if batching else 'off'}) / (decode + raw onnxruntime session): "
            f"{single / (decode_ms + raw_ms):.2f}x; / (decode + eager forward): "
            f"{single / (decode_ms + forward_ms):.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
