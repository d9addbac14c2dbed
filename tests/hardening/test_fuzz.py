"""Property-based fuzzing of every reader: random and mutated inputs give a result or a GraftError, never anything else.

Each reader is fed random bytes or text and mutations (flipped, overwritten, inserted, deleted bytes; truncation) of
small valid files. The only exceptions allowed out are :class:`~graft.errors.GraftError` subclasses, whose messages
the CLI prints without a traceback; the image decoder never raises at all and reports a reason instead.

Every test runs 60 seeded examples; the ``slow`` variants run many more. Runs are reproducible
(``derandomize``) and write no example database.
"""

from __future__ import annotations

import io
import json
import string
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import graft
from graft.bundle import MANIFEST, WEIGHTS, read_manifest
from graft.data.image_decode import _decode_file
from graft.data.image_folders import find_splits
from graft.data.images import load_images
from graft.data.tabular import read_frame
from graft.data.text import find_text_splits, read_text_table
from graft.data.tokens import read_conll, read_token_jsonl
from graft.errors import BundleError, DataError, GraftError

#: damaged files make Pillow, pydicom and numpy warn; what is checked here is what they raise
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::RuntimeWarning")]

#: (examples per run, marks): the quick run is part of every test session, the thorough one is ``slow``
SIZES = [
    pytest.param(60, id="quick"),
    pytest.param(400, id="thorough", marks=pytest.mark.slow),
]


def fuzz_settings(examples: int, deadline_ms: int = 2000) -> settings:
    return settings(
        max_examples=examples,
        deadline=deadline_ms,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ------------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------------


@st.composite
def mutations(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """``(seed name, bytes)``: one of ``seeds`` with 1-4 byte-level edits, half of them in its first 64 bytes."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        end = len(data) - 1
        pos = draw(st.one_of(st.integers(0, min(end, 63)), st.integers(0, end)))
        op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete")))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from((0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)) | st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos : pos + draw(st.integers(1, 32))]
    return name, bytes(data)


#: JSON values of any shape (small integers only: a bundle's dimensions are taken from its manifest)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)

#: a path whose home folder is unknown: ``Path.expanduser`` raises RuntimeError for it
NO_HOME = "~graft-no-such-user/x.png"
#: JSON that Python's parser refuses although its syntax is valid: nesting too deep, an integer of 5000 digits
DEEP_JSON = "[" * 100_000 + "]" * 100_000
LONG_INT_JSON = '{"text": ' + "9" * 5000 + ', "tokens": ' + "9" * 5000 + "}"

#: a quote never closed: the rest of the file is one cell, longer than the csv module's field limit
UNCLOSED_QUOTE = 'path,label\n"' + "x" * 140_000 + ",a\n"

#: characters that matter to CSV, TSV, CoNLL and path parsing, plus some of every other kind
CELL_CHARS = (
    st.sampled_from(list(",;\t\"' \r\n\\/~.:#-_|[]{}\x00"))
    | st.sampled_from(list(string.ascii_letters))
    | (st.characters(codec="utf-8"))
)


WORD = st.text(st.sampled_from(string.ascii_letters + string.digits + "-_. "), min_size=1, max_size=8)


def cells(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Mostly plain values, sometimes a known column name or value, sometimes anything."""
    return WORD | st.sampled_from(names) | st.text(CELL_CHARS, max_size=12)


@st.composite
def delimited(draw: st.DrawFn, names: tuple[str, ...], separators: str = ",\t;", required: tuple[str, ...] = ()) -> str:
    """A header (usually holding the ``required`` columns) and rows of cells, or text without any structure."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.text(CELL_CHARS, max_size=300) | st.sampled_from((UNCLOSED_QUOTE,)))
    sep = draw(st.sampled_from(list(separators)))
    header = list(required) if draw(st.integers(0, 3)) else []
    header += [draw(cells(names)) for _ in range(draw(st.integers(0 if header else 1, 3)))]
    header = draw(st.permutations(header))
    width = len(header)
    ragged = st.integers(max(0, width - 1), width + 1)
    n_rows = draw(st.integers(1, 6) | st.just(0))
    rows = [[draw(cells(names)) for _ in range(draw(ragged))] for _ in range(n_rows)]
    newline = draw(st.sampled_from(("\n", "\r\n", "\r")))
    return newline.join(sep.join(row) for row in [header, *rows]) + draw(st.sampled_from(("", newline)))


def json_lines(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """JSON Lines or a JSON array: mostly objects keyed by known names, sometimes anything, and the parser's limits."""
    value = WORD | st.lists(WORD, max_size=4) | JSON
    record = st.dictionaries(st.sampled_from(names), value, max_size=4) | st.dictionaries(st.text(max_size=8), JSON)
    line = st.one_of(record.map(json.dumps), JSON.map(json.dumps), st.text(CELL_CHARS, max_size=30))
    as_lines = st.lists(line, max_size=6).map("\n".join)
    as_array = st.lists(record | JSON, max_size=6).map(json.dumps)
    return as_lines | as_array | st.sampled_from((DEEP_JSON, LONG_INT_JSON, f"[{LONG_INT_JSON}]"))


def _write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    folder = tmp_path / "fuzz"
    folder.mkdir()
    return folder


def only_graft_errors(fn: Callable[[], Any], allowed: type[GraftError] = GraftError) -> None:
    """Run ``fn``; a GraftError of type ``allowed`` is fine, any other exception fails the example."""
    try:
        fn()
    except allowed as exc:
        assert str(exc).strip(), "a GraftError needs a message"


# ------------------------------------------------------------------------------------------------------
# images
# ------------------------------------------------------------------------------------------------------


def _image_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8), "RGB")
    out: dict[str, bytes] = {}

    def save(name: str, im: Image.Image, fmt: str, **kw: Any) -> None:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    save("rgb.png", rgb, "PNG")
    save("palette-alpha.png", rgb.convert("P"), "PNG", transparency=0)
    save("grey16.png", Image.fromarray(rng.integers(0, 65536, (9, 12), dtype=np.uint16)), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exif_transpose has work to do
    save("rgb.jpg", rgb, "JPEG", quality=80, exif=exif.tobytes())
    save("grey.jpg", rgb.convert("L"), "JPEG", quality=80, progressive=True)
    save("anim.gif", rgb.convert("P"), "GIF", save_all=True, append_images=[rgb.rotate(90).convert("P")])
    save("rgb.tif", rgb, "TIFF")
    save("lzw.tif", rgb, "TIFF", compression="tiff_lzw")
    save("float.tif", Image.fromarray(rng.normal(size=(9, 12)).astype(np.float32)), "TIFF")
    save("rgba.bmp", rgb.convert("RGBA"), "BMP")
    save("rgb.webp", rgb, "WEBP", quality=80)
    return out


IMAGE_SEEDS = _image_seeds()
SUFFIXES = (".png", ".jpg", ".gif", ".tif", ".bmp", ".webp", ".dcm", ".bin", "")


def _check_decoded(path: Path, short_side: int | None) -> None:
    result = _decode_file(str(path), short_side)
    assert isinstance(result.reason, str)
    if result.image is None:
        assert result.reason, "an image that was not decoded needs a reason"
    else:
        image = result.image
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.flags["C_CONTIGUOUS"]
        if short_side is not None:
            assert min(image.shape[:2]) == short_side


def _check_load_images(path: Path) -> None:
    try:
        loaded = load_images([path], short_side=32)
    except DataError as exc:
        assert str(path) in str(exc), "the message names the file"
        return
    assert len(loaded) == 1 and min(loaded.images[0].shape[:2]) == 32  # type: ignore[union-attr]


def test_image_seeds_are_valid(scratch: Path) -> None:
    for name, data in IMAGE_SEEDS.items():
        result = _decode_file(str(_write(scratch, name, data)), 16)
        assert result.image is not None, (name, result.reason)


@pytest.mark.parametrize("examples", SIZES)
def test_decode_file_never_raises_on_random_bytes(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(data=st.binary(max_size=2048), suffix=st.sampled_from(SUFFIXES), short_side=st.sampled_from((None, 7)))
    def check(data: bytes, suffix: str, short_side: int | None) -> None:
        _check_decoded(_write(scratch, f"random{suffix}", data), short_side)

    check()


@pytest.mark.parametrize("examples", SIZES)
def test_decode_file_never_raises_on_mutated_images(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(mutated=mutations(IMAGE_SEEDS), short_side=st.sampled_from((None, 7)))
    def check(mutated: tuple[str, bytes], short_side: int | None) -> None:
        name, data = mutated
        _check_decoded(_write(scratch, name, data), short_side)

    check()


@pytest.mark.parametrize("examples", SIZES)
def test_load_images_raises_only_data_errors(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(mutated=mutations(IMAGE_SEEDS) | st.tuples(st.sampled_from(SUFFIXES).map("x{}".format), st.binary()))
    def check(mutated: tuple[str, bytes]) -> None:
        name, data = mutated
        _check_load_images(_write(scratch, name, data))

    check()


# ------------------------------------------------------------------------------------------------------
# DICOM
# ------------------------------------------------------------------------------------------------------


def _dicom_seeds() -> dict[str, bytes]:
    pytest.importorskip("pydicom")
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from tests.medical.test_dicom import _dataset

    rng = np.random.default_rng(0)

    def build(pixels: np.ndarray, photometric: str, syntax: str = ExplicitVRLittleEndian, **attrs: Any) -> bytes:
        ds = _dataset(pixels, photometric=photometric, transfer_syntax=syntax, uid="1.2.3.4.5", **attrs)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()

    ct = rng.integers(0, 4000, (6, 5), dtype=np.uint16)
    return {
        "ct.dcm": build(ct, "MONOCHROME2", RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400),
        "mono1.dcm": build(rng.integers(-500, 500, (5, 6), dtype=np.int16), "MONOCHROME1"),
        "rgb.dcm": build(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8), "RGB"),
        "implicit.dcm": build(ct, "MONOCHROME2", ImplicitVRLittleEndian, VOILUTFunction="SIGMOID"),
    }


@pytest.fixture(scope="module")
def dicom_seeds() -> dict[str, bytes]:
    from graft.data.dicom import decode_dicom

    seeds = _dicom_seeds()
    for data in seeds.values():
        decode_dicom(data)  # valid, and the pixel handlers are imported before the clock runs
    return seeds


@pytest.mark.parametrize("examples", SIZES)
def test_decode_dicom_raises_only_graft_errors(dicom_seeds: dict[str, bytes], scratch: Path, examples: int) -> None:
    from graft.data.dicom import decode_dicom

    @fuzz_settings(examples)
    @given(mutated=mutations(dicom_seeds))
    def check(mutated: tuple[str, bytes]) -> None:
        name, data = mutated
        only_graft_errors(lambda: decode_dicom(data))
        _check_decoded(_write(scratch, name, data), 8)

    check()


# ------------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------------

IMAGE_CSV_NAMES = ("path", "file", "label", "class", "split", "train", "val", "test", "patient_id", "x.png", NO_HOME)
TEXT_NAMES = ("text", "label", "labels", "sentence1", "sentence2", "premise", "hypothesis", "split", "train", "dev")
TABLE_NAMES = ("a", "b", "label", "target", "id", "2021-01-01", "1.5", "nan", "True", "")


@pytest.mark.parametrize("examples", SIZES)
def test_find_splits_on_random_csv(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(
        data=st.sampled_from(((".csv", ",,,;\t"), (".tsv", "\t\t,"), (".txt", ",\t;"))).flatmap(
            lambda kind: st.tuples(st.just(kind[0]), delimited(IMAGE_CSV_NAMES, kind[1], required=("path", "label")))
        )
    )
    def check(data: tuple[str, str]) -> None:
        suffix, text = data
        path = _write(scratch, f"images{suffix}", text)
        only_graft_errors(lambda: find_splits(path), DataError)

    check()


def _read_text_both_ways(path: Path, multi_label: bool) -> None:
    only_graft_errors(lambda: find_text_splits(path), DataError)
    only_graft_errors(lambda: read_text_table(path, multi_label=multi_label), DataError)


@pytest.mark.parametrize("examples", SIZES)
def test_text_tables_on_random_delimited_text(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(
        data=st.sampled_from(((".csv", ",,,;\t"), (".tsv", "\t\t,"), (".txt", "\t,"))).flatmap(
            lambda kind: st.tuples(st.just(kind[0]), delimited(TEXT_NAMES, kind[1], required=("text", "label")))
        ),
        multi=st.booleans(),
    )
    def check(data: tuple[str, str], multi: bool) -> None:
        suffix, text = data
        _read_text_both_ways(_write(scratch, f"train{suffix}", text), multi)

    check()


@pytest.mark.parametrize("examples", SIZES)
def test_text_tables_on_random_json(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(text=json_lines(TEXT_NAMES), suffix=st.sampled_from((".jsonl", ".json")), multi=st.booleans())
    def check(text: str, suffix: str, multi: bool) -> None:
        _read_text_both_ways(_write(scratch, f"train{suffix}", text), multi)

    check()


def _parquet_seed() -> bytes:
    import pandas as pd

    frame = pd.DataFrame({"text": ["good film", "bad plot", "fine"], "label": ["pos", "neg", "pos"], "x": [1.5, 2, 3]})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


PARQUET_SEEDS = {"seed.parquet": _parquet_seed()}
#: a Parquet file whose first string is not UTF-8 (pyarrow reads it, and fails only when the cell is converted)
BAD_UTF8_PARQUET = PARQUET_SEEDS["seed.parquet"].replace(b"good film", b"\x80ood film", 1)


@pytest.mark.parametrize("examples", SIZES)
def test_parquet_readers_on_random_and_mutated_bytes(scratch: Path, examples: int) -> None:
    seed = _write(scratch, "train.parquet", PARQUET_SEEDS["seed.parquet"])
    assert len(read_text_table(seed)) == 3 and len(read_frame(seed, what="training data")) == 3  # imports pyarrow

    @fuzz_settings(examples)
    @given(mutated=mutations(PARQUET_SEEDS) | st.tuples(st.just("random.parquet"), st.binary(max_size=512)))
    def check(mutated: tuple[str, bytes]) -> None:
        path = _write(scratch, "train.parquet", mutated[1])
        _read_text_both_ways(path, False)
        only_graft_errors(lambda: read_frame(path, what="training data"), DataError)

    check()


@pytest.mark.parametrize("examples", SIZES)
def test_read_frame_on_random_text(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(
        data=st.tuples(st.sampled_from((".csv", ".tsv")), delimited(TABLE_NAMES, ",\t"))
        | st.tuples(st.just(".jsonl"), json_lines(TABLE_NAMES))
        | st.tuples(st.sampled_from((".csv", ".tsv", ".jsonl")), st.binary(max_size=200))
    )
    def check(data: tuple[str, str | bytes]) -> None:
        suffix, text = data
        path = _write(scratch, f"table{suffix}", text)
        only_graft_errors(lambda: read_frame(path, what="training data"), DataError)

    check()


@pytest.mark.parametrize(
    ("reader", "name", "content", "message"),
    [
        (find_splits, "images.csv", f"path,label\n{NO_HOME},a\n", "line 2: the path .* home folder is unknown"),
        (find_splits, "images.csv", UNCLOSED_QUOTE, "line 2: field larger than field limit.*quot"),
        (find_text_splits, "train.jsonl", DEEP_JSON, "nests JSON arrays or objects too deeply"),
        (find_text_splits, "train.json", f"[{LONG_INT_JSON}]", "Write very long numbers as strings"),
        (read_token_jsonl, "train.jsonl", DEEP_JSON, "too deeply"),
        (read_token_jsonl, "train.json", f"[{LONG_INT_JSON}]", "Write very long numbers as strings"),
        (partial(read_frame, what="training data"), "table.jsonl", '{"a": 1}\n0\n', "one JSON object per line"),
        (find_text_splits, "train.parquet", BAD_UTF8_PARQUET, "holds cells that cannot be read"),
    ],
    ids=[
        "csv-unknown-home",
        "csv-unclosed-quote",
        "text-deep",
        "text-long-int",
        "tokens-deep",
        "tokens-long-int",
        "frame-jsonl-number",
        "parquet-not-utf8",
    ],
)
def test_inputs_the_parsers_refuse_are_data_errors_naming_the_file(
    scratch: Path, reader: Callable[[Path], Any], name: str, content: str | bytes, message: str
) -> None:
    path = _write(scratch, name, content)
    with pytest.raises(DataError, match=message) as info:
        reader(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------------------
# token data
# ------------------------------------------------------------------------------------------------------

VALID_TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-ORG", "L-X", "U-X")
TAG_WORDS = ("O", "B-PER", "I-PER", "E-LOC", "S-LOC", "L-X", "U-X", "I-", "B-", "-DOCSTART-", "#", "# ", "X-Y")


@st.composite
def conll_text(draw: st.DrawFn) -> str:
    """Mostly ``token [POS] tag`` lines in sentences, sometimes lines of any width, sometimes anything."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.text(CELL_CHARS, max_size=300))
    token = WORD.filter(lambda w: " " not in w) | st.text(CELL_CHARS.filter(lambda c: not c.isspace()), min_size=1)
    tag = st.sampled_from(VALID_TAGS) | st.sampled_from(TAG_WORDS)
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 5)) == 0:
            cols = draw(st.lists(token | tag, max_size=4))
        else:
            cols = [draw(token), *draw(st.lists(st.sampled_from(("NNP", "I-NP")), max_size=2)), draw(tag)]
        lines.append(draw(st.sampled_from((" ", "\t", "  "))).join(cols))
    return "\n".join(lines)


@pytest.mark.parametrize("examples", SIZES)
def test_conll_reader_raises_only_graft_errors(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(
        text=conll_text(),
        token_column=st.integers(-3, 3),
        tag_column=st.integers(-3, 3),
        scheme=st.sampled_from(("auto", "iob2")),
    )
    def check(text: str, token_column: int, tag_column: int, scheme: str) -> None:
        path = _write(scratch, "train.conll", text)
        only_graft_errors(lambda: read_conll(path, token_column=token_column, tag_column=tag_column, scheme=scheme))

    check()


@pytest.mark.parametrize("examples", SIZES)
def test_token_jsonl_reader_raises_only_graft_errors(scratch: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(text=json_lines(("tokens", "words", "tags", "ner_tags", "labels")))
    def check(text: str) -> None:
        only_graft_errors(lambda: read_token_jsonl(_write(scratch, "train.jsonl", text)))

    check()


# ------------------------------------------------------------------------------------------------------
# bundle manifests
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """``(graft.json, model.safetensors)`` of a small fitted vector classifier."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 4)).astype(np.float32), np.arange(24) % 2
    folder = tmp_path_factory.mktemp("bundle") / "seed"
    graft.EmbeddingClassifier(epochs=1, verbose=False).fit(X, y).save(folder)
    graft.load(folder)  # the seed itself loads
    return (folder / MANIFEST).read_bytes(), (folder / WEIGHTS).read_bytes()


@st.composite
def manifest_edits(draw: st.DrawFn, manifest: dict[str, Any]) -> Any:
    """The manifest with 1-3 values (at any depth) replaced by random JSON or deleted."""
    out = json.loads(json.dumps(manifest))
    for _ in range(draw(st.integers(1, 3))):
        node: Any = out
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
            key = draw(st.sampled_from(keys))
            if not isinstance(node[key], (dict, list)) or not node[key] or draw(st.integers(0, 2)) == 0:
                if isinstance(node, dict) and draw(st.booleans()):
                    del node[key]
                else:
                    node[key] = draw(JSON)
                break
            node = node[key]
    return out


def _check_bundle(folder: Path, manifest: bytes, weights: bytes) -> None:
    folder.mkdir(exist_ok=True)
    (folder / MANIFEST).write_bytes(manifest)
    (folder / WEIGHTS).write_bytes(weights)
    only_graft_errors(lambda: read_manifest(folder), BundleError)
    only_graft_errors(lambda: graft.load(folder))


@pytest.mark.parametrize("examples", SIZES)
def test_random_json_manifest(scratch: Path, bundle_seed: tuple[bytes, bytes], examples: int) -> None:
    weights = bundle_seed[1]
    shaped = st.fixed_dictionaries(
        {"format": st.just("graft-bundle")},
        optional={"format_version": JSON, "task": st.just("embedding-classification") | JSON, "files": JSON},
    )

    refused_by_parser = (DEEP_JSON, '{"format": "graft-bundle", "format_version": ' + "9" * 5000 + "}")

    @fuzz_settings(examples)
    @given(text=(JSON | shaped).map(json.dumps) | st.sampled_from(refused_by_parser))
    def check(text: str) -> None:
        _check_bundle(scratch / "bundle", text.encode(), weights)

    check()


def _edited(manifest: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    m = json.loads(manifest)
    edit(m)
    return json.dumps(m).encode()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=None), "invalid format_version"),
        (lambda m: m.update(files=["model.safetensors"]), "does not match the hash"),
        (lambda m: m.pop("params"), "the entry 'params' is missing"),
        (
            lambda m: m["head"].update(in_features=10**12),
            r"does not fit .* head\.fc\.weight of shape \(2, 1000000000000\)",
        ),
        (lambda m: m["head"].update(hidden=-3), "does not fit the architecture"),
        (lambda m: m.update(strategy="feature-extraction"), "TypeError"),
    ],
    ids=["version-null", "files-list", "no-params", "huge-head", "negative-hidden", "strategy-string"],
)
def test_damaged_manifest_entries_are_bundle_errors(
    scratch: Path, bundle_seed: tuple[bytes, bytes], edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    folder = scratch / "bundle"
    folder.mkdir()
    (folder / MANIFEST).write_bytes(_edited(bundle_seed[0], edit))
    (folder / WEIGHTS).write_bytes(bundle_seed[1])
    with pytest.raises(BundleError, match=message) as info:
        graft.load(folder)
    assert str(folder) in str(info.value)


@pytest.mark.parametrize("examples", SIZES)
def test_mutated_manifest(scratch: Path, bundle_seed: tuple[bytes, bytes], examples: int) -> None:
    manifest, weights = bundle_seed

    @fuzz_settings(examples)
    @given(
        text=mutations({MANIFEST: manifest}).map(lambda m: m[1])
        | manifest_edits(json.loads(manifest)).map(lambda m: json.dumps(m).encode())
    )
    def check(text: bytes) -> None:
        _check_bundle(scratch / "bundle", text, weights)

    check()


@pytest.fixture(scope="module")
def image_bundle_seed(tmp_path_factory: pytest.TempPathFactory, helpers: Any) -> tuple[bytes, bytes]:
    """``(graft.json, model.safetensors)`` of a small fitted image classifier (a timm backbone to rebuild)."""
    folder = tmp_path_factory.mktemp("image-bundle") / "seed"
    X, y = helpers.color_arrays(4, 2)
    helpers.tiny_classifier("feature-extraction", epochs=1, cache=False).fit(X, y).save(folder)
    graft.load(folder)
    return (folder / MANIFEST).read_bytes(), (folder / WEIGHTS).read_bytes()


@pytest.mark.slow
def test_mutated_image_manifest(scratch: Path, image_bundle_seed: tuple[bytes, bytes]) -> None:
    manifest, weights = image_bundle_seed

    @fuzz_settings(150, deadline_ms=5000)
    @given(edited=manifest_edits(json.loads(manifest)))
    def check(edited: Any) -> None:
        _check_bundle(scratch / "bundle", json.dumps(edited).encode(), weights)

    check()
