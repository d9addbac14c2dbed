"""The HTTP server: predictions for images (multipart) and texts (JSON), metadata, micro-batching, and a 4xx answer
naming the problem for every malformed request, after which the server keeps serving."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from graft.serve import ServeConfig, create_app  # noqa: E402
from graft.serve.batching import MicroBatcher  # noqa: E402


@pytest.fixture(scope="module")
def image_run(helpers: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("serve")
    data = helpers.write_class_folder(root / "data", n_classes=2, n_per_class=4)
    run = root / "run"
    helpers.tiny_classifier("feature-extraction", epochs=5, output_dir=run).fit(str(data))
    return run, data


@pytest.fixture(scope="module")
def text_run(text_helpers: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("serve-text") / "run"
    X, y = text_helpers.sentiment(24)
    text_helpers.tiny("bert", "feature-extraction", epochs=3, output_dir=run).fit(X, y)
    return run


def _png(data: Path) -> bytes:
    return sorted(data.rglob("*.png"))[0].read_bytes()


def test_image_predictions_metadata_and_page(image_run: tuple[Path, Path]) -> None:
    run, data = image_run
    client = TestClient(create_app(run))
    assert client.get("/health").json() == {"status": "ok"}
    meta = client.get("/metadata").json()
    assert meta["task"] == "image-classification" and meta["modality"] == "image" and len(meta["labels"]) == 2
    files = [("file", ("a.png", _png(data), "image/png")), ("file", ("b.png", _png(data), "image/png"))]
    answer = client.post("/predict?top_k=1", files=files)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == 2 and len(predictions[0]["top_k"]) == 1
    assert predictions[0]["label"] in meta["labels"] and 0 <= predictions[0]["top_k"][0]["probability"] <= 1
    page = client.get("/")
    assert page.status_code == 200 and "Drop an image" in page.text
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(("backend", "decode_threads"), [("torch", None), ("torch", 1), ("openvino", None)])
def test_served_probabilities_are_the_models(
    image_run: tuple[Path, Path], backend: str, decode_threads: int | None
) -> None:
    """Images decoded on the event loop or beside the model (a pool of decode threads) give the probabilities of
    ``predict_proba`` on the same files, one per request or several in one."""
    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
        pytest.importorskip("onnxscript")
    import numpy as np

    import graft

    run, data = image_run
    paths = sorted(data.rglob("*.png"))[:3]
    expected = graft.load(run).predict_proba([str(p) for p in paths])
    labels = [str(c) for c in graft.load(run).classes_]
    config = ServeConfig(model_threads=1, decode_threads=decode_threads, top_k=len(labels))
    with TestClient(create_app(run, config=config, backend=backend)) as client:
        files = [("file", (p.name, p.read_bytes(), "image/png")) for p in paths]
        together = client.post("/predict", files=files).json()["predictions"]
        alone = [client.post("/predict", files=[f]).json()["predictions"][0] for f in files]
    for answers in (together, alone):
        got = np.array([[{t["label"]: t["probability"] for t in a["top_k"]}[c] for c in labels] for a in answers])
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_server_thread_settings_are_checked() -> None:
    from graft.errors import ConfigError

    with pytest.raises(ConfigError, match="model_threads must be an integer of at least 1; got 0"):
        ServeConfig(model_threads=0)
    with pytest.raises(ConfigError, match="decode_threads must be an integer of at least 0"):
        ServeConfig(decode_threads=True)


def test_decoded_images_of_another_size_are_refused(image_run: tuple[Path, Path]) -> None:
    import numpy as np

    import graft
    from graft.data.images import ImageSet
    from graft.errors import DataError

    model = graft.load(image_run[0])
    size = model._preprocessing().resize_size
    wrong = ImageSet([np.zeros((size + 1, size + 5, 3), np.uint8)], None, ["a.png"], ["0"])
    with pytest.raises(DataError, match=f"'a.png' has shape .*short_side={size}"):
        model.predict_proba(wrong)
    right = ImageSet([np.zeros((size, size + 5, 3), np.uint8)], None, ["a.png"], ["0"])
    assert model.predict_proba(right).shape == (1, len(model.classes_))


def test_text_predictions(text_run: Path) -> None:
    client = TestClient(create_app(text_run))
    answer = client.post("/predict", json={"texts": ["a good film", "a bad film"]})
    assert answer.status_code == 200, answer.text
    assert [len(p["top_k"]) for p in answer.json()["predictions"]] == [2, 2]
    single = client.post("/predict", json={"text": "fine"})
    assert single.status_code == 200 and len(single.json()["predictions"]) == 1


@pytest.mark.parametrize(
    ("request_kwargs", "status", "needle"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "not JSON"),
        ({"json": {"texts": "one string"}}, 422, "non-empty list of strings"),
        ({"json": {"texts": [1, 2]}}, 422, "non-empty list of strings"),
        ({"json": {"text": ["a", "b"]}}, 422, '"text" takes one; send a list as "texts"'),
        ({"json": {"wrong": ["x"]}}, 422, '{"texts"'),
        ({"json": {"texts": []}}, 422, "non-empty list"),
        ({"json": {"texts": ["  "]}}, 422, "text 0 is empty"),
        ({"json": {"texts": ["x" * 10_001]}}, 413, "10001 characters"),
        ({"json": {"texts": ["x"] * 65}}, 413, "65 texts"),
        ({"content": b"x" * (2 * 1024 * 1024), "headers": {"content-type": "application/json"}}, 413, "MB limit"),
    ],
)
def test_malformed_text_requests_get_4xx_and_the_server_keeps_serving(
    text_run: Path, request_kwargs: dict[str, Any], status: int, needle: str
) -> None:
    client = TestClient(create_app(text_run, config=ServeConfig(max_body_mb=1)))
    answer = client.post("/predict", **request_kwargs)
    assert answer.status_code == status, answer.text
    assert needle in answer.json()["error"]
    assert client.post("/predict", json={"texts": ["still serving"]}).status_code == 200


def test_malformed_image_requests(image_run: tuple[Path, Path]) -> None:
    run, data = image_run
    client = TestClient(create_app(run))
    cases = [
        ({"files": [("file", ("x.jpg", b"not an image at all", "image/jpeg"))]}, 400, "not an image"),
        ({"files": [("file", ("x.png", b"", "image/png"))]}, 400, "is empty"),
        ({"json": {"texts": ["an image model"]}}, 415, "multipart/form-data"),
        ({"data": {"field": "value"}, "files": [("other", ("t.txt", b"", "text/plain"))]}, 400, "is empty"),
    ]
    for kwargs, status, needle in cases:
        answer = client.post("/predict", **kwargs)
        assert answer.status_code == status, (kwargs, answer.text)
        assert needle in answer.json()["error"]
    assert client.post("/predict", files=[("file", ("a.png", _png(data), "image/png"))]).status_code == 200


def test_api_key(text_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFT_TEST_KEY", "s3cret")
    client = TestClient(create_app(text_run, config=ServeConfig(api_key_env="GRAFT_TEST_KEY")))
    assert client.get("/health").status_code == 200
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer s3cre"}):
        answer = client.post("/predict", json={"texts": ["x"]}, headers=headers)
        assert answer.status_code == 401 and "API key" in answer.json()["error"]
    assert client.post("/predict", json={"texts": ["x"]}, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/metadata", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    monkeypatch.delenv("GRAFT_TEST_KEY")
    from graft.errors import ConfigError

    with pytest.raises(ConfigError, match="GRAFT_TEST_KEY"):
        create_app(text_run, config=ServeConfig(api_key_env="GRAFT_TEST_KEY"))


def test_micro_batching_joins_concurrent_requests_and_keeps_their_order() -> None:
    calls: list[int] = []

    def double(items: list[int]) -> list[int]:
        calls.append(len(items))
        return [2 * i for i in items]

    async def main() -> list[list[int]]:
        batcher = MicroBatcher(double, max_batch=8, max_wait=0.05)
        results = await asyncio.gather(*(batcher.submit([i, 100 + i]) for i in range(10)))
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert results == [[2 * i, 2 * (100 + i)] for i in range(10)]
    assert sum(calls) == 20 and max(calls) <= 8 and len(calls) <= 4, calls  # 20 items in batches of up to 8


def test_a_batch_waits_for_requests_being_decoded_but_not_for_absent_ones() -> None:
    calls: list[list[int]] = []

    def record(items: list[int]) -> list[int]:
        calls.append(list(items))
        return items

    async def late(batcher: MicroBatcher) -> list[int]:
        with batcher.arriving():  # e.g. its image is being decoded
            await asyncio.sleep(0.2)
        return await batcher.submit([2])

    async def main() -> float:
        batcher = MicroBatcher(record, max_batch=8, max_wait=5.0)
        arriving = asyncio.create_task(late(batcher))
        await asyncio.sleep(0)  # the late request has been accepted
        assert await asyncio.gather(batcher.submit([1]), arriving) == [[1], [2]]
        t0 = time.perf_counter()
        assert await batcher.submit([3]) == [3]  # nobody else is on the way: no wait
        await batcher.close()
        return time.perf_counter() - t0

    assert asyncio.run(main()) < 1.0
    assert calls == [[1, 2], [3]]


def test_a_failing_batch_answers_its_requests_with_the_error() -> None:
    def boom(items: list[int]) -> list[int]:
        raise ValueError("broken model")

    async def main() -> None:
        batcher = MicroBatcher(boom, max_batch=4, max_wait=0.01)
        with pytest.raises(ValueError, match="broken model"):
            await batcher.submit([1])
        await batcher.close()

    asyncio.run(main())


def test_a_lone_request_does_not_wait_for_others() -> None:
    async def main() -> float:
        batcher = MicroBatcher(lambda items: items, max_batch=8, max_wait=2.0)
        t0 = time.perf_counter()
        for i in range(3):  # one client, one request after the other
            assert await batcher.submit([i]) == [i]
        await batcher.close()
        return time.perf_counter() - t0

    assert asyncio.run(main()) < 1.0  # the 2 s wait applies only once several requests share passes
