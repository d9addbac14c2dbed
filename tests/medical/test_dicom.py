"""DICOM decoding (Modality LUT, windowing, MONOCHROME1, refusals without patient data) and the percentile window
shared with 16-bit PNG/TIFF."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import FileDataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import (  # noqa: E402
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from graft.data.dicom import _detail, decode_dicom, percentile_window, robust_to_uint8  # noqa: E402
from graft.data.image_folders import find_splits  # noqa: E402
from graft.data.images import load_images  # noqa: E402
from graft.errors import ConfigError, DataError  # noqa: E402

PATIENT = "Zyxwvut^Qponmlk"
PATIENT_ID = "PID-98765-XYZ"


def _dataset(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    transfer_syntax: str = ExplicitVRLittleEndian,
    frames: int = 1,
    uid: str | None = None,
    **attrs: Any,
) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid or generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = FileDataset("test.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = PATIENT
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.Modality = "CT"
    if pixels is not None:
        rgb = pixels.ndim == 3 + (frames > 1)
        ds.Rows, ds.Columns = pixels.shape[-3:-1] if rgb else pixels.shape[-2:]
        ds.SamplesPerPixel = 3 if rgb else 1
        if rgb:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        bits = pixels.dtype.itemsize * 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
        ds.PixelRepresentation = int(pixels.dtype.kind == "i")
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PixelData = encapsulate([b"\0" * 10]) if UID(transfer_syntax).is_compressed else pixels.tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def _save(ds: FileDataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _bytes(ds: FileDataset, tmp_path: Path) -> bytes:
    return _save(ds, tmp_path / f"{generate_uid()}.dcm").read_bytes()


def _load_error(path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_images([path], short_side=None)
    message = str(info.value)
    assert str(path) in message
    return message


def test_rescale_then_file_window(tmp_path: Path) -> None:
    stored = np.array([[0, 350, 500], [650, 1000, 0]], np.uint16)  # -> -1000, -300, 0, 300, 1000, -1000 HU
    ds = _dataset(stored, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0.5, WindowWidth=1001)
    gray = decode_dicom(_bytes(ds, tmp_path))
    assert gray.dtype == np.uint8 and gray.shape == (2, 3, 3) and gray.flags["C_CONTIGUOUS"]
    assert (gray[..., 0] == gray[..., 2]).all()
    # LINEAR: y = (x - (c - 0.5)) / (w - 1) + 0.5 = x / 1000 + 0.5
    assert gray[..., 0].tolist() == [[0, 51, 128], [204, 255, 0]]
    ds_multi = _dataset(stored, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=[0.5, 40], WindowWidth=[1001, 80])
    assert decode_dicom(_bytes(ds_multi, tmp_path))[..., 0].tolist() == [[0, 51, 128], [204, 255, 0]]


def test_caller_window_only_without_file_window(tmp_path: Path) -> None:
    stored = np.array([[0, 350, 650, 1000]], np.uint16)
    plain = _bytes(_dataset(stored, RescaleSlope=2, RescaleIntercept=-1000), tmp_path)
    assert decode_dicom(plain, window=(0.5, 1001))[0, :, 0].tolist() == [0, 51, 204, 255]
    assert decode_dicom(plain)[0, :, 0].tolist() == [0, 89, 166, 255]  # percentile window = min/max here
    tagged = _bytes(_dataset(stored, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=2), tmp_path)
    assert decode_dicom(tagged, window=(0.5, 1001))[0, :, 0].tolist() == [0, 0, 255, 255]
    with pytest.raises(ConfigError, match="positive width"):
        decode_dicom(plain, window=(40, 0))


def test_monochrome1_inverted(tmp_path: Path) -> None:
    stored = np.arange(0, 1200, 100, dtype=np.uint16).reshape(3, 4)
    mono2 = decode_dicom(_bytes(_dataset(stored, WindowCenter=600, WindowWidth=800), tmp_path))
    mono1 = decode_dicom(
        _bytes(_dataset(stored, photometric="MONOCHROME1", WindowCenter=600, WindowWidth=800), tmp_path)
    )
    assert mono2[0, 0, 0] == 0 and mono2[2, 3, 0] == 255
    assert (mono1.astype(int) == 255 - mono2.astype(int)).all()
    assert mono1[0, 0].tolist() == [255, 255, 255]


def _voi_lut(descriptor: list[int], data: list[int], vr: str = "OW") -> Any:
    """A VOI LUT Sequence of one table, its data as 16-bit words (OW) or as a list of numbers (US)."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    item = Dataset()
    item.LUTDescriptor = descriptor
    item.add(DataElement(0x00283006, vr, np.asarray(data, "<u2").tobytes() if vr == "OW" else data))
    return [item]


def test_voi_lut_sequence(tmp_path: Path) -> None:
    # a 12-bit image through an 8-bit table of 4,096 entries (entry i = i // 16) that starts at input 100
    stored = np.array([[0, 100, 400, 4095, 4195, 5000]], np.uint16)
    data = [i // 16 for i in range(4096)]
    table = _voi_lut([4096, 100, 8], data)
    gray = decode_dicom(_bytes(_dataset(stored, VOILUTSequence=table), tmp_path))
    assert gray[0, :, 0].tolist() == [0, 0, 18, 249, 255, 255]  # below the first input: entry 0; past the end: last
    mono1 = decode_dicom(_bytes(_dataset(stored, photometric="MONOCHROME1", VOILUTSequence=table), tmp_path))
    assert (mono1[..., 0].astype(int) == 255 - gray[..., 0]).all()
    # a 16-bit table scales from 65,535; the file's window, when it has one, comes first
    wide = _voi_lut([4096, 0, 16], [i * 16 for i in range(4096)], vr="US")
    wide_gray = decode_dicom(_bytes(_dataset(stored, VOILUTSequence=wide), tmp_path))
    assert wide_gray[0, 2, 0] == round(400 * 16 * 255 / 65535)
    both = _dataset(stored, VOILUTSequence=table, WindowCenter=2048, WindowWidth=4096)
    assert decode_dicom(_bytes(both, tmp_path))[0, :, 0].tolist()[:3] == [0, 6, 25]
    # the table is used before a window passed by the caller
    assert decode_dicom(_bytes(_dataset(stored, VOILUTSequence=table), tmp_path), window=(0, 2))[0, 2, 0] == 18
    # a signed image: the table's first input is negative (LUT Descriptor read as SS)
    signed = _dataset(np.array([[-2000, -1024, 0, 3071]], np.int16), VOILUTSequence=_voi_lut([4096, -1024, 8], data))
    assert decode_dicom(_bytes(signed, tmp_path))[0, :, 0].tolist() == [0, 0, 64, 255]
    short = _save(_dataset(stored, VOILUTSequence=_voi_lut([4096, 0, 8], [0, 1, 2])), tmp_path / "short.dcm")
    message = _load_error(short)
    assert "VOI LUT Sequence" in message and "4096 entries" in message and "3 entries" in message
    assert PATIENT not in message


def test_16bit_without_window_uses_percentiles(tmp_path: Path) -> None:
    stored = np.linspace(1000, 2000, 64 * 64).reshape(64, 64).astype(np.uint16)
    stored[0, 0] = 65535  # one hot pixel
    gray = decode_dicom(_bytes(_dataset(stored), tmp_path))[..., 0]
    assert gray[0, 0] == 255
    assert gray[0, 1] <= 1 and gray[-1, -1] == 255
    assert 120 <= gray[32, 0] <= 135  # mid-range value stays mid-gray (min/max stretching would give ~2)
    low, high = percentile_window(stored)
    assert 1000 <= low <= 1010 and 1990 <= high <= 2000


def test_rgb_and_ybr(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 1] = (10, 200, 30)
    out = decode_dicom(_bytes(_dataset(rgb, photometric="RGB"), tmp_path))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 1].tolist() == [10, 200, 30]
    ybr = np.zeros((2, 2, 3), np.uint8)
    ybr[...] = (76, 85, 255)  # pure red in YBR_FULL
    r, g, b = (int(v) for v in decode_dicom(_bytes(_dataset(ybr, photometric="YBR_FULL"), tmp_path))[1, 1])
    assert r >= 250 and g <= 5 and b <= 5


def test_multi_frame_refused(tmp_path: Path) -> None:
    frames = np.zeros((2, 4, 4), np.uint16)
    path = _save(_dataset(frames, frames=2), tmp_path / "cine.dcm")
    message = _load_error(path)
    assert "multi-frame DICOM (2 frames)" in message and "one frame per file" in message
    assert PATIENT not in message and PATIENT_ID not in message


def test_missing_pixel_data(tmp_path: Path) -> None:
    path = _save(_dataset(None), tmp_path / "report.dcm")
    message = _load_error(path)
    assert "DICOM file has no pixel data (no (7FE0,0010) element)" in message


def test_compressed_syntax_named(tmp_path: Path) -> None:
    broken = _save(_dataset(np.zeros((4, 4), np.uint16), transfer_syntax=JPEG2000), tmp_path / "j2k.dcm")
    message = _load_error(broken)
    assert "'JPEG 2000 Image Compression' (1.2.840.10008.1.2.4.91)" in message
    assert "pip install pylibjpeg" in message and "gdcm" in message and "\n  - " in message
    no_handler = _save(_dataset(np.zeros((4, 4), np.uint16), transfer_syntax=JPEGLSLossless), tmp_path / "jls.dcm")
    message = _load_error(no_handler)
    assert "'JPEG-LS Lossless Image Compression' (1.2.840.10008.1.2.4.80)" in message
    assert "pip install pylibjpeg pylibjpeg-libjpeg" in message


def test_patient_data_never_in_messages(tmp_path: Path) -> None:
    truncated = _dataset(np.zeros((8, 8), np.uint16))
    truncated.PixelData = b"\0" * 10  # far fewer bytes than 8 x 8 x 2
    files = [
        _save(_dataset(np.zeros((2, 4, 4), np.uint16), frames=2), tmp_path / "a.dcm"),
        _save(_dataset(None), tmp_path / "b.dcm"),
        _save(_dataset(np.zeros((4, 4), np.uint16), transfer_syntax=JPEG2000), tmp_path / "c.dcm"),
        _save(truncated, tmp_path / "d.dcm"),
    ]
    with pytest.raises(DataError) as info:
        load_images(files, short_side=None)
    message = str(info.value)
    assert "Could not read 4 of 4 files" in message and "cannot decode the DICOM pixel data" in message
    for secret in (PATIENT, "Zyxwvut", "Qponmlk", PATIENT_ID, "19700101"):
        assert secret not in message
    read_back = pydicom.dcmread(files[0])  # elements still raw, as when decoding
    detail = _detail(ValueError(f"bad value {PATIENT} / {PATIENT_ID} at <obj at 0x7f00>"), read_back)
    assert detail == "bad value <redacted> / <redacted> at <data>"


def test_16bit_png_percentile_window(tmp_path: Path) -> None:
    ramp = np.linspace(1000, 2000, 64 * 64).reshape(64, 64).astype(np.uint16)
    ramp[0, 0] = 65535
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I;16")
    out = load_images([path], short_side=None).images[0]
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert (out[..., 0] == robust_to_uint8(ramp)).all()
    assert out[0, 0, 0] == 255 and 120 <= out[32, 0, 0] <= 135
    in_memory = load_images(ramp[None], short_side=None).images[0]
    assert (in_memory == out).all()


def test_dicom_folder_and_magic_detection(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("normal", "nodule"):
        for i in range(2):
            data = rng.integers(0, 4096, (12, 16), dtype=np.uint16)
            _save(_dataset(data, WindowCenter=2048, WindowWidth=4096), tmp_path / "ct" / cls / f"{i}.dcm")
    (tmp_path / "ct" / "normal" / "notes.txt").write_text("not an image")
    paths, labels = find_splits(tmp_path / "ct")["train"]
    assert len(paths) == 4 and all(p.endswith(".dcm") for p in paths)
    assert sorted(set(labels)) == ["nodule", "normal"]
    s = load_images(tmp_path / "ct", short_side=8)
    assert len(s) == 4 and all(im.dtype == np.uint8 and im.shape == (8, 11, 3) for im in s.images)
    no_ext = _save(_dataset(np.full((4, 4), 7, np.uint16), WindowCenter=7, WindowWidth=2), tmp_path / "scan.img")
    assert load_images([no_ext], short_side=None).images[0][0, 0].tolist() == [255, 255, 255]
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"hello, not dicom" * 20)
    assert "not a DICOM file" in _load_error(fake)


def test_missing_pydicom_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(_dataset(np.zeros((4, 4), np.uint16)), tmp_path / "x.dcm")
    monkeypatch.setitem(sys.modules, "pydicom", None)
    message = _load_error(path)
    assert 'reading DICOM needs pydicom: pip install "graft[medical]"' in message


@pytest.mark.slow
def test_the_server_reads_dicom_as_predict_does(helpers: Any, tmp_path: Path) -> None:
    """A DICOM upload gets the probabilities ``predict_proba`` gives for the same file; a file Graft refuses gets a
    400 that says why, without patient data."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    import graft
    from graft.serve import ServeConfig, create_app

    run = tmp_path / "run"
    helpers.tiny_classifier("feature-extraction", epochs=2, output_dir=run).fit(
        str(helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=3))
    )
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7) % 4096
    path = _save(_dataset(ramp, RescaleSlope=1, RescaleIntercept=-1024), tmp_path / "ct.dcm")
    model = graft.load(run)
    expected = model.predict_proba([str(path)])[0]
    labels = [str(c) for c in model.classes_]
    cine = _bytes(_dataset(np.zeros((2, 8, 8), np.uint16), frames=2), tmp_path)
    with TestClient(create_app(run, config=ServeConfig(top_k=len(labels)))) as client:
        answer = client.post("/predict", files=[("file", ("ct.dcm", path.read_bytes(), "application/dicom"))])
        assert answer.status_code == 200, answer.text
        top = {t["label"]: t["probability"] for t in answer.json()["predictions"][0]["top_k"]}
        np.testing.assert_allclose([top[c] for c in labels], expected, atol=1e-5)
        refused = client.post("/predict", files=[("file", ("cine.dcm", cine, "application/dicom"))])
    assert refused.status_code == 400 and "multi-frame DICOM (2 frames)" in refused.json()["error"]
    assert PATIENT not in refused.text and PATIENT_ID not in refused.text
