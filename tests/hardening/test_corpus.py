"""A catalogue of bad inputs: each ends in a clear ``error: ...`` (exit 2) naming the file and what to do, with
nothing written, or in success with the oddity handled and counted. None ends in a traceback.

Every case builds its input under ``tmp_path`` and drives the ``graft`` command line in-process at 32 px (images) or
16 tokens (texts). Several cases repeat single tests elsewhere (tests/test_cli.py, tests/test_first_day.py,
tests/data/test_images.py); they are listed here too, so this file is the one list of what bad input does.
Permission cases run as root simulate the refused read or mkdir, since root may read and write anything.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests.conftest import write_class_folder
from typer.testing import CliRunner

from graft.cli import app

ENV = {"COLUMNS": "4000", "NO_COLOR": "1"}
IMAGE = ("--image-size", "32", "--epochs", "1", "--strategy", "feature-extraction", "--device", "cpu")
TEXT = ("--max-length", "16", "--epochs", "1", "--strategy", "feature-extraction", "--device", "cpu")
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False

#: how many good images each class folder starts with
PER_CLASS = 4


def _invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _no_traceback(result: Any) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def _refused(result: Any, *needles: str, run: Path | None = None) -> str:
    """Exit 2 with ``error: ...`` holding every needle; no traceback; ``run`` (the -o directory) not created."""
    _no_traceback(result)
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    assert "error:" in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    if run is not None:
        assert not run.exists(), f"{run} was created although the input was refused"
    return text


def _handled(result: Any) -> dict[str, Any]:
    """Exit 0, no traceback; the ``--json`` summary."""
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------------------------
# images
# ------------------------------------------------------------------------------------------------------


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels, with one empty data chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _encoded(im: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _noise(width: int = 40, height: int = 30, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8))


def _zero_byte(red: Path) -> Path:
    (red / "zero.png").write_bytes(b"")
    return red / "zero.png"


def _truncated_png(red: Path) -> Path:
    data = _encoded(_noise(), "PNG")
    (red / "cut.png").write_bytes(data[: len(data) // 2])
    return red / "cut.png"


def _truncated_jpeg(red: Path) -> Path:
    data = _encoded(_noise(), "JPEG")
    (red / "cut.jpg").write_bytes(data[: len(data) // 2])
    return red / "cut.jpg"


def _text_as_jpeg(red: Path) -> Path:
    (red / "notes.jpg").write_text("this is a shopping list, not a photo\n")
    return red / "notes.jpg"


def _bomb(red: Path) -> Path:
    (red / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))  # 10^10 pixels, over PIL's bomb limit
    return red / "bomb.png"


def _symlink_loop(red: Path) -> Path:
    (red / "loop.png").symlink_to(red / "loop.png")  # open() fails with ELOOP
    return red / "loop.png"


def _png16(red: Path) -> Path:
    ramp = np.linspace(1000, 60000, 40 * 30).reshape(30, 40).astype(np.uint16)
    Image.fromarray(ramp).save(red / "deep.png")
    assert Image.open(red / "deep.png").mode.startswith("I")
    return red / "deep.png"


def _cmyk_jpeg(red: Path) -> Path:
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(red / "print.jpg", quality=90)
    return red / "print.jpg"


def _palette_transparent(red: Path) -> Path:
    pal = Image.new("P", (40, 30), 1)
    pal.putpalette([0, 0, 0, 210, 40, 40] + [0] * (254 * 3))
    pal.paste(0, (0, 0, 10, 10))
    pal.save(red / "palette.png", transparency=0)
    return red / "palette.png"


def _exif_rotated(red: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    Image.new("RGB", (40, 20), (210, 40, 40)).save(red / "rotated.jpg", exif=exif.tobytes())
    return red / "rotated.jpg"


def _animated_gif(red: Path) -> Path:
    frames = [Image.new("RGB", (40, 30), (210, 40, 40)), Image.new("RGB", (40, 30), (40, 50, 210))]
    frames[0].save(red / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return red / "anim.gif"


def _one_pixel(red: Path) -> Path:
    Image.new("RGB", (1, 1), (210, 40, 40)).save(red / "dot.png")
    return red / "dot.png"


def _very_wide(red: Path) -> Path:
    Image.new("RGB", (4000, 2), (210, 40, 40)).save(red / "strip.png")
    return red / "strip.png"


def _class_link_loop(red: Path) -> Path:
    (red.parent / "loop").symlink_to(red.parent / "loop")  # beside the class folders; no folder, so no class
    return red.parent / "loop"


def _dir_link_to_parent(red: Path) -> Path:
    (red / "again").symlink_to(red.parent, target_is_directory=True)  # red/again/red/again/... forever
    return red / "again"


#: (id, what writes the odd file into the 'red' class folder, needles of the refusal, or None when it trains)
IMAGE_CASES: list[tuple[str, Callable[[Path], Path], tuple[str, ...] | None]] = [
    ("zero-byte", _zero_byte, ("zero.png", "empty file (0 bytes)", "--skip-invalid")),
    ("truncated-png", _truncated_png, ("cut.png", "--skip-invalid")),
    ("truncated-jpeg", _truncated_jpeg, ("cut.jpg", "truncated image", "--skip-invalid")),
    ("text-named-jpg", _text_as_jpeg, ("notes.jpg", "not an image", "--skip-invalid")),
    ("decompression-bomb", _bomb, ("bomb.png", "image too large", "--skip-invalid")),
    ("symlink-loop", _symlink_loop, ("loop.png", "--skip-invalid")),
    ("16-bit-png", _png16, None),
    ("cmyk-jpeg", _cmyk_jpeg, None),
    ("palette-png-transparency", _palette_transparent, None),
    ("exif-rotated-jpeg", _exif_rotated, None),
    ("animated-gif", _animated_gif, None),
    ("one-pixel", _one_pixel, None),
    ("4000x2", _very_wide, None),
    ("dir-symlink-to-parent", _dir_link_to_parent, None),
    ("symlink-loop-beside-classes", _class_link_loop, None),
]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Two class folders (red, blue) of ``PER_CLASS`` good images each."""
    return write_class_folder(tmp_path / "data", n_classes=2, n_per_class=PER_CLASS)


@pytest.mark.parametrize(("make", "needles"), [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_odd_image_in_a_class_folder(
    images: Path, tmp_path: Path, make: Callable[[Path], Path], needles: tuple[str, ...] | None
) -> None:
    odd = make(images / "red")
    run = tmp_path / "run"
    result = _invoke("train", images, "-o", run, *IMAGE, "--json")
    if needles is not None:
        _refused(result, *needles, run=run)
        return
    summary = _handled(result)
    expected = 2 * PER_CLASS + (1 if odd.parent.name == "red" and odd.is_file() else 0)
    assert summary["n_train"] + summary["n_val"] == expected and summary["skipped_invalid"] == 0
    assert (run / "graft.json").is_file()


SKIPPED = [
    c
    for c in IMAGE_CASES
    if c[0] in ("zero-byte", "truncated-jpeg", "text-named-jpg", "decompression-bomb", "symlink-loop")
]


@pytest.mark.parametrize("make", [c[1] for c in SKIPPED], ids=[c[0] for c in SKIPPED])
def test_skip_invalid_leaves_the_odd_image_out_and_counts_it(
    images: Path, tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    make(images / "red")
    with pytest.warns(UserWarning, match="left out 1 unreadable image"):
        result = _invoke("train", images, "-o", tmp_path / "run", *IMAGE, "--skip-invalid", "--json")
    summary = _handled(result)
    assert summary["skipped_invalid"] == 1
    assert summary["n_train"] + summary["n_val"] == 2 * PER_CLASS


def test_unreadable_image(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = images / "red" / "locked.png"
    shutil.copy(images / "red" / "img0.png", locked)
    locked.chmod(0)
    if ROOT:  # root reads any file: the refusal is simulated where the bytes are read
        real = Path.read_bytes

        def denied(self: Path) -> bytes:
            if self.name == "locked.png":
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
    run = tmp_path / "run"
    try:
        _refused(
            _invoke("train", images, "-o", run, *IMAGE), "locked.png", "permission denied", "--skip-invalid", run=run
        )
    finally:
        locked.chmod(0o644)


def _decoded(path: Path) -> np.ndarray:
    from graft.data import load_images

    return load_images([path], short_side=None).images[0]


@pytest.mark.parametrize(
    ("make", "check"),
    [
        pytest.param(_png16, lambda a: a.min() == 0 and a.max() == 255, id="16-bit-png-uses-the-full-range"),
        pytest.param(_cmyk_jpeg, lambda a: a[15, 20, 0] > 200 and a[15, 20, 2] < 60, id="cmyk-jpeg-is-red"),
        pytest.param(
            _palette_transparent, lambda a: (a[0, 0] == 255).all() and a[20, 30, 0] > 200, id="palette-alpha-on-white"
        ),
        pytest.param(_exif_rotated, lambda a: a.shape == (40, 20, 3), id="exif-rotation-applied"),
        pytest.param(_animated_gif, lambda a: a[15, 20, 0] > 200 and a[15, 20, 2] < 60, id="gif-first-frame"),
        pytest.param(_one_pixel, lambda a: a.shape == (1, 1, 3), id="one-pixel"),
        pytest.param(_very_wide, lambda a: a.shape == (2, 4000, 3), id="4000x2"),
    ],
)
def test_odd_image_decodes_as_shown(tmp_path: Path, make: Callable[[Path], Path], check: Callable[[Any], bool]) -> None:
    """What the handled images above train on: the picture as a viewer shows it, in 8-bit RGB."""
    image = _decoded(make(tmp_path))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert check(image), image.shape


@pytest.mark.parametrize(
    ("layout", "needles"),
    [
        ("one-class", ("needs at least 2 classes", "'red'")),
        ("empty-folder", ("data", "holds no images, text tables or CoNLL files")),
        ("class-without-images", ("empty_class", "contains no images")),
    ],
)
def test_unusable_image_folder(tmp_path: Path, layout: str, needles: tuple[str, ...]) -> None:
    data = tmp_path / "data"
    if layout == "one-class":
        write_class_folder(data, n_classes=1, n_per_class=PER_CLASS)
    elif layout == "empty-folder":
        data.mkdir()
    else:
        write_class_folder(data, n_classes=2, n_per_class=PER_CLASS)
        (data / "empty_class").mkdir()
        (data / "empty_class" / "readme.txt").write_text("the photos are still on the camera")
    run = tmp_path / "run"
    _refused(_invoke("train", data, "-o", run, *IMAGE), *needles, run=run)


# ------------------------------------------------------------------------------------------------------
# text tables
# ------------------------------------------------------------------------------------------------------

POSITIVE = ("a good and lovely film", "great acting, great plot", "I loved every minute", "wonderful and happy")
NEGATIVE = ("a bad and boring film", "awful acting, poor plot", "I hated every minute", "terrible and sad")


def _rows(n: int = 12) -> list[tuple[str, str]]:
    """``n`` (text, label) rows, alternately neg/pos."""
    out = []
    for i in range(n):
        pool, label = (POSITIVE, "pos") if i % 2 else (NEGATIVE, "neg")
        out.append((f"{pool[(i // 2) % len(pool)]} {i}", label))
    return out


def _csv(rows: list[tuple[str, str]], header: str = "text,label") -> str:
    return header + "\n" + "".join(f'"{t}",{y}\n' for t, y in rows)


def _latin1(d: Path) -> list[str]:
    (d / "reviews.csv").write_bytes(_csv(_rows()).replace("film", "caf\xe9").encode("latin-1"))
    return [str(d / "reviews.csv")]


def _bom(d: Path) -> list[str]:
    (d / "reviews.csv").write_bytes(b"\xef\xbb\xbf" + _csv(_rows()).encode("utf-8"))
    return [str(d / "reviews.csv")]


def _empty_table(d: Path) -> list[str]:
    (d / "reviews.csv").write_bytes(b"")
    return [str(d / "reviews.csv")]


def _header_only(d: Path) -> list[str]:
    (d / "reviews.csv").write_text("text,label\n")
    return [str(d / "reviews.csv")]


def _ragged(d: Path) -> list[str]:
    text = _csv(_rows()).splitlines()
    text[5] += ",extra,cells"
    (d / "reviews.csv").write_text("\n".join(text) + "\n")
    return [str(d / "reviews.csv")]


def _missing_label(d: Path) -> list[str]:
    rows = _rows()
    rows[4] = (rows[4][0], "")
    (d / "reviews.csv").write_text(_csv(rows))
    return [str(d / "reviews.csv")]


def _one_text_class(d: Path) -> list[str]:
    (d / "reviews.csv").write_text(_csv([(t, "pos") for t, _ in _rows()]))
    return [str(d / "reviews.csv")]


def _unseen_in_val(d: Path) -> list[str]:
    (d / "reviews.csv").write_text(_csv(_rows()))
    (d / "held.csv").write_text(_csv([*_rows(4), ("a so-so film", "meh")]))
    return [str(d / "reviews.csv"), "--val", str(d / "held.csv")]


def _unlabelled_val(d: Path) -> list[str]:
    (d / "reviews.csv").write_text(_csv(_rows()))
    (d / "held.csv").write_text("id,text\n" + "".join(f'{i},"{t}"\n' for i, (t, _) in enumerate(_rows(4))))
    return [str(d / "reviews.csv"), "--val", str(d / "held.csv")]


def _huge_cell(d: Path) -> list[str]:
    rows = _rows()
    rows[0] = ("word " * 200_000, rows[0][1])  # a 1 MB cell
    (d / "reviews.csv").write_text(_csv(rows))
    return [str(d / "reviews.csv")]


def _jsonl_garbage(d: Path) -> list[str]:
    lines = [json.dumps({"text": t, "label": y}) for t, y in _rows()]
    lines.insert(3, "{this is not json")
    (d / "reviews.jsonl").write_text("\n".join(lines) + "\n")
    return [str(d / "reviews.jsonl")]


def _parquet_garbage(d: Path) -> list[str]:
    (d / "reviews.parquet").write_bytes(b"PAR1" + os.urandom(64))
    return [str(d / "reviews.parquet")]


def _tsv_quotes(d: Path) -> list[str]:
    rows = ["text\tlabel"] + [f'"{t}, he said ""wow"""\t{y}' for t, y in _rows()]
    (d / "reviews.tsv").write_text("\n".join(rows) + "\n")
    return [str(d / "reviews.tsv")]


#: (id, what writes the table and returns the arguments before -o, needles of the refusal or None when it trains)
#: what writes the table and returns the arguments before -o, and the needles of the refusal (None: it trains)
TEXT_CASES = [
    pytest.param(_latin1, ("reviews.csv", "not valid UTF-8", "line 2", "Re-save the file as UTF-8"), id="latin-1"),
    pytest.param(_bom, None, id="utf8-bom"),
    pytest.param(_empty_table, ("reviews.csv", "is empty", "Write a header row"), id="empty-file"),
    pytest.param(_header_only, ("reviews.csv", "has a header but no rows"), id="header-only"),
    pytest.param(_ragged, ("reviews.csv", "line 6 has 4 fields", "double quotes"), id="ragged-rows"),
    pytest.param(_missing_label, ("reviews.csv:row 5", "without a label", "Fill in"), id="missing-label"),
    pytest.param(_one_text_class, ("needs at least 2 classes", "'pos'", "Add texts"), id="one-class"),
    pytest.param(_unseen_in_val, ("'meh'", "never occur in train"), id="label-only-in-val"),
    pytest.param(_unlabelled_val, ("held.csv", "no label column", "--label-column"), id="val-without-labels"),
    pytest.param(_huge_cell, None, id="1mb-cell", marks=pytest.mark.slow),
    pytest.param(_jsonl_garbage, ("reviews.jsonl", "line 4 is not valid JSON", "fix or remove"), id="jsonl-garbage"),
    pytest.param(_parquet_garbage, ("reviews.parquet", "cannot be read as Parquet"), id="parquet-garbage"),
    pytest.param(_tsv_quotes, None, id="tsv-with-quotes"),
]


@pytest.mark.parametrize(("make", "needles"), TEXT_CASES)
def test_odd_text_table(tmp_path: Path, make: Callable[[Path], list[str]], needles: tuple[str, ...] | None) -> None:
    args = make(tmp_path)
    run = tmp_path / "run"
    result = _invoke("train", *args, "-o", run, *TEXT, "--json")
    if needles is not None:
        _refused(result, *needles, run=run)
        return
    summary = _handled(result)
    assert summary["n_train"] + summary["n_val"] == 12 and set(summary["classes"]) == {"neg", "pos"}
    assert summary["data"]["columns"] == {"text": "text", "label": "label"}  # no BOM in the first column's name


# ------------------------------------------------------------------------------------------------------
# CoNLL
# ------------------------------------------------------------------------------------------------------


def _conll(sentences: int = 12, *, blank: bool = True, bad: str | None = None) -> str:
    people, places = ("Angela Merkel", "John Smith", "Maria Garcia"), ("Paris", "Berlin", "Rome")
    lines = ["-DOCSTART- -X- -X- O", ""]
    for i in range(sentences):
        first, last = people[i % 3].split()
        words = [(first, "B-PER"), (last, "I-PER"), ("visited", "O"), (places[i % 3], "B-LOC"), (".", "O")]
        lines += [f"{w} NNP I-NP {t}" for w, t in words]
        if blank:
            lines.append("")
    if bad is not None:
        lines[8] = bad
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("content", "val", "needles"),
    [
        pytest.param(_conll(bad="Paris NNP I-NP I-"), None, ("ner.conll", "line 9", "I-"), id="tag-without-type"),
        pytest.param(
            _conll(bad="Paris NNP I-NP X-LOC"), None, ("ner.conll", "line 9", "X-LOC"), id="unknown-tag-prefix"
        ),
        pytest.param(_conll(bad="Paris"), None, ("ner.conll", "line 9", "the tag is missing"), id="tag-column-missing"),
        pytest.param("", None, ("ner.conll", "holds no sentences", "blank line"), id="empty-file"),
        pytest.param(_conll(blank=False), None, ("Too few sentences (1)", "--val", "blank line"), id="no-blank-lines"),
        pytest.param(
            "\n\n".join("Rome is nice .".replace(" ", "\n") for _ in range(12)),
            None,
            ("ner.conll", "no tags", "B-LOC"),
            id="train-without-tags",
        ),
        pytest.param(_conll(blank=False), _conll(4), None, id="no-blank-lines-with-val"),
        pytest.param(
            _conll(),
            "\n\n".join("Rome is nice .".replace(" ", "\n") for _ in range(3)),
            ("dev.conll", "no tags", "B-LOC"),
            id="val-without-tags",
        ),
    ],
)
def test_odd_conll(tmp_path: Path, content: str, val: str | None, needles: tuple[str, ...] | None) -> None:
    (tmp_path / "ner.conll").write_text(content)
    extra = []
    if val is not None:
        (tmp_path / "dev.conll").write_text(val)
        extra = ["--val", str(tmp_path / "dev.conll")]
    run = tmp_path / "run"
    args = ("--task", "token-classification", *TEXT, *extra, "--json")
    result = _invoke("train", tmp_path / "ner.conll", "-o", run, *args)
    if needles is not None:
        _refused(result, *needles, run=run)
        return
    _handled(result)


# ------------------------------------------------------------------------------------------------------
# bundles
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a run directory trained once, its data folder)."""
    root = tmp_path_factory.mktemp("bundle")
    data = write_class_folder(root / "data", n_classes=2, n_per_class=PER_CLASS)
    result = _invoke("train", data, "-o", root / "run", *IMAGE, "--json")
    _handled(result)
    return root / "run", data


def _missing_run(run: Path) -> str:
    shutil.rmtree(run)
    return "does not exist"


def _no_manifest(run: Path) -> str:
    (run / "graft.json").unlink()
    return "graft.json is missing"


def _corrupt_manifest(run: Path) -> str:
    (run / "graft.json").write_text("{ this is not json")
    return "is not valid JSON"


def _tampered_weights(run: Path) -> str:
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    return "does not match the hash"


def _truncated_weights(run: Path) -> str:
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return "does not match the hash"


def _truncated_weights_rehashed(run: Path) -> str:
    """A cut weights file whose manifest hash was updated to match: the file itself must be refused."""
    import hashlib

    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    manifest = json.loads((run / "graft.json").read_text())
    manifest["files"]["model.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (run / "graft.json").write_text(json.dumps(manifest))
    return "is not a readable safetensors file"


BUNDLE_CASES = [
    ("missing-run-dir", _missing_run),
    ("no-graft-json", _no_manifest),
    ("corrupt-graft-json", _corrupt_manifest),
    ("weights-sha-mismatch", _tampered_weights),
    ("truncated-weights", _truncated_weights),
    ("truncated-weights-rehashed", _truncated_weights_rehashed),
]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("damage", [c[1] for c in BUNDLE_CASES], ids=[c[0] for c in BUNDLE_CASES])
def test_damaged_bundle(bundle: tuple[Path, Path], tmp_path: Path, command: str, damage: Callable[[Path], str]) -> None:
    trained, data = bundle
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    needle = damage(run)
    target = data / "red" / "img0.png" if command == "predict" else data
    _refused(_invoke(command, run, target, "--device", "cpu"), "run", needle)


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        pytest.param(_zero_byte, ("zero.png", "empty file (0 bytes)", "Fix or remove"), id="zero-byte"),
        pytest.param(_text_as_jpeg, ("notes.jpg", "not an image", "Fix or remove"), id="text-named-jpg"),
        pytest.param(_bomb, ("bomb.png", "image too large", "Fix or remove"), id="decompression-bomb"),
        pytest.param(lambda d: d / "nope.png", ("nope.png", "does not exist"), id="missing-image"),
    ],
)
def test_predict_an_odd_image(
    bundle: tuple[Path, Path], tmp_path: Path, make: Callable[[Path], Path], needles: tuple[str, ...]
) -> None:
    run, _ = bundle
    _refused(_invoke("predict", run, make(tmp_path), "--device", "cpu"), *needles)


@pytest.mark.skipif(ROOT, reason="root writes into any folder")
def test_predict_output_inside_an_unwritable_folder(bundle: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = bundle
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = _invoke("predict", run, data / "red", "--output", locked / "preds.csv", "--device", "cpu")
        _refused(result, "locked", "Permission denied")
    finally:
        locked.chmod(0o700)
    assert not (locked / "preds.csv").exists()


# ------------------------------------------------------------------------------------------------------
# options
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        pytest.param(("--epochs", "-3"), ("epochs must be >= 1",), id="epochs-negative"),
        pytest.param(("--set", "lr_decay=abc"), ("lr_decay must be a number", "'abc'"), id="set-wrong-type"),
        pytest.param(("--set", "nonexistent=1"), ("no parameter 'nonexistent'", "Valid:"), id="set-unknown-key"),
        pytest.param(("--batch-size", "0"), ("batch_size", ">= 1"), id="batch-size-0"),
        pytest.param(("--precision", "fp8"), ("precision must be one of",), id="precision-fp8"),
        pytest.param(
            ("--strategy", "featur-extraction"), ("Did you mean 'feature-extraction'",), id="unknown-strategy"
        ),
        pytest.param(
            ("--strategy", "dann", "--target", "{tmp}/elsewhere"),
            ("target data", "elsewhere", "does not exist", "--target"),
            id="target-missing",
        ),
    ],
)
def test_bad_option(images: Path, tmp_path: Path, options: tuple[str, ...], needles: tuple[str, ...]) -> None:
    run = tmp_path / "run"
    args = [o.format(tmp=tmp_path) for o in options]
    _refused(_invoke("train", images, "-o", run, "--image-size", "32", "--device", "cpu", *args), *needles, run=run)


@pytest.mark.parametrize("kind", ["images", "table", "conll"])
def test_val_path_missing(images: Path, tmp_path: Path, kind: str) -> None:
    if kind == "images":
        data, extra = images, IMAGE
    elif kind == "table":
        data, extra = tmp_path / "reviews.csv", TEXT
        data.write_text(_csv(_rows()))
    else:
        data, extra = tmp_path / "ner.conll", TEXT
        data.write_text(_conll())
    run = tmp_path / "run"
    result = _invoke("train", data, "-o", run, *extra, "--val", tmp_path / "nowhere")
    _refused(result, "nowhere", "does not exist", run=run)


def test_output_is_an_existing_file(images: Path, tmp_path: Path) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    _refused(_invoke("train", images, "-o", taken, *IMAGE), "notes.txt", "is a file", "-o")
    assert taken.read_text() == "mine"


def test_output_inside_an_unwritable_folder(images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    run = locked / "run"
    if ROOT:  # root writes anywhere: the refusal is simulated where folders are made
        real = Path.mkdir

        def denied(self: Path, *args: Any, **kwargs: Any) -> None:
            if locked in self.parents:
                raise PermissionError(13, "Permission denied", str(self))
            real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", denied)
    try:
        _refused(_invoke("train", images, "-o", run, *IMAGE), "locked", "ermission denied", run=run)
    finally:
        locked.chmod(0o700)
