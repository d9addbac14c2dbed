"""The ``graft`` command: a thin layer that turns arguments into library calls and renders the results.

Heavy libraries (torch, timm) are imported inside the commands, so ``graft --help`` is instant.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from .errors import GraftError

app = typer.Typer(
    name="graft",
    help="Adapt pretrained models to your small dataset, offline. Start with `graft demo`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

STRATEGY_HELP = "fine-tune (default) or feature-extraction."


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False)
    raise typer.Exit(2)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.command()
def models(
    pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. '*lite*'."),
    all_timm: bool = typer.Option(
        False, "--all", help="Also list timm architectures (need internet or a local cache)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List backbones; offline-ready ones can train with no network.

    Example: graft models --all '*resnet*'
    """
    from .backbones import list_backbones

    rows = [
        {"name": e.name, "modality": e.modality, "offline": e.offline(), "description": e.description}
        for e in list_backbones(pattern)
    ]
    timm_rows: list[str] = []
    if all_timm:
        from .backbones.timm import timm_names

        timm_rows = timm_names(pattern, pretrained=True)
    if as_json:
        _print_json({"embedded": rows, "timm": timm_rows})
        return
    table = Table(title="Graft backbones")
    for col in ("name", "modality", "offline", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["modality"], "[green]yes[/]" if r["offline"] else "[red]no[/]", r["description"])
    out.print(table)
    if all_timm:
        out.print(
            f"{len(timm_rows)} timm models with pretrained weights match '{pattern}' "
            "(download needs internet, or pass --weights FILE):"
        )
        out.print(", ".join(timm_rows[:200]) + (" ..." if len(timm_rows) > 200 else ""))
    else:
        out.print(
            "Any timm model name also works (`graft models --all '*resnet*'`), with internet, a cached "
            "download, or --weights FILE."
        )


@app.command()
def train(
    data: Path = typer.Argument(
        ..., help="Folder of class sub-folders (optionally train/ val/ test/), or a CSV of path,label."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Run directory (checkpoints, metrics, bundle)."),
    model: str = typer.Option("efficientnet_lite0", "--model", "-m", help="Backbone name (see `graft models`)."),
    strategy: str = typer.Option("fine-tune", "--strategy", "-s", help=STRATEGY_HELP),
    val: Path | None = typer.Option(None, "--val", help="Validation folder/CSV (default: DATA's val/ or a 20% split)."),
    epochs: int | None = typer.Option(None, help="Epochs (default: the strategy's)."),
    lr: float | None = typer.Option(None, help="Learning rate (default: the strategy's)."),
    batch_size: int = typer.Option(32, help="Images per step."),
    patience: int | None = typer.Option(None, help="Early-stopping patience in epochs."),
    precision: str = typer.Option("auto", help="auto, fp32, bf16 or fp16."),
    augment: str = typer.Option("default", help="default, strong or none."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    weights: Path | None = typer.Option(None, help="Local backbone checkpoint (.safetensors or .pth)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Leave out unreadable images instead of failing."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    as_json: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
) -> None:
    """Train a model on DATA and write the run (bundle, metrics.jsonl, plots) to -o RUN.

    Example: graft train data/ants_bees -o runs/ants --strategy feature-extraction
    """
    try:
        import graft

        clf = graft.ImageClassifier(
            model,
            strategy,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            patience=patience,
            precision=precision,
            augment=augment,
            seed=seed,
            device=device,
            weights=None if weights is None else str(weights),
            cache=not no_cache,
            skip_invalid=skip_invalid,
            output_dir=output,
            overwrite=overwrite,
            verbose=not as_json,
        )
        clf.fit(str(data), val=None if val is None else str(val), resume=resume)
    except GraftError as e:
        _fail(e)
    summary = {
        "run": str(output),
        "model": model,
        "strategy": strategy,
        "classes": [str(c) for c in clf.classes_],
        **clf.training_summary(),
        "skipped_invalid": len(getattr(clf, "skipped_", [])),
    }
    if as_json:
        _print_json(summary)
        return
    v = summary["val"]
    if summary["skipped_invalid"]:
        err.print(f"[yellow]left out {summary['skipped_invalid']} unreadable image(s)[/]")
    line = f"[bold green]done[/] in {summary['fit_seconds']:.1f}s: {summary['n_train']} train / {summary['n_val']} val"
    if v:
        line += (
            f" | val accuracy {v['accuracy']:.4f}, balanced {v['balanced_accuracy']:.4f}, "
            f"macro-F1 {v['macro_f1']:.4f} (best epoch {summary['best_epoch']})"
        )
    out.print(line, highlight=False)
    out.print(f"bundle: {output}/  (graft evaluate {output} DATA, graft predict {output} IMAGE)")


def _load(run: Path, device: str | None = None) -> Any:
    import graft

    return graft.load(run, device=device)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run directory / bundle."),
    data: Path = typer.Argument(..., help="Labelled folder or CSV (a folder's test/ split, else val/, is used)."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
    report: Path | None = typer.Option(
        None, help="Folder for report.html and confusion_matrix.png (default: RUN/evaluation)."
    ),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
) -> None:
    """Score a trained model on labelled data: accuracy, balanced accuracy, macro-F1, per class, confusion matrix.

    Example: graft evaluate runs/ants data/ants_bees/val --json
    """
    from .evaluation import format_metrics, plot_confusion_matrix, write_html_report

    try:
        t0 = time.perf_counter()
        model = _load(run, device)
        metrics = model.evaluate(str(data))
        seconds = time.perf_counter() - t0
        folder = report or (run / "evaluation")
        cm = plot_confusion_matrix(metrics["confusion_matrix"], metrics["labels"], folder / "confusion_matrix.png")
        html = write_html_report(
            folder / "report.html",
            title=f"Graft evaluation: {run.name}",
            metrics=metrics,
            info={
                "run": str(run),
                "data": str(data),
                "seconds": round(seconds, 2),
                "backbone": model.manifest_["backbone"],
                "strategy": model.manifest_["strategy"],
            },
            images={"Confusion matrix": cm},
        )
    except GraftError as e:
        _fail(e)
    if as_json:
        _print_json(metrics)
        return
    out.print(format_metrics(metrics), highlight=False)
    out.print(f"report: {html}")


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run directory / bundle."),
    inputs: list[Path] = typer.Argument(..., help="Image files or folders."),
    top_k: int = typer.Option(3, help="How many classes with probabilities to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
) -> None:
    """Predict labels (with top-k probabilities) for images.

    Example: graft predict runs/ants photo.jpg --json
    """
    try:
        model = _load(run, device)
        items: list[str] = []
        from .data.images import IMAGE_EXTENSIONS

        for p in inputs:
            if p.is_dir():
                items += sorted(
                    str(f) for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")
                )
            else:
                items.append(str(p))
        proba = model.predict_proba(items)
    except GraftError as e:
        _fail(e)
    k = max(1, min(top_k, proba.shape[1]))
    results = []
    for path, p in zip(items, proba):
        order = p.argsort()[::-1][:k]
        results.append(
            {
                "input": path,
                "label": model.classes_[order[0]].item(),
                "top_k": [{"label": model.classes_[i].item(), "probability": round(float(p[i]), 6)} for i in order],
            }
        )
    if as_json:
        _print_json(results)
        return
    for r in results:
        alts = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in r["top_k"])
        out.print(f"{r['input']}: [bold]{r['label']}[/]  ({alts})", highlight=False)


@app.command()
def demo(
    output: Path = typer.Option(Path("runs/demo"), "--output", "-o", help="Run directory."),
    strategy: str = typer.Option("feature-extraction", "--strategy", "-s", help=STRATEGY_HELP),
    epochs: int | None = typer.Option(None, help="Epochs (default: the strategy's)."),
    limit: int = typer.Option(0, help="Use only the first N digit images (0 = all 1,797)."),
) -> None:
    """The whole flow offline on scikit-learn's 8x8 digits: train, evaluate, predict with efficientnet_lite0.

    Example: graft demo -o runs/demo
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import graft

    from .evaluation import format_metrics

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # (N, 8, 8) grayscale
    labels = digits.target
    if limit:
        images, labels = images[:limit], labels[:limit]
    X_tr, X_te, y_tr, y_te = train_test_split(images, labels, test_size=0.25, stratify=labels, random_state=0)
    out.print(
        f"[bold]graft demo[/]: {len(X_tr)} train / {len(X_te)} test 8x8 digit images, "
        f"efficientnet_lite0 (ImageNet, offline), strategy {strategy}"
    )
    try:
        t0 = time.perf_counter()
        clf = graft.ImageClassifier(
            "efficientnet_lite0", strategy, epochs=epochs, output_dir=output, overwrite=True, verbose=True
        )
        clf.fit(X_tr, y_tr)
        t_fit = time.perf_counter() - t0
        model = graft.load(output)
        metrics = model.evaluate(X_te, y_te)
        pred = model.predict(X_te[:8])
    except GraftError as e:
        _fail(e)
    out.print(f"trained in {t_fit:.1f}s; test set ({len(X_te)} images):", highlight=False)
    out.print(format_metrics(metrics), highlight=False)
    out.print(f"predicted {list(map(int, pred))} for true {list(map(int, y_te[:8]))}", highlight=False)
    out.print(f"bundle: {output}/  — try `graft evaluate {output} ...` or the Python API `graft.load('{output}')`")


def main() -> None:
    """Console-script entry point."""
    from ._utils import tune_allocator

    tune_allocator()
    app()


if __name__ == "__main__":
    main()
