"""Tests for graft.data.images: finding splits, decoding every input kind, label checks, splitting."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.data import (
    IMAGE_EXTENSIONS,
    ImageSet,
    check_labels,
    find_splits,
    load_images,
    stratified_split,
)
from graft.errors import DataError, GraftError

# ------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------


def _rgb(width: int = 20, height: int = 16, color: tuple[int, int, int] = (200, 30, 40)) -> Image.Image:
    return Image.new("RGB", (width, height), color)


def _save(path: Path, im: Image.Image | None = None, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (im or _rgb()).save(path, **kwargs)
    return path


def _class_tree(root: Path, classes: dict[str, int], ext: str = ".png") -> None:
    for c_i, (name, count) in enumerate(classes.items()):
        for i in range(count):
            _save(root / name / f"img{i}{ext}", _rgb(color=(10 * c_i, 20 * i, 100)))


def _jpeg_bytes(im: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------------
# find_splits
# ------------------------------------------------------------------------------------------------------


def test_image_extensions_are_lowercase_with_dot() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".tiff", ".pgm"} <= IMAGE_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)


def test_find_splits_class_layout_sorted_and_filtered(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _save(root / "bees" / "b2.png")
    _save(root / "bees" / "b1.JPG", format="JPEG")  # upper-case extension counts
    _save(root / "ants" / "z.png")
    _save(root / "ants" / "a.png")
    _save(root / "ants" / ".hidden.png")
    (root / "ants" / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()  # hidden folder is not a class
    (root / "README.md").write_text("top-level files are ignored")

    splits = find_splits(root)

    assert list(splits) == ["train"] and not splits.marked  # no split folders: the whole input
    paths, labels = splits["train"]
    assert labels == ["ants", "ants", "bees", "bees"]
    assert paths == [
        str(root / "ants" / "a.png"),
        str(root / "ants" / "z.png"),
        str(root / "bees" / "b1.JPG"),
        str(root / "bees" / "b2.png"),
    ]


def test_find_splits_split_layout_with_aliases(tmp_path: Path) -> None:
    _class_tree(tmp_path / "train", {"a": 2, "b": 2, "c": 2})
    _class_tree(tmp_path / "valid", {"a": 1, "b": 1})
    _class_tree(tmp_path / "testing", {"c": 1})

    splits = find_splits(str(tmp_path))

    assert list(splits) == ["train", "val", "test"] and splits.marked
    assert splits["train"][1] == ["a", "a", "b", "b", "c", "c"]
    assert splits["val"][1] == ["a", "b"]
    assert splits["test"] == ([str(tmp_path / "testing" / "c" / "img0.png")], ["c"])


def test_find_splits_class_named_test_holding_images_is_a_class(tmp_path: Path) -> None:
    _class_tree(tmp_path, {"test": 2, "other": 2})
    splits = find_splits(tmp_path)
    assert list(splits) == ["train"]
    assert sorted(set(splits["train"][1])) == ["other", "test"]


def test_find_splits_flat_split_folder_is_an_error(tmp_path: Path) -> None:
    _class_tree(tmp_path / "train", {"a": 2, "b": 2})
    _save(tmp_path / "val" / "loose.png")  # val without class folders must not be silently ignored
    with pytest.raises(DataError, match=r"val' contains image files but no class sub-folders"):
        find_splits(tmp_path)


def test_find_splits_duplicate_split_folders(tmp_path: Path) -> None:
    _class_tree(tmp_path / "train", {"a": 1})
    _class_tree(tmp_path / "val", {"a": 1})
    _class_tree(tmp_path / "valid", {"a": 1})
    with pytest.raises(DataError, match="two folders for the val split: 'val' and 'valid'"):
        find_splits(tmp_path)


def test_find_splits_split_layout_without_train(tmp_path: Path) -> None:
    _class_tree(tmp_path / "val", {"a": 1, "b": 1})
    with pytest.raises(DataError, match="no 'train' folder"):
        find_splits(tmp_path)


def test_find_splits_empty_class_folder_is_named(tmp_path: Path) -> None:
    _class_tree(tmp_path / "train", {"a": 2})
    (tmp_path / "train" / "empty_class").mkdir()
    (tmp_path / "train" / "empty_class" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as err:
        find_splits(tmp_path)
    assert "empty_class" in str(err.value)
    assert "contains no images" in str(err.value)


def test_find_splits_images_without_class_folders(tmp_path: Path) -> None:
    _save(tmp_path / "a.png")
    with pytest.raises(DataError, match="image files but no class sub-folders"):
        find_splits(tmp_path)


def test_find_splits_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError) as err:
        find_splits(missing)
    assert str(err.value) == (
        f"'{missing}' does not exist. Give a folder of class sub-folders (root/<class>/*.jpg) or a CSV of path,label."
    )
    assert isinstance(err.value, GraftError)


def test_find_splits_csv_relative_paths_split_column_and_aliases(tmp_path: Path) -> None:
    for name in ("x1.png", "x2.png", "y1.png", "y 2.png", "sub/z.png"):
        _save(tmp_path / "imgs" / name)
    absolute = _save(tmp_path / "elsewhere" / "abs.png")
    csv_path = tmp_path / "imgs" / "labels.csv"
    csv_path.write_text(
        "FileName,Class,Split\n"
        "x1.png,cat,train\n"
        "y1.png,dog,TRAIN\n"
        "\n"
        "y 2.png,dog,validation\n"
        f"{absolute},cat,train\n"
        "sub/z.png,cat,test\n",
        encoding="utf-8",
    )

    splits = find_splits(csv_path)

    assert list(splits) == ["train", "val", "test"] and splits.marked
    train_paths, train_labels = splits["train"]
    imgs = tmp_path / "imgs"
    assert train_paths == [str(imgs / "x1.png"), str(imgs / "y1.png"), str(absolute)]
    assert train_labels == ["cat", "dog", "cat"]
    assert splits["val"] == ([str(tmp_path / "imgs" / "y 2.png")], ["dog"])
    assert splits["test"] == ([str(tmp_path / "imgs" / "sub" / "z.png")], ["cat"])
    assert all(Path(p).is_file() for p in train_paths)


def test_find_splits_csv_without_split_column_is_all_train(tmp_path: Path) -> None:
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("\ufeffimage;target\na.png;0\nb.png;1\n", encoding="utf-8")  # BOM + semicolons
    splits = find_splits(csv_path)
    assert splits == {"train": ([str(tmp_path / "a.png"), str(tmp_path / "b.png")], ["0", "1"])}


def test_find_splits_csv_unknown_columns_are_listed(tmp_path: Path) -> None:
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("picture,kind\na.png,cat\n")
    with pytest.raises(DataError) as err:
        find_splits(csv_path)
    msg = str(err.value)
    assert "no path column" in msg and "'picture', 'kind'" in msg and "filename" in msg


def test_find_splits_csv_missing_label_column(tmp_path: Path) -> None:
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("path,kind\na.png,cat\n")
    with pytest.raises(DataError, match="no label column; columns found: 'path', 'kind'"):
        find_splits(csv_path)


def test_find_splits_csv_bad_rows(tmp_path: Path) -> None:
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("path,label,split\na.png,cat,train\nb.png,dog,trian\n")
    with pytest.raises(DataError, match=r"line 3: unknown split 'trian'\. Did you mean 'train'\?"):
        find_splits(csv_path)
    csv_path.write_text("path,label\na.png,cat\nb.png,\n")
    with pytest.raises(DataError, match="line 3: the 'label' cell is empty"):
        find_splits(csv_path)
    csv_path.write_text("path,label,split\na.png,cat,val\n")
    with pytest.raises(DataError, match="no rows with split 'train'"):
        find_splits(csv_path)
    csv_path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        find_splits(csv_path)


def test_find_splits_rejects_non_csv_file(tmp_path: Path) -> None:
    other = tmp_path / "data.json"
    other.write_text("{}")
    with pytest.raises(DataError, match="not a CSV"):
        find_splits(other)


# ------------------------------------------------------------------------------------------------------
# load_images: folders, CSVs, paths
# ------------------------------------------------------------------------------------------------------


def test_load_images_from_folder(tmp_path: Path) -> None:
    _class_tree(tmp_path, {"a": 2, "b": 3})
    s = load_images(tmp_path, short_side=12)
    assert len(s) == 5
    assert s.labels == ["a", "a", "b", "b", "b"]
    assert s.sources == find_splits(tmp_path)["train"][0]
    assert s.skipped == []
    for im in s.images:
        assert im.dtype == np.uint8 and im.shape == (12, 15, 3) and im.flags["C_CONTIGUOUS"]


def test_load_images_refuses_split_folder_and_points_to_find_splits(tmp_path: Path) -> None:
    _class_tree(tmp_path / "train", {"a": 2, "b": 2})
    _class_tree(tmp_path / "val", {"a": 1, "b": 1})
    with pytest.raises(DataError, match="find_splits"):
        load_images(tmp_path, short_side=None)
    # the train folder itself is fine
    assert len(load_images(tmp_path / "train", short_side=None)) == 4


def test_load_images_from_csv_and_labels_from_y_rejected(tmp_path: Path) -> None:
    _save(tmp_path / "p.png", _rgb(color=(1, 2, 3)))
    _save(tmp_path / "q.png", _rgb(color=(4, 5, 6)))
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("path,label\np.png,x\nq.png,y\n")
    s = load_images(csv_path, short_side=None)
    assert s.labels == ["x", "y"]
    assert s.images[1][0, 0].tolist() == [4, 5, 6]
    with pytest.raises(DataError, match="pass y=None"):
        load_images(csv_path, ["x", "y"], short_side=None)


def test_load_images_single_image_path_is_refused_helpfully(tmp_path: Path) -> None:
    p = _save(tmp_path / "one.png")
    with pytest.raises(DataError, match=r"single image file.*Pass \['"):
        load_images(p, short_side=None)


def test_load_images_path_list_keeps_order_and_labels(tmp_path: Path) -> None:
    paths = [_save(tmp_path / f"{i}.png", _rgb(color=(i * 10, 0, 0))) for i in range(9)]
    shuffled = [paths[i] for i in (4, 0, 8, 2, 6, 1, 7, 3, 5)]
    s = load_images(shuffled, [3, 1, 2, 1, 2, 3, 1, 2, 3], short_side=None, workers=2)
    assert s.sources == [str(p) for p in shuffled]
    assert [int(im[0, 0, 0]) for im in s.images] == [40, 0, 80, 20, 60, 10, 70, 30, 50]
    assert s.labels == ["3", "1", "2", "1", "2", "3", "1", "2", "3"]
    serial = load_images(shuffled, short_side=10, workers=1)
    parallel = load_images(shuffled, short_side=10, workers=2)
    assert serial.labels is None
    assert all(np.array_equal(a, b) for a, b in zip(serial.images, parallel.images, strict=True))


def test_file_name_with_space(tmp_path: Path) -> None:
    p = _save(tmp_path / "my photo 1.jpg", _rgb(30, 20), format="JPEG")
    s = load_images([str(p)], short_side=10)
    assert s.sources == [str(p)]
    assert s.images[0].shape == (10, 15, 3)


# ------------------------------------------------------------------------------------------------------
# load_images: modes and formats
# ------------------------------------------------------------------------------------------------------


def test_mode_L_and_bilevel(tmp_path: Path) -> None:
    grey = _save(tmp_path / "g.png", Image.new("L", (6, 4), 77))
    bilevel_im = Image.new("1", (6, 4), 0)
    bilevel_im.putpixel((0, 0), 1)
    bilevel = _save(tmp_path / "b.png", bilevel_im)
    s = load_images([grey, bilevel], short_side=None)
    assert s.images[0].shape == (4, 6, 3) and (s.images[0] == 77).all()
    assert s.images[1][0, 0].tolist() == [255, 255, 255]
    assert s.images[1][1, 1].tolist() == [0, 0, 0]


def test_alpha_modes_composite_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 255, 0))  # fully transparent → white
    rgba.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black → mid grey
    la = Image.new("LA", (4, 4), (0, 0))  # fully transparent black → white
    la.putpixel((3, 3), (10, 255))
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    pal.putpixel((0, 0), 0)
    pal.info["transparency"] = 0
    paths = [
        _save(tmp_path / "rgba.png", rgba),
        _save(tmp_path / "la.png", la),
        _save(tmp_path / "p.png", pal, transparency=0),
    ]
    s = load_images(paths, short_side=None)
    out_rgba, out_la, out_p = s.images
    assert out_rgba[0, 0].tolist() == [255, 255, 255]
    assert out_rgba[0, 1].tolist() == [127, 127, 127] or out_rgba[0, 1].tolist() == [128, 128, 128]
    assert out_rgba[2, 2].tolist() == [255, 0, 0]
    assert out_la[0, 0].tolist() == [255, 255, 255] and out_la[3, 3].tolist() == [10, 10, 10]
    assert out_p[0, 0].tolist() == [255, 255, 255] and out_p[1, 1].tolist() == [0, 255, 0]


def test_cmyk_jpeg_and_tiff(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red
    paths = [_save(tmp_path / "c.tif", cmyk), _save(tmp_path / "c.jpg", cmyk, quality=95)]
    s = load_images(paths, short_side=None)
    for im in s.images:
        assert im.shape == (8, 8, 3)
        r, g, b = (int(v) for v in im[4, 4])
        assert r > 200 and g < 60 and b < 60


def test_16bit_grayscale_is_stretched_by_own_min_max(tmp_path: Path) -> None:
    ramp = np.linspace(1000, 3000, 16 * 8).reshape(8, 16).astype(np.uint16)
    i16 = _save(tmp_path / "ramp16.png", Image.fromarray(ramp))
    assert Image.open(i16).mode.startswith("I")  # PNG stores it as 16-bit
    flat = _save(tmp_path / "flat16.tif", Image.fromarray(np.full((4, 4), 5000, np.uint16)))
    f32 = _save(tmp_path / "f.tif", Image.fromarray(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)))
    s = load_images([i16, flat, f32], short_side=None)
    ramp_out, flat_out, f_out = s.images
    assert ramp_out.shape == (8, 16, 3)
    assert ramp_out.min() == 0 and ramp_out.max() == 255
    assert (ramp_out[..., 0] == ramp_out[..., 2]).all()
    assert (np.diff(ramp_out[0, :, 0].astype(int)) >= 0).all()
    assert (flat_out == 0).all()
    assert f_out[0, 0, 0] == 0 and f_out[3, 3, 0] == 255


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [_rgb(10, 10, (255, 0, 0)), _rgb(10, 10, (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50, loop=0)
    s = load_images([p], short_side=None)
    r, g, b = (int(v) for v in s.images[0][5, 5])
    assert r > 200 and b < 50


def test_webp_and_bmp(tmp_path: Path) -> None:
    paths = [_save(tmp_path / "w.webp", _rgb(12, 9), lossless=True), _save(tmp_path / "b.bmp", _rgb(12, 9))]
    s = load_images(paths, short_side=None)
    assert [im.shape for im in s.images] == [(9, 12, 3), (9, 12, 3)]
    assert s.images[0][0, 0].tolist() == [200, 30, 40] == s.images[1][0, 0].tolist()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    p = _save(tmp_path / "rot.jpg", im, exif=exif.tobytes(), quality=95)
    out = load_images([p], short_side=None).images[0]
    assert out.shape == (40, 20, 3)  # width/height swapped
    top, bottom = out[5, 10].astype(int), out[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60  # former left half (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_large_jpeg_uses_reduced_decode_and_exact_short_side(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:600, 0:800]
    arr = np.stack([xx * 255 // 800, yy * 255 // 600, np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    p = tmp_path / "big.jpg"
    p.write_bytes(_jpeg_bytes(Image.fromarray(arr), quality=95))
    out = load_images([p], short_side=64).images[0]
    assert out.shape == (64, 85, 3)
    reference = np.asarray(Image.fromarray(arr).resize((85, 64), Image.Resampling.BICUBIC), dtype=np.int16)
    assert np.abs(out.astype(np.int16) - reference).mean() < 3.0


def test_tiny_images_upscaled_and_short_side_none_keeps_size(tmp_path: Path) -> None:
    p = _save(tmp_path / "tiny.png", _rgb(8, 8))
    assert load_images([p], short_side=32).images[0].shape == (32, 32, 3)
    assert load_images([p], short_side=None).images[0].shape == (8, 8, 3)
    tall = _save(tmp_path / "tall.png", _rgb(10, 30))
    assert load_images([tall], short_side=20).images[0].shape == (60, 20, 3)


# ------------------------------------------------------------------------------------------------------
# load_images: broken files
# ------------------------------------------------------------------------------------------------------


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    good_bytes = _jpeg_bytes(Image.fromarray(noise))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good_bytes[: len(good_bytes) // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("this is not a jpeg\n")
    return {"truncated": truncated, "empty": empty, "text": text, "missing": tmp_path / "missing.png"}


def test_truncated_jpeg_is_named(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    good = _save(tmp_path / "ok.png")
    with pytest.raises(DataError) as err:
        load_images([good, bad["truncated"]], short_side=None)
    msg = str(err.value)
    assert "Could not read 1 of 2 files" in msg
    assert f"{bad['truncated']}: truncated image" in msg
    assert str(good) not in msg


def test_all_bad_files_listed_in_one_error(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    good = _save(tmp_path / "ok.png")
    with pytest.raises(DataError) as err:
        load_images([good, *bad.values()], short_side=16)
    msg = str(err.value)
    assert "Could not read 4 of 5 files" in msg
    assert f"{bad['empty']}: empty file (0 bytes)" in msg
    assert f"{bad['text']}: not an image" in msg
    assert f"{bad['missing']}: file does not exist" in msg
    assert str(bad["truncated"]) in msg
    assert msg.endswith("--skip-invalid with graft train; graft predict --output FILE skips and lists them.")


def test_skip_invalid_drops_and_reports(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    g1 = _save(tmp_path / "g1.png", _rgb(color=(1, 1, 1)))
    g2 = _save(tmp_path / "g2.png", _rgb(color=(2, 2, 2)))
    X = [bad["empty"], g1, bad["truncated"], bad["text"], g2]
    s = load_images(X, ["a", "b", "c", "d", "e"], short_side=None, skip_invalid=True)
    assert s.sources == [str(g1), str(g2)]
    assert s.labels == ["b", "e"]
    assert [int(im[0, 0, 0]) for im in s.images] == [1, 2]
    assert [src for src, _ in s.skipped] == [str(bad["empty"]), str(bad["truncated"]), str(bad["text"])]
    assert s.skipped[0][1] == "empty file (0 bytes)"
    assert all(reason for _, reason in s.skipped)


def test_skip_invalid_with_nothing_left_still_raises(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    with pytest.raises(DataError, match="None of the 2 files could be read"):
        load_images([bad["empty"], bad["text"]], short_side=None, skip_invalid=True)


def test_error_lists_at_most_20_files(tmp_path: Path) -> None:
    paths = []
    for i in range(23):
        p = tmp_path / f"e{i:02d}.jpg"
        p.write_bytes(b"")
        paths.append(p)
    with pytest.raises(DataError) as err:
        load_images(paths, short_side=None)
    msg = str(err.value)
    assert "Could not read 23 of 23 files" in msg
    assert str(paths[19]) in msg and str(paths[20]) not in msg
    assert "... and 3 more" in msg


# ------------------------------------------------------------------------------------------------------
# load_images: arrays and PIL images
# ------------------------------------------------------------------------------------------------------


def test_uint8_grey_array(tmp_path: Path) -> None:
    X = np.arange(2 * 4 * 6, dtype=np.uint8).reshape(2, 4, 6)
    s = load_images(X, np.array([0, 1]), short_side=None)
    assert s.sources == ["array[0]", "array[1]"]
    assert s.labels == ["0", "1"]
    assert s.images[1].shape == (4, 6, 3)
    assert np.array_equal(s.images[1][..., 0], X[1]) and np.array_equal(s.images[1][..., 2], X[1])
    assert s.skipped == []


def test_float_arrays_in_unit_and_byte_range() -> None:
    unit = np.full((3, 5, 5, 3), 0.5, np.float32)
    unit[0, 0, 0] = (1.0, 0.0, 0.2)
    out = load_images(unit, short_side=None).images
    assert out[0][0, 0].tolist() == [255, 0, 51]
    assert out[2][1, 1].tolist() == [128, 128, 128]
    byte_range = np.full((1, 5, 5, 1), 200.4, np.float64)
    assert load_images(byte_range, short_side=None).images[0][2, 2].tolist() == [200, 200, 200]


def test_bad_float_range_and_nan() -> None:
    normalised = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
    with pytest.raises(DataError, match=r"values in \[0, 1\] or \[0, 255\]"):
        load_images(normalised, short_side=None)
    with_nan = np.zeros((1, 4, 4), np.float32)
    with_nan[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        load_images(with_nan, short_side=None)


def test_rgba_array_composited_and_uint16_stretched() -> None:
    X = np.zeros((2, 4, 4, 4), np.uint8)
    X[..., 0] = 255
    X[..., 3] = 255
    X[0, 0, 0, 3] = 0
    out = load_images(X, ["r", "r"], short_side=None).images
    assert out[0].shape == (4, 4, 3)
    assert out[0][0, 0].tolist() == [255, 255, 255] and out[0][1, 1].tolist() == [255, 0, 0]
    deep = np.array([[[10, 112], [520, 10]]], np.uint16)
    grey = load_images(deep, short_side=None).images[0][..., 0]
    assert grey.tolist() == [[0, 51], [255, 0]]


def test_tiny_array_upscaled_to_short_side() -> None:
    X = np.random.default_rng(1).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    s = load_images(X, short_side=24)
    assert all(im.shape == (24, 24, 3) and im.dtype == np.uint8 for im in s.images)
    assert all(im.flags["C_CONTIGUOUS"] for im in s.images)


def test_bad_array_shapes() -> None:
    with pytest.raises(DataError, match="unsupported shape"):
        load_images(np.zeros((2, 4, 4, 2), np.uint8), short_side=None)
    with pytest.raises(DataError, match="unsupported shape"):
        load_images(np.zeros((4, 4), np.uint8), short_side=None)
    with pytest.raises(DataError, match="no images"):
        load_images(np.zeros((0, 4, 4), np.uint8), short_side=None)


def test_list_of_arrays_with_different_sizes() -> None:
    s = load_images([np.zeros((4, 6), np.uint8), np.full((10, 5, 3), 9, np.uint8)], short_side=None)
    assert [im.shape for im in s.images] == [(4, 6, 3), (10, 5, 3)]
    assert s.sources == ["array[0]", "array[1]"]


def test_pil_images_are_not_modified() -> None:
    rgba = Image.new("RGBA", (6, 3), (0, 255, 0, 0))
    grey = Image.new("L", (3, 6), 40)
    s = load_images([rgba, grey], ["x", "y"], short_side=6)
    assert s.sources == ["image[0]", "image[1]"]
    assert s.images[0].shape == (6, 12, 3) and s.images[0][0, 0].tolist() == [255, 255, 255]
    assert s.images[1].shape == (12, 6, 3) and s.images[1][0, 0].tolist() == [40, 40, 40]
    assert rgba.mode == "RGBA" and rgba.size == (6, 3)


def test_bad_inputs_and_labels(tmp_path: Path) -> None:
    p = _save(tmp_path / "a.png")
    with pytest.raises(DataError, match="mixes input types"):
        load_images([p, Image.new("RGB", (2, 2))], short_side=None)
    with pytest.raises(DataError, match="unsupported type"):
        load_images(42, short_side=None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="empty"):
        load_images([], short_side=None)
    with pytest.raises(DataError, match="2 images but 3 labels"):
        load_images([p, p], ["a", "b", "c"], short_side=None)
    with pytest.raises(DataError, match=r"y\[1\] is missing"):
        load_images([p, p], ["a", None], short_side=None)
    with pytest.raises(DataError, match=r"y\[0\] is missing"):
        load_images(np.zeros((2, 3, 3), np.uint8), np.array([np.nan, 1.0]), short_side=None)
    with pytest.raises(DataError, match=r"y\[1\] is an empty string"):
        load_images([p, p], ["a", "  "], short_side=None)
    with pytest.raises(DataError, match="short_side"):
        load_images([p], short_side=0)


# ------------------------------------------------------------------------------------------------------
# hashes and ImageSet
# ------------------------------------------------------------------------------------------------------


def test_hashes_stable_and_content_sensitive(tmp_path: Path) -> None:
    a = _save(tmp_path / "a.png", _rgb(color=(1, 2, 3)))
    a_copy = tmp_path / "copy_of_a.png"
    a_copy.write_bytes(a.read_bytes())
    b = _save(tmp_path / "b.png", _rgb(color=(1, 2, 4)))
    first = load_images([a, a_copy, b], short_side=8).hashes
    second = load_images([a, a_copy, b], short_side=None).hashes
    assert first == second  # computed on raw bytes, before resizing, same across runs
    assert first[0] == first[1] != first[2]
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in first)

    X = np.zeros((3, 4, 4), np.uint8)
    X[2, 0, 0] = 1
    h1 = load_images(X, short_side=None).hashes
    assert h1 == load_images(X.copy(), short_side=16).hashes
    assert h1[0] == h1[1] != h1[2]
    assert load_images(X.reshape(3, 2, 8), short_side=None).hashes[0] != h1[0]  # shape is part of the hash


def test_imageset_subset_and_len() -> None:
    X = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    s = load_images(X, ["a", "b", "c", "d"], short_side=None)
    sub = s.subset(np.array([3, 1]))
    assert isinstance(sub, ImageSet) and len(sub) == 2 and len(s) == 4
    assert sub.labels == ["d", "b"] and sub.sources == ["array[3]", "array[1]"]
    assert sub.hashes == [s.hashes[3], s.hashes[1]]
    assert sub.images[0] is s.images[3]
    unlabeled = load_images(np.zeros((2, 2, 2), np.uint8), short_side=None)
    assert unlabeled.labels is None and unlabeled.subset([1]).labels is None


# ------------------------------------------------------------------------------------------------------
# check_labels
# ------------------------------------------------------------------------------------------------------


def test_check_labels_ok_returns_sorted_classes() -> None:
    assert check_labels(["b", "a", "b", "a", "c", "c"], ["a", "c"]) == ["a", "b", "c"]


def test_check_labels_one_class() -> None:
    with pytest.raises(DataError, match="needs at least 2 classes; found only 'ants' in the training labels"):
        check_labels(["ants", "ants", "ants"])


def test_check_labels_too_few_per_class() -> None:
    with pytest.raises(DataError) as err:
        check_labels(["a", "a", "a", "b", "c"], min_per_class=2)
    msg = str(err.value)
    assert "at least 2 training examples" in msg and "'b' (1), 'c' (1)" in msg and "'a'" not in msg
    assert check_labels(["a", "b"], min_per_class=1) == ["a", "b"]


def test_check_labels_unseen_in_other_split() -> None:
    with pytest.raises(DataError) as err:
        check_labels(["a", "a", "b", "b"], ["a", "zebra", "zebra", "yak"], other_name="test")
    msg = str(err.value)
    assert "The test split has labels that never occur in train" in msg
    assert "'yak' (1), 'zebra' (2)" in msg


# ------------------------------------------------------------------------------------------------------
# stratified_split
# ------------------------------------------------------------------------------------------------------


def test_stratified_split_deterministic_and_covers_classes() -> None:
    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 2 + ["d"] * 1 + ["e"] * 40
    train, val = stratified_split(labels, 0.2, seed=7)
    assert (train, val) == stratified_split(labels, 0.2, seed=7)
    assert sorted(train + val) == list(range(len(labels)))
    assert not set(train) & set(val)
    assert train == sorted(train) and val == sorted(val)
    val_counts = {c: sum(labels[i] == c for i in val) for c in "abcde"}
    assert val_counts == {"a": 2, "b": 1, "c": 1, "d": 0, "e": 8}
    assert all(any(labels[i] == c for i in train) for c in "abcde")  # train keeps every class
    others = {tuple(stratified_split(labels, 0.2, seed=s)[1]) for s in range(5)}
    assert len(others) > 1  # the seed matters


def test_stratified_split_errors() -> None:
    with pytest.raises(DataError, match="between 0 and 1"):
        stratified_split(["a", "a", "b", "b"], 1.0, seed=0)
    with pytest.raises(DataError, match="none of the 2 classes has 2 or more"):
        stratified_split(["a", "b"], 0.5, seed=0)
