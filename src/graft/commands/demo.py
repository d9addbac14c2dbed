"""``graft demo``: the whole flow offline on scikit-learn's 8x8 digits — train, evaluate, predict."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError

__all__ = ["run_demo"]


DEMO_MIN_LIMIT = 40


def run_demo(output: Path, strategy: str, epochs: int | None, limit: int, say: Callable[[str], None]) -> None:
    """Train ``efficientnet_lite0`` on three quarters of the digits, evaluate on the rest, predict eight."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from ..estimators import load
    from ..estimators.image import ImageClassifier
    from ..evaluation import format_metrics

    if limit < 0 or 0 < limit < DEMO_MIN_LIMIT:
        raise ConfigError(
            f"--limit must be 0 (all 1,797 images) or at least {DEMO_MIN_LIMIT} (4 of each digit, so that the test "
            f"quarter holds every digit); got {limit}."
        )
    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # (N, 8, 8) grayscale
    labels = digits.target
    if limit:
        images, labels = images[:limit], labels[:limit]
    X_tr, X_te, y_tr, y_te = train_test_split(images, labels, test_size=0.25, stratify=labels, random_state=0)
    say(
        f"[bold]graft demo[/]: {len(X_tr)} train / {len(X_te)} test 8x8 digit images, "
        f"efficientnet_lite0 (ImageNet, offline), strategy {strategy}"
    )
    t0 = time.perf_counter()
    clf = ImageClassifier(
        "efficientnet_lite0", strategy, epochs=epochs, output_dir=output, overwrite=True, verbose=True
    )
    clf.fit(X_tr, y_tr)
    t_fit = time.perf_counter() - t0
    model = load(output)
    metrics = model.evaluate(X_te, y_te)
    pred = model.predict(X_te[:8])
    say(f"trained in {t_fit:.1f}s; test set ({len(X_te)} images):")
    say(format_metrics(metrics))
    say(f"predicted {list(map(int, pred))} for true {list(map(int, y_te[:8]))}")
    say(f"bundle: {output}/  — try `graft evaluate {output} ...` or the Python API `graft.load('{output}')`")
