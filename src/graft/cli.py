"""The ``graft`` command: a thin layer that turns arguments into library calls and renders the results.

Heavy libraries (torch, timm) are imported inside the commands, so ``graft --help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ._cli_common import _fail, _print_json, err, out
from ._utils import check_writable
from .cli_adaptation import register as _register_adaptation
from .cli_choose import register as _register_choose
from .cli_compare import register as _register_compare
from .cli_deploy import register as _register_deploy
from .cli_explain import register as _register_explain
from .cli_report import register as _register_report
from .commands.training import make_estimator, parse_set, resolve_task
from .errors import ConfigError, GraftError

app = typer.Typer(
    name="graft",
    help="Adapt pretrained models to your small dataset, offline. Start with `graft demo`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


STRATEGY_HELP = (
    "fine-tune, feature-extraction, lora, few-shot (texts: contrastive pairs, then a head); with --target: "
    "source-only, dann, cdan, mcc, coral, mmd, adabn, self-training."
)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"graft {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, metavar="", help="Print the version and exit."
    ),
) -> None:
    """Adapt pretrained models to your small dataset, offline. Start with `graft demo`."""


@app.command()
def models(
    pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. '*lite*'."),
    all_timm: bool = typer.Option(
        False, "--all", metavar="", help="Also list timm architectures (need internet or a local cache)."
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print JSON."),
) -> None:
    """List backbones; offline-ready ones can train with no network.

    Example: graft models --all '*resnet*'
    """
    from .backbones import backbone_rows

    rows, timm_rows = backbone_rows(pattern, all_timm)
    if as_json:
        _print_json({"embedded": rows, "timm": timm_rows})
        return
    if rows:  # a pattern for timm names may match no embedded model: then no empty table
        table = Table(title="Graft backbones")
        for col in ("name", "modality", "offline", "description"):
            table.add_column(col)
        for r in rows:
            offline = "[green]yes[/]" if r["offline"] else "[red]no[/]"
            table.add_row(r["name"], r["modality"], offline, r["description"])
        out.print(table)
    elif not all_timm:
        out.print(f"No Graft backbone matches '{pattern}' (graft models lists them all).", highlight=False)
    if all_timm:
        out.print(
            f"{len(timm_rows)} timm models with pretrained weights match '{pattern}' "
            "(download needs internet, or pass --weights FILE):"
        )
        out.print(", ".join(timm_rows[:200]) + (" ..." if len(timm_rows) > 200 else ""))
    else:
        out.print(
            "Any timm model name (`graft models --all '*resnet*'`) or Hugging Face model id / local folder "
            "(bert-base-uncased, gpt2) also works, with internet, a cached download, or --weights FILE."
        )


@app.command()
def train(
    ctx: typer.Context,
    data: Path = typer.Argument(
        ...,
        help="Images: a folder of class sub-folders (optionally train/ val/ test/) or a CSV of path,label. Text: a "
        "table (CSV, TSV, JSONL, Parquet) or a folder of train/dev/test tables. NER: a CoNLL file or folder.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Run directory (checkpoints, metrics, bundle)."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Backbone (see `graft models`); default efficientnet_lite0 / minilm."
    ),
    task: str = typer.Option("auto", help="auto, image-classification, text-classification, token-classification."),
    image_size: int | None = typer.Option(None, help="Image input size instead of the backbone's (e.g. 288)."),
    text_column: str | None = typer.Option(None, help="Text column of a table (default: auto-detected)."),
    text_pair_column: str | None = typer.Option(None, help="Second text column (sentence pairs)."),
    label_column: str | None = typer.Option(None, help="Label column of a table (default: auto-detected)."),
    max_length: int = typer.Option(128, help="Longest text in tokens (longer is truncated; NER uses windows)."),
    multi_label: bool = typer.Option(
        False, "--multi-label", metavar="", help="Texts have several labels (sigmoid outputs)."
    ),
    label_sep: str | None = typer.Option(None, help="Separator of multi-label cells (default: guessed)."),
    strategy: str = typer.Option("fine-tune", "--strategy", "-s", help=STRATEGY_HELP),
    target: Path | None = typer.Option(
        None, "--target", help="Unlabelled data of the domain to adapt to (with --strategy dann, cdan, coral, ...)."
    ),
    deep: bool = typer.Option(
        False,
        "--deep",
        metavar="",
        help="Domain adaptation: train the backbone too (slower; default adapts a head on embeddings).",
    ),
    set_params: list[str] | None = typer.Option(
        None,
        "--set",
        help="A strategy parameter, KEY=VALUE (repeatable): --set lr_decay=0.9 --set freeze_epochs=1, --set r=16.",
    ),
    val: Path | None = typer.Option(
        None,
        "--val",
        help="Validation folder/CSV (default: DATA's val/dev split, else a held-out 20% of images and tables, "
        "10% of texts).",
    ),
    epochs: int | None = typer.Option(None, help="Epochs (default: the strategy's)."),
    lr: float | None = typer.Option(None, help="Learning rate (default: the strategy's)."),
    batch_size: int = typer.Option(32, help="Images per step."),
    patience: int | None = typer.Option(None, help="Early-stopping patience in epochs."),
    precision: str = typer.Option("auto", help="auto, fp32, bf16 or fp16."),
    augment: str = typer.Option("default", help="default, strong or none."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    weights: Path | None = typer.Option(None, help="Local backbone checkpoint (.safetensors or .pth)."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", metavar="", help="Leave out unreadable images instead of failing."
    ),
    resume: bool = typer.Option(
        False, "--resume", metavar="", help="Continue an interrupted run from its last checkpoint."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", metavar="", help="Replace an existing run directory."),
    no_cache: bool = typer.Option(False, "--no-cache", metavar="", help="Do not read or write the embedding cache."),
    log_with: str | None = typer.Option(
        None, "--log-with", help="Also log every epoch to a tracker: tensorboard (then tensorboard --logdir RUN/logs)."
    ),
    cost: str | None = typer.Option(
        None, help="Tables, two classes: FP,FN costs; the threshold minimises expected cost (credit: --cost 1,5)."
    ),
    positive: str | None = typer.Option(
        None, help="Tables, two classes: the positive class (default: 1/true/yes/y, else the rarer class)."
    ),
    class_weight: str | None = typer.Option(
        None, help="Tables, images: 'balanced' weighs the loss by inverse class frequency."
    ),
    sampler: str | None = typer.Option(None, help="Images: 'balanced' draws each class about equally often."),
    group_column: str | None = typer.Option(
        None,
        help="Images from a CSV: the column of patient/study IDs; validation keeps each group whole and evaluation "
        "refuses groups seen in training (default: a column named patient_id, patient, subject_id, study_id, ...).",
    ),
    clinical: bool | None = typer.Option(
        None,
        "--clinical/--no-clinical",
        help="Images: per-class AUROC with bootstrap 95% CIs, sensitivity/specificity/PPV/NPV at a threshold chosen "
        "on validation (default: on with --group-column, --ordinal, --operating-point, --class-weight, --sampler).",
    ),
    operating_point: str | None = typer.Option(
        None, help="Images, clinical metrics: 'youden' or a target sensitivity such as 0.95."
    ),
    ordinal: bool = typer.Option(
        False, "--ordinal", metavar="", help="Images: the sorted classes are grades (soft ordinal labels, kappa)."
    ),
    calibration: str | None = typer.Option(None, help="Tables, two classes: platt or isotonic, fitted on validation."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the training summary as JSON."),
    budget: str | None = typer.Option(
        None, help="Wall-clock budget (90s, 2m, 1h): choose backbone, strategy, lr and epochs, and train within it."
    ),
) -> None:
    """Train a model on DATA and write the run (bundle, metrics.jsonl, plots) to -o RUN.

    Example: graft train data/ants_bees -o runs/ants --strategy feature-extraction;
    graft train data/ants_bees --budget 2m -o runs/auto
    """
    if budget is not None:
        from .cli_budget import train_with_budget

        return train_with_budget(ctx, budget)
    try:
        task = resolve_task(data, task, text_columns=bool(text_column or text_pair_column))
        common = dict(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            patience=patience,
            precision=precision,
            seed=seed,
            device=device,
            weights=None if weights is None else str(weights),
            cache=not no_cache,
            output_dir=output,
            overwrite=overwrite,
            verbose=not as_json,
            log_with=log_with,
        )
        clf = make_estimator(
            task,
            model,
            strategy,
            deep=deep,
            strategy_params=parse_set(set_params or []),
            image=dict(
                augment=augment,
                skip_invalid=skip_invalid,
                image_size=image_size,
                group_column=group_column,
                clinical=clinical,
                operating_point=_operating_point(operating_point),
                ordinal=ordinal,
                class_weight=class_weight,
                sampler=sampler,
            ),
            text=dict(
                max_length=max_length,
                text_column=text_column,
                text_pair_column=text_pair_column,
                label_column=label_column,
                multi_label=multi_label,
                label_sep=label_sep,
            ),
            tabular=dict(
                label_column=label_column,
                cost=_pair(cost, "--cost"),
                positive=positive,
                class_weight=class_weight,
                calibration=calibration,
            ),
            **common,
        )
        clf.fit(
            str(data),
            val=None if val is None else str(val),
            target=None if target is None else str(target),
            resume=resume,
        )
    except GraftError as e:
        _fail(e)
    except KeyboardInterrupt:
        hint = ""
        if (output / "checkpoints").is_dir():
            hint = f" Continue from the last finished epoch with the same command and --resume (-o {output})."
        err.print(f"[yellow]interrupted.[/]{hint}", highlight=False)
        raise typer.Exit(130) from None
    model = clf.backbone
    summary = {
        "run": str(output),
        "model": model,
        "strategy": strategy,
        "classes": [str(c) for c in clf.classes_],
        **clf.training_summary(),
        "skipped_invalid": len(getattr(clf, "skipped_", [])),
        "data": clf.data_,
    }
    if as_json:
        _print_json(summary)
        return
    v = summary["val"]
    if summary["skipped_invalid"]:
        err.print(f"[yellow]left out {summary['skipped_invalid']} unreadable image(s)[/]")
    line = f"[bold green]done[/] in {summary['fit_seconds']:.1f}s: {summary['n_train']} train / {summary['n_val']} val"
    if v:
        line += " | val " + ", ".join(f"{k.replace('_', ' ')} {x:.4f}" for k, x in v.items())
        line += f" (best epoch {summary['best_epoch']})"
    out.print(line, highlight=False)
    if clf.data_.get("columns"):
        read = ", ".join(f"{role} from column '{name}'" for role, name in clf.data_["columns"].items())
        out.print(f"read {read} (choose others with --text-column, --text-pair-column, --label-column)")
    what = {"image": "IMAGE", "tabular": "TABLE"}.get(clf.modality, '--text "..."')
    out.print(f"bundle: {output}/  (graft evaluate {output} DATA, graft predict {output} {what})")


def _operating_point(value: str | None) -> str | float | None:
    if value is None or value.strip().lower() == "youden":
        return None if value is None else "youden"
    try:
        return float(value)
    except ValueError:
        raise ConfigError(
            f"--operating-point takes 'youden' or a target sensitivity such as 0.95; got '{value}'."
        ) from None


def _pair(value: str | None, flag: str) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        a, b = (float(v) for v in value.split(","))
    except ValueError:
        raise ConfigError(f"{flag} takes two numbers, e.g. {flag} 1,5; got '{value}'.") from None
    return a, b


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run directory / bundle."),
    data: Path = typer.Argument(
        ...,
        help="Labelled data: image folder/CSV, text table, CoNLL file/folder "
        "(a folder's test split, else val, is used).",
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print metrics as JSON on stdout."),
    report: Path | None = typer.Option(
        None, help="Folder for report.html and confusion_matrix.png (default: a new RUN/evaluation/DATA-SPLIT)."
    ),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
    backend: str = typer.Option("torch", help="How the network runs: torch, onnxruntime, openvino or auto."),
    tta: bool = typer.Option(
        False, "--tta", metavar="", help="Images: average each image's and its horizontal mirror's outputs."
    ),
) -> None:
    """Score a trained model on labelled data: accuracy, balanced accuracy, macro-F1, per class, confusion
    matrix (entity precision/recall/F1 for NER).

    Example: graft evaluate runs/ants data/ants_bees/val --json
    """
    from .commands.predicting import evaluate_run, format_entities
    from .evaluation import format_metrics

    try:
        if report is not None:
            check_writable(report / "report.html", "--report")
        metrics, html, scored = evaluate_run(run, data, report=report, device=device, backend=backend, tta=tta)
    except GraftError as e:
        _fail(e)
    if "warning" in scored:
        err.print(f"[yellow]warning:[/] {scored['warning']}", highlight=False)
    if as_json:
        _print_json({**metrics, "scored": scored})
        return
    err.print(f"scored {data}" + (f" (split '{scored['split']}')" if scored["split"] else ""), highlight=False)
    if "per_type" in metrics:
        out.print(format_entities(metrics), highlight=False)
    else:
        out.print(format_metrics(metrics), highlight=False)
    out.print(f"report: {html}")


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run directory / bundle."),
    inputs: list[Path] = typer.Argument(
        None, help="Images, folders or a CSV of paths (image models); tables or files of lines (text models)."
    ),
    text: list[str] = typer.Option(None, "--text", "-t", help="Text to classify or tag (repeatable)."),
    text_pair: list[str] = typer.Option(
        None, "--text-pair", help="The second text of each --text, in order, for a sentence-pair model (repeatable)."
    ),
    top_k: int = typer.Option(3, help="How many classes with probabilities to show."),
    output: Path | None = typer.Option(
        None, "--output", help="Also write the predictions to .csv, .jsonl or .parquet."
    ),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print JSON on stdout."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
    batch_size: int = typer.Option(256, help="With --output: inputs decoded and predicted per chunk."),
    backend: str = typer.Option("torch", help="How the network runs: torch, onnxruntime, openvino or auto."),
    tta: bool = typer.Option(
        False, "--tta", metavar="", help="Images: average each image's and its horizontal mirror's outputs."
    ),
) -> None:
    """Predict labels with top-k probabilities (images, texts) or entity spans with character offsets (NER).

    Example: graft predict runs/ants photo.jpg --json;  graft predict runs/reviews reviews.csv --output preds.csv;
    graft predict runs/ner --text "Angela Merkel visited Paris";
    graft predict runs/nli --text "A man is sleeping" --text-pair "Nobody is awake"
    """
    from .commands.predicting import check_output_path, discover_inputs, predictions
    from .estimators import load

    try:
        if top_k < 1 or batch_size < 1:
            raise ConfigError(f"--top-k and --batch-size must be 1 or more; got {top_k} and {batch_size}.")
        check_output_path(output, inputs or [])
        model = load(run, device=device, backend=backend)
        if tta:
            model.strategy_.tta = True
        groups = discover_inputs(model, inputs, text, text_pair)
        if output is not None:
            return _predict_to_file(model, groups, output, top_k, as_json, batch_size)
        results = predictions(model, groups, top_k)
    except (GraftError, OSError, UnicodeDecodeError) as e:
        _fail(e)
    if as_json:
        _print_json(results)
        return
    for r in results:
        if "labels" in r:
            out.print(f"{r['input']}: [bold]{', '.join(map(str, r['labels'])) or '(none)'}[/]", highlight=False)
        elif "entities" in r:
            ents = ", ".join(f"{e['text']} [{e['label']}] {e['start']}-{e['end']}" for e in r["entities"]) or "(none)"
            out.print(f"{r['input']}: {ents}", highlight=False)
        else:
            alts = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in r["top_k"])
            out.print(f"{r['input']}: [bold]{r['label']}[/]  ({alts})", highlight=False)


def _predict_to_file(model: Any, groups: Any, output: Path, top_k: int, as_json: bool, batch_size: int) -> None:
    """Stream the predictions into ``output`` with a progress bar; an interrupted run resumes where it stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .commands.streaming import stream_predictions

    columns = (TextColumn("predicting"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("predict", total=None)
        summary = stream_predictions(
            model,
            groups,
            output,
            top_k=top_k,
            chunk_size=batch_size,
            on_progress=lambda done, total, _: bar.update(task, completed=done, total=total),
        )
    if "rows" not in summary:  # another process of accelerate launch: the main one reports
        return
    if as_json:
        _print_json(summary)
        return
    for row in summary["skipped"][:20]:
        err.print(f"[yellow]skipped[/] {row['input']}: {row['skipped']}", highlight=False)
    reused = f", {summary['reused']} from the interrupted run" if summary["reused"] else ""
    out.print(
        f"{summary['rows']} predictions{reused} -> {output}; {len(summary['skipped'])} unreadable", highlight=False
    )


@app.command()
def demo(
    output: Path = typer.Option(Path("runs/demo"), "--output", "-o", help="Run directory."),
    strategy: str = typer.Option("feature-extraction", "--strategy", "-s", help="Any strategy; " + STRATEGY_HELP),
    epochs: int | None = typer.Option(None, help="Epochs (default: the strategy's)."),
    limit: int = typer.Option(0, help="Use only the first N digit images (0 = all 1,797)."),
) -> None:
    """The whole flow offline on scikit-learn's 8x8 digits: train, evaluate, predict with efficientnet_lite0.

    Example: graft demo -o runs/demo
    """
    from .commands.demo import run_demo

    try:
        run_demo(output, strategy, epochs, limit, say=lambda line: out.print(line, highlight=False))
    except GraftError as e:
        _fail(e)


_register_adaptation(app)
_register_choose(app)
_register_compare(app)
_register_explain(app)
_register_report(app)
_register_deploy(app)


def main() -> None:
    """Console-script entry point."""
    import warnings

    from ._cli_common import show_warning
    from ._utils import tune_allocator

    warnings.showwarning = show_warning
    tune_allocator()
    app()


if __name__ == "__main__":
    main()
