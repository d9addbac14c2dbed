"""The page at ``/`` in a real browser (headless Chromium through Selenium): pick an image, see the top-k bars from one
real prediction round trip; the screenshot is kept in ``test-artifacts/`` (or ``$GRAFT_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

from tests.browser import headless_chromium, needs_chromium  # noqa: E402

ARTIFACTS = Path(os.environ.get("GRAFT_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(helpers: Any, tmp_path: Path) -> Any:
    import uvicorn

    from graft.serve import create_app

    data = helpers.write_class_folder(tmp_path / "data", n_classes=2, n_per_class=4)
    run = tmp_path / "run"
    helpers.tiny_classifier("feature-extraction", epochs=5, output_dir=run).fit(str(data))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(run), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}/", sorted(data.rglob("*.png"))[0]
    server.should_exit = True
    thread.join(timeout=10)


@needs_chromium
def test_page_predicts_a_dropped_image_in_chromium(server: tuple[str, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, image = server
    driver = headless_chromium(1000, 800)
    try:
        driver.get(url)
        WebDriverWait(driver, 20).until(ec.text_to_be_present_in_element((By.ID, "meta"), "image-classification"))
        driver.find_element(By.ID, "file").send_keys(str(image))
        rows = WebDriverWait(driver, 30).until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, ".prediction")))
        labels = [r.find_element(By.CSS_SELECTOR, ".label").text for r in rows]
        widths = [r.find_element(By.CSS_SELECTOR, ".bar").value_of_css_property("width") for r in rows]
        assert sorted(labels) == ["blue", "red"], labels
        assert driver.find_element(By.ID, "error").text == ""
        assert any(float(w.removesuffix("px")) > 0 for w in widths), widths
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "serve-page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 1000
    finally:
        driver.quit()
