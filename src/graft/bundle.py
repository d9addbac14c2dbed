"""The model bundle on disk: a directory with ``graft.json`` and ``model.safetensors``. Loading never unpickles.

This module is I/O only: it writes and reads a manifest (a JSON dict) and a flat dict of tensors, and knows no
estimator. ``graft.json`` records the format version, task, labels, backbone spec, preprocessing, head, strategy,
training configuration, metrics, library versions and the SHA-256 of every weight file; it is written last, so a
directory holding it is a complete bundle. Estimators turn themselves into these parts and back
(:mod:`graft.estimators.bundles`); :func:`graft.load` reads a bundle as a fitted estimator.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ._utils import atomic_directory, atomic_write_files, json_bytes, sha256_file
from .errors import BundleError, ConfigError

__all__ = ["write_bundle", "read_manifest", "read_tensors", "library_versions", "FORMAT", "FORMAT_VERSION"]

FORMAT = "graft-bundle"
FORMAT_VERSION = 1
MANIFEST = "graft.json"
WEIGHTS = "model.safetensors"
_DAMAGED = " The file is damaged or was edited: restore the bundle from a copy, or save the model again."


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("graft", "torch", "timm", "transformers", "peft", "safetensors", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _write_into(
    directory: Path, tensors: dict[str, torch.Tensor], manifest: dict[str, Any], files: Callable[[Path], None] | None
) -> None:
    from safetensors.torch import save

    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    weights = save(state, metadata={"format": FORMAT})
    extra = (files(directory) or []) if files is not None else []
    hashes = {WEIGHTS: hashlib.sha256(weights).hexdigest()}
    hashes.update({Path(f).relative_to(directory).as_posix(): sha256_file(f) for f in sorted(extra)})
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **manifest,
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": hashes,
    }
    # Both files are on disk before either replaces an older one (a full disk leaves an existing bundle as it was);
    # the manifest is renamed last, so a directory holding it is complete.
    atomic_write_files([(directory / WEIGHTS, weights), (directory / MANIFEST, json_bytes(full))])


def write_bundle(
    path: str | Path,
    tensors: dict[str, torch.Tensor],
    manifest: dict[str, Any],
    files: Callable[[Path], list[Path] | None] | None = None,
    *,
    overwrite: bool = False,
    in_place: bool = False,
) -> Path:
    """Write a bundle: ``tensors`` to ``model.safetensors``, ``files(directory)`` for extra files, then the manifest.

    Args:
        path: the bundle directory.
        tensors: the weights (moved to the CPU).
        manifest: the ``graft.json`` entries (format, versions, creation time and hashes are added).
        files: writes extra files (a tokenizer, a config) into the directory it is given and returns their paths;
            their SHA-256 go into the manifest beside the weights', and :func:`verify_files` checks them.
        overwrite: replace an existing directory (else a :class:`~graft.errors.ConfigError`).
        in_place: write into ``path`` as it is (a run directory with checkpoints and plots), each file atomically;
            otherwise the bundle is assembled in a temporary sibling folder and renamed into place.
    """
    path = Path(path)
    if in_place:
        _write_into(path, tensors, manifest, files)
        return path
    if path.exists() and not overwrite:
        raise ConfigError(f"'{path}' already exists. Pass overwrite=True or choose another path.")
    with atomic_directory(path, overwrite=overwrite) as tmp:
        _write_into(tmp, tensors, manifest, files)
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The checked ``graft.json`` of a bundle directory."""
    path = Path(path)
    mf = path / MANIFEST
    if not path.exists():
        raise BundleError(
            f"'{path}' does not exist. Give the run directory of `graft train -o RUN` or a folder written by "
            "`model.save(PATH)`."
        )
    if not mf.exists():
        hint = (
            " It has checkpoints/: the run did not finish; continue it with --resume."
            if (path / "checkpoints").exists()
            else ""
        )
        raise BundleError(f"'{path}' is not a Graft bundle: {MANIFEST} is missing.{hint}")
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad UTF-8, bad JSON, a 5000-digit integer
        raise BundleError(f"'{mf}' is not valid JSON ({e}).{_DAMAGED}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"'{mf}' is not a Graft bundle manifest.")
    try:
        version = int(manifest.get("format_version", 0))
    except (TypeError, ValueError, OverflowError):
        raise BundleError(
            f"'{mf}' has an invalid format_version ({str(manifest.get('format_version'))[:40]!r}).{_DAMAGED}"
        ) from None
    if version > FORMAT_VERSION:
        raise BundleError(
            f"'{path}' was written by a newer Graft (format {manifest['format_version']}); "
            "upgrade with `pip install -U graft`."
        )
    return manifest


def read_tensors(path: str | Path, manifest: dict[str, Any], *, verify: bool = True) -> dict[str, torch.Tensor]:
    """The bundle's weights, checked against the SHA-256 in its manifest (``verify``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = Path(path) / WEIGHTS
    if not weights.exists():
        raise BundleError(f"'{path}' has no {WEIGHTS}.")
    files = manifest.get("files")
    if verify and sha256_file(weights) != (files.get(WEIGHTS) if isinstance(files, dict) else None):
        raise BundleError(f"'{weights}' does not match the hash in {MANIFEST}: the file was changed or damaged.")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise BundleError(f"'{weights}' is not a readable safetensors file ({e}).") from None


def verify_files(path: str | Path, manifest: dict[str, Any]) -> None:
    """The bundle's extra files (tokenizer, backbone config) match the SHA-256 its manifest records for them; the
    weights are checked by :func:`read_tensors`. Bundles written before these were recorded list none."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        return
    root = Path(path).resolve()
    for name, digest in files.items():
        if name == WEIGHTS:
            continue
        try:
            file = (root / str(name)).resolve()
            outside = not file.is_relative_to(root) or file == root
        except (OSError, ValueError):  # a name with a NUL byte, a link loop
            outside = True
        if outside:
            raise BundleError(f"'{Path(path) / MANIFEST}' lists a file outside the bundle ({name!r}).{_DAMAGED}")
        if not file.is_file():
            raise BundleError(
                f"'{Path(path) / name}' is missing: the bundle is incomplete. Restore it from a copy, or save the "
                "model again."
            )
        if sha256_file(file) != digest:
            raise BundleError(
                f"'{Path(path) / name}' does not match the hash in {MANIFEST}: the file was changed or damaged. "
                "Restore the bundle from a copy, or save the model again."
            )
