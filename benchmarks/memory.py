"""Peak resident memory of Graft's main jobs, each in a fresh process (``graft`` CLI, empty embedding cache).

Jobs: feature extraction and fine-tuning on ants/bees (``hymenoptera_data``), feature extraction and fine-tuning on a
slice of SST-2 (``--sst2-rows``), and ``graft predict --output`` over a folder of images (``predict_scale.py`` builds
20,000 of them; give the folder with ``--predict-folder``). Prints the wall time and the peak RSS the kernel recorded
for that child (``os.wait4``'s ``ru_maxrss``).

Usage:
    python benchmarks/memory.py [--data ../shared/datasets] [--jobs ants-fe,ants-ft,sst2-fe,sst2-ft]
        [--sst2-rows 2000] [--predict-folder DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(name: str, args: list[str]) -> None:
    """Run ``graft ARGS`` in a new process and print its wall time and peak RSS."""
    env = {**os.environ, "GRAFT_CACHE_DIR": tempfile.mkdtemp(prefix="graft-mem-"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", "from graft.cli import main; main()", *args]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        tail = errors.read().strip()[-300:]
    seconds = time.perf_counter() - t0
    result = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {tail}"
    peak = f"{usage.ru_maxrss / 2**20:.2f} GB"
    print(f"{name:10s} {seconds:7.1f} s  peak RSS {peak}  {result}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets")
    ap.add_argument("--jobs", default="ants-fe,ants-ft,sst2-fe,sst2-ft")
    ap.add_argument("--sst2-rows", type=int, default=2000, help="training rows of SST-2 used")
    ap.add_argument("--predict-folder", type=Path, default=None, help="images for the predict job (predict-20k)")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="graft-mem-runs-"))
    ants = str(args.data / "hymenoptera_data")
    sst2 = out / "sst2.tsv"
    lines = (args.data / "sst2/train.tsv").read_text(encoding="utf-8").splitlines()
    sst2.write_text("\n".join(lines[: args.sst2_rows + 1]) + "\n", encoding="utf-8")
    jobs = {
        "ants-fe": ["train", ants, "-o", str(out / "ants-fe"), "--strategy", "feature-extraction"],
        "ants-ft": ["train", ants, "-o", str(out / "ants-ft")],
        "sst2-fe": ["train", str(sst2), "-o", str(out / "sst2-fe"), "--strategy", "feature-extraction"],
        "sst2-ft": ["train", str(sst2), "-o", str(out / "sst2-ft"), "--epochs", "1"],
    }
    wanted = [j for j in args.jobs.split(",") if j]
    if args.predict_folder is not None:
        if "ants-fe" not in wanted:
            wanted.insert(0, "ants-fe")
        jobs["predict-20k"] = [
            "predict",
            str(out / "ants-fe"),
            str(args.predict_folder),
            "--output",
            str(out / "p.csv"),
        ]
        wanted.append("predict-20k")
    print(f"{os.cpu_count()} CPU cores; runs under {out}")
    for name in wanted:
        _run(name, jobs[name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
