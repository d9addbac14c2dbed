"""Load test of ``graft serve`` on 127.0.0.1 only: N concurrent clients for a fixed time, with and without
micro-batching; prints requests/s, p50/p99 latency and errors, and the single-request latency beside the raw model
time.

Usage:
    python benchmarks/serve_load.py [--run RUN] [--clients 16] [--seconds 30] [--backend openvino]
        [--model-threads N] [--decode-threads N] [--max-wait-ms MS] [--batching both|on|off]

The one-client latency is measured three ways: with the httpx client of the load test, with a bare keep-alive socket
client (the request bytes built once: what the client costs is left out), and inside the app (the ``app`` span of
the ``Server-Timing`` header: from the routed request to the answer, without HTTP parsing).

Without ``--run`` a feature-extraction model of the embedded EfficientNet-Lite0 is trained on a few generated images
first (offline). Every request is one image (multipart). The server runs in a child process (uvicorn), bound to
127.0.0.1; the request loop is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
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


def _app_ms(header: str) -> float:
    """The ``app`` span of a ``Server-Timing`` header, in ms (NaN when absent)."""
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "app":
            return float(dur)
    return float("nan")


def _socket_client(port: int, image: bytes, seconds: float) -> list[float]:
    """One client on one keep-alive connection, the request bytes built once: latencies in seconds."""
    boundary = "graftbench"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()
    latencies = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            sock.sendall(head + body)
            status = reader.readline()
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            if b" 200 " not in status:
                raise SystemExit(f"the server answered {status!r}")
            latencies.append(time.perf_counter() - t0)
    return latencies


async def _load(
    url: str, image: bytes, clients: int, seconds: float, app_ms: list[float] | None = None
) -> tuple[list[float], int, float]:
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
                    if app_ms is not None:
                        app_ms.append(_app_ms(r.headers.get("server-timing", "")))
            except httpx.HTTPError:
                errors += 1

    t_start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - t_start


def _serve(run: Path, port: int, batching: bool, backend: str, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "graft", "serve", str(run), "--port", str(port), "--host", "127.0.0.1"]
    cmd += ["--backend", backend, *extra]
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


def _raw_model_ms(run: Path, image: bytes, repeats: int = 50) -> tuple[float, float, float, float | None]:
    """Median times in this process, one image: decode + preprocessing, the eager PyTorch forward pass, a raw
    onnxruntime session and (when installed) a raw OpenVINO compiled model in fp32 (the model exported with
    ``graft export``, no Graft in the loop)."""
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
    ov_ms = None
    if importlib.util.find_spec("openvino") is not None:
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        request = ov.Core().compile_model(str(onnx), "CPU", config).create_infer_request()
        request.infer({0: np.ascontiguousarray(inputs[0].numpy())})  # warm-up
        times = []
        for x in inputs:
            t0 = time.perf_counter()
            request.infer({0: np.ascontiguousarray(x.numpy())})
            times.append(time.perf_counter() - t0)
        ov_ms = 1000 * float(np.median(times))
    decode_ms, forward_ms, raw_ms = (1000 * float(np.median(v)) for v in (decode, forward, raw))
    return decode_ms, forward_ms, raw_ms, ov_ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=None)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--backend", default="torch", help="torch, onnxruntime, openvino or auto")
    ap.add_argument("--model-threads", type=int, default=None, help="graft serve --model-threads")
    ap.add_argument("--decode-threads", type=int, default=None, help="graft serve --decode-threads")
    ap.add_argument("--max-wait-ms", type=float, default=None, help="graft serve --max-wait-ms")
    ap.add_argument("--batching", choices=("both", "on", "off"), default="both", help="which servers to load")
    args = ap.parse_args()
    options = (("model-threads", args.model_threads), ("decode-threads", args.decode_threads))
    extra = [f"--{k}={v}" for k, v in (*options, ("max-wait-ms", args.max_wait_ms)) if v is not None]
    os.environ.setdefault("GRAFT_CACHE_DIR", tempfile.mkdtemp(prefix="graft-load-"))
    root = Path(tempfile.mkdtemp(prefix="graft-load-run-"))
    run, image = (Path(args.run), None) if args.run else _train(root)
    if image is None:
        raise SystemExit("--run needs an image model and a sample image; leave --run out to generate both")
    decode_ms, forward_ms, raw_ms, ov_ms = _raw_model_ms(run, image)
    print(
        f"one image in-process: decode+preprocess {decode_ms:.1f} ms, eager forward {forward_ms:.1f} ms, "
        f"raw onnxruntime session {raw_ms:.1f} ms"
        + (f", raw OpenVINO compiled model {ov_ms:.1f} ms" if ov_ms is not None else "")
    )
    rows = []
    for batching in {"both": (True, False), "on": (True,), "off": (False,)}[args.batching]:
        port = _free_port()
        proc = _serve(run, port, batching, args.backend, extra)
        try:
            url = f"http://127.0.0.1:{port}/"
            app_ms: list[float] = []
            single, _, _ = asyncio.run(_load(url, image, 1, min(10.0, args.seconds), app_ms))
            bare = _socket_client(port, image, min(10.0, args.seconds))
            lat, errors, wall = asyncio.run(_load(url, image, args.clients, args.seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
        ones = [1000 * statistics.median(v) for v in (single, bare)] + [statistics.median(app_ms)]
        rows.append((batching, len(lat) / wall, 1000 * q[49], 1000 * q[98], errors, *ones))
    print(f"\n{args.clients} clients for {args.seconds:.0f} s each, one image per request, backend {args.backend}")
    print(f"server options: {' '.join(extra) or '(defaults)'}")
    print(
        f"{'micro-batching':16s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}   one client p50 ms: "
        "httpx / bare socket / in app"
    )
    for batching, rps, p50, p99, errors, single, bare, app in rows:
        print(
            f"{'on' if batching else 'off':16s} {rps:8.1f} {p50:8.1f} {p99:8.1f} {errors:7d}   "
            f"{single:6.1f} / {bare:6.1f} / {app:6.1f}"
        )
    if len(rows) == 2:
        print(f"\nthroughput ratio on/off: {rows[0][1] / rows[1][1]:.2f}x")
    bases = {"decode + raw onnxruntime session": raw_ms, "decode + eager forward": forward_ms}
    if ov_ms is not None:
        bases["decode + raw OpenVINO"] = ov_ms
    for batching, *_, single, bare, app in rows:
        print(f"one-client p50 with micro-batching {'on' if batching else 'off'}, as a multiple of:")
        for name, ms in bases.items():
            base = decode_ms + ms
            print(f"  {name:34s} httpx {single / base:.2f}x, bare socket {bare / base:.2f}x, in app {app / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
