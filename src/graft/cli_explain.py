"""``graft explain``: Grad-CAM overlays of where an image model looked."""

from __future__ import annotations

from pathlib import Path

import typer

from ._cli_common import _fail, _print_json, err, out
from .errors import ConfigError, GraftError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command()(explain)


def explain(
    run: Path = typer.Argument(..., help="Run directory / bundle of an image model."),
    images: list[Path] = typer.Argument(..., help="Image files (PNG, JPEG, TIFF, DICOM, ...) or folders of them."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The overlay PNG (one image), or a folder of <name>_cam.png (several)."
    ),
    target: str | None = typer.Option(None, help="Explain this class instead of each image's predicted class."),
    layer: str | None = typer.Option(
        None, help="Module of the model whose feature map is weighed (default: the backbone's last feature map)."
    ),
    device: str | None = typer.Option(None, help="auto, cpu, cuda, ..."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print what was written as JSON."),
) -> None:
    """Write Grad-CAM overlays: the image with a heat map of the regions that raised the class's score.

    Example: graft explain runs/cxr scan.dcm -o cam.png;  graft explain runs/cxr scans/ -o cams/
    """
    from .data.image_folders import list_images
    from .estimators import load

    try:
        model = load(run, device=device)
        if model.modality != "image":
            raise ConfigError(f"graft explain needs an image model; '{run}' is a {model.task} model.")
        paths = [p for item in images for p in (list_images(item) if item.is_dir() else [str(item)])]
        exp = model.explain(paths, target=_label(model, target), layer=layer)
        single = len(paths) == 1 and output.suffix.lower() == ".png"
        if single:
            from .evaluation.saliency import save_overlay

            written = [save_overlay(output, exp.images[0], exp.maps[0])]
        else:
            if output.suffix.lower() == ".png":
                raise ConfigError(f"{len(paths)} images give several overlays: give a folder as -o, not '{output}'.")
            written = exp.save(output)
    except (GraftError, OSError) as e:
        _fail(e)
    rows = [
        {"input": src, "label": str(lab), "probability": round(p, 4), "explained": str(t), "overlay": str(w)}
        for src, lab, p, t, w in zip(exp.sources, exp.labels, exp.probabilities, exp.targets, written, strict=True)
    ]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        what = f"[bold]{r['label']}[/] ({r['probability']:.3f}), explained {r['explained']}"
        out.print(f"{r['input']}: {what} -> {r['overlay']}", highlight=False)
    err.print("red/yellow: regions that raised the class's score; blue: little effect.", highlight=False)


def _label(model: object, target: str | None) -> object:
    """The model's class whose text is ``target`` (labels may be ints)."""
    if target is None:
        return None
    for c in model.classes_:  # type: ignore[attr-defined]
        if str(c) == target:
            return c
    return target  # unknown: explain_images names the known labels
