"""``graft train --budget``: validation accuracy and wall time of budgeted runs beside hand-chosen configurations.

Each run is a fresh ``graft train`` process with an empty embedding cache (``$GRAFT_CACHE_DIR``), so no run reuses
another's embeddings, and the wall time is measured outside the process (interpreter start-up included). For each
budget it prints what the run chose (backbone, strategy, learning rate, epochs), the validation accuracy, the wall
time and the overrun (wall time over the budget, in %; negative: under it), and the phases' times from
``graft.json`` (``"auto"``). With ``--hand``, the hand configurations run the same way (same train/val split, the
strategy's defaults) and the best of them is the bar: a budgeted run passes within one validation example of it.
The load average is printed: on a shared machine, other work slows every phase.

Usage (heavy: run one at a time, e.g. under ``flock /tmp/graft-bench.lock``):
    python benchmarks/budget.py [--data ../shared/datasets] [--budgets 1m,2m,5m]
        [--hand efficientnet_lite0:feature-extraction,efficientnet_lite2:feature-extraction,...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _graft() -> list[str]:
    """The ``graft`` console script beside this interpreter (so the budget's clock starts with the process)."""
    script = Path(sys.executable).parent / "graft"
    return [str(script)] if script.exists() else [sys.executable, "-m", "graft"]


def _train(args: list[str], run: Path) -> tuple[dict[str, Any] | None, float, str]:
    """``graft train ARGS -o RUN --json`` in a fresh process with an empty cache: (summary, wall seconds, error)."""
    cache = tempfile.mkdtemp(prefix="graft-budget-cache-")
    env = {**os.environ, "GRAFT_CACHE_DIR": cache, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*_graft(), "train", *args, "-o", str(run), "--json"], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        return None, wall, proc.stderr.strip()[-400:]
    return json.loads(proc.stdout), wall, ""


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets")
    ap.add_argument("--budgets", default="1m,2m,5m", help="comma-separated budgets (90s, 2m, ...)")
    ap.add_argument(
        "--hand",
        default="",
        help="hand configurations MODEL:STRATEGY,... run the same way (e.g. efficientnet_lite2:feature-extraction)",
    )
    args = ap.parse_args()
    from graft.selection.budget import parse_budget

    ants = args.data / "hymenoptera_data"
    split = [str(ants / "train"), "--val", str(ants / "val")]
    out = Path(tempfile.mkdtemp(prefix="graft-budget-runs-"))
    print(f"ants/bees: {ants}; runs in {out}; cpus {os.cpu_count()}; load average {_load()}", flush=True)

    hand: list[tuple[str, float, float]] = []
    for config in filter(None, args.hand.split(",")):
        model, strategy = config.split(":")
        summary, wall, error = _train([*split, "-m", model, "-s", strategy], out / f"hand-{model}-{strategy}")
        if summary is None:
            print(f"hand {config}: failed: {error}", flush=True)
            continue
        acc = summary["val"]["accuracy"]
        hand.append((config, acc, wall))
        print(f"hand   {config:45s} val acc {acc:.4f}  wall {wall:6.1f}s  load {_load()}", flush=True)

    rows = []
    for budget in filter(None, args.budgets.split(",")):
        seconds = parse_budget(budget)
        summary, wall, error = _train([*split, "--budget", budget], out / f"budget-{budget}")
        over = 100 * (wall - seconds) / seconds
        if summary is None:
            print(f"budget {budget}: failed after {wall:.1f}s ({over:+.1f}%): {error}", flush=True)
            continue
        auto = summary["auto"]
        chosen = {d["what"]: d["choice"] for d in auto["decisions"]}
        acc = summary["val"]["accuracy"]
        rows.append((budget, acc, wall, over))
        phases = " ".join(f"{k} {v:.1f}s" for k, v in auto["phases_s"].items())
        print(
            f"budget {budget:>4s}: {chosen['backbone']} {chosen['strategy']} lr {chosen['lr']:.2g} "
            f"epochs {chosen['epochs']} (ranked {','.join(chosen['candidates'])} on "
            f"{auto['decisions'][0]['evidence']['examples']} examples) | val acc {acc:.4f} | wall {wall:.1f}s "
            f"({over:+.1f}% of the budget; in-process {auto['spent_s']:.1f}s: {phases}) | load {_load()}",
            flush=True,
        )
    if hand and rows:
        config, best, _ = max(hand, key=lambda h: h[1])
        n_val = summary["n_val"] if summary else 153
        print(f"\nbest hand configuration: {config} {best:.4f}; bar: within one of {n_val} validation images")
        for budget, acc, _wall, over in rows:
            ok = acc >= best - 1 / n_val - 1e-9 and over <= 10.0
            print(
                f"  {budget:>4s}: {acc:.4f} ({(acc - best) * n_val:+.0f} images), overrun {over:+.1f}%: "
                f"{'pass' if ok else 'FAIL'}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
