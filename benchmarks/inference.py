"""Inference speed per backend: the embedded EfficientNet-Lite0 (images/s) and MiniLM (sentences/s) as frozen
feature extractors through Graft with ``backend="torch"``, ``"onnxruntime"``, ``"openvino"`` (when installed) and
``"auto"``, beside a raw onnxruntime session on the same exported network and inputs.

Usage:
    python benchmarks/inference.py [--images 512] [--texts 1024] [--repeats 3]

Inputs are generated (random 224 px images; sentences of 8-40 words), already decoded: the numbers are the network's
throughput with Graft's batching around it (batches of 64), median of ``--repeats`` passes after one warm-up pass
(which also exports the ONNX model and, for auto, times the backends once).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from typing import Any


def _rate(fn: Any, n: int, repeats: int) -> float:
    fn()  # warm-up: export, session creation, auto's one-time timing
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--texts", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ["GRAFT_CACHE_DIR"] = tempfile.mkdtemp(prefix="graft-infer-")

    import numpy as np
    import onnxruntime as ort
    import torch

    import graft
    from graft._utils import tune_allocator
    from graft.inference.backends import _model_key
    from graft.training.predict import to_device

    tune_allocator()  # as graft's own commands do: no page-fault storm on large activation buffers
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 255, (args.images, 256, 256, 3), dtype=np.uint8))
    words = [
        "the",
        "a",
        "film",
        "story",
        "camera",
        "screen",
        "battery",
        "great",
        "awful",
        "boring",
        "plot",
        "acting",
        "sound",
        "price",
        "fast",
        "slow",
    ]
    texts = [" ".join(rng.choice(words, rng.integers(8, 41))) for _ in range(args.texts)]
    backends = ["torch", "onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") else []) + ["auto"]
    if "openvino" in backends:
        import openvino

        print(f"openvino {openvino.__version__}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, onnxruntime {ort.__version__}")
    results = []
    for kind, cls, name, data in (
        ("images", graft.ImageClassifier, "efficientnet_lite0", images),
        ("sentences", graft.TextClassifier, "minilm", texts),
    ):
        rates: dict[str, float] = {}
        for backend in backends:
            est = cls(name, "feature-extraction", device="cpu", verbose=False, backend=backend)
            est.backbone_ = est._build_backbone()
            est.strategy_ = est._strategy()
            fit = est._read(data, None, what="input")[0]
            rows = list(range(len(fit)))
            rates[backend] = _rate(lambda e=est, f=fit, r=rows: e._embed_uncached(f, r), len(rows), args.repeats)
            if backend == "auto":
                rates[f"auto ({est.backend_used_})"] = rates.pop("auto")
            if backend == "onnxruntime":  # the same exported network in a bare session, on the same batches
                module = est.backbone_.module
                _, example = next(iter(est._batches(fit, rows[:8])))
                path = next((graft._utils.cache_root() / "onnx").glob(f"{_model_key(module, example)}.onnx"))
                options = ort.SessionOptions()
                options.intra_op_num_threads = torch.get_num_threads()
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                names = [i.name for i in session.get_inputs()]
                batches = [b for _, b in est._batches(fit, rows)]

                def raw(s: Any = session, bs: list = batches, ns: list = names) -> None:
                    for b in bs:
                        b = to_device(b, torch.device("cpu"))
                        feed = {k: v.contiguous().numpy() for k, v in b.items()} if isinstance(b, dict) else None
                        s.run(None, feed if feed is not None else {ns[0]: b.contiguous().numpy()})

                rates["raw onnxruntime session"] = _rate(raw, len(rows), args.repeats)
        results.append((kind, rates))
    for kind, rates in results:
        best = max(v for k, v in rates.items() if not k.startswith("raw"))
        print(f"\n{kind}/s (batches of 64):")
        for k, v in rates.items():
            print(f"  {k:28s} {v:8.1f}   {v / best:5.2f}x of the fastest Graft backend")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
