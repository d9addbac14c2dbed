"""report.html of a clinical image run renders in headless Chromium with every section (a screenshot is taken)."""

from __future__ import annotations

from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

from tests.browser import headless_chromium, needs_chromium  # noqa: E402

SECTIONS = (
    "Run",
    "Metrics",
    "Data",
    "Per class",
    "Clinical metrics",
    "Confusion matrix (validation)",
    "Training curves",
    "Calibration (validation)",
)


@pytest.mark.slow
@needs_chromium
def test_report_renders_in_chromium_with_every_section(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from tests.conftest import tiny_classifier, write_class_folder

    data = write_class_folder(tmp_path / "data", 2, 8, seed=5)
    tiny_classifier("fine-tune", epochs=1, clinical=True, output_dir=tmp_path / "run").fit(data)
    driver = headless_chromium(1100, 900)
    try:
        driver.get((tmp_path / "run" / "report.html").as_uri())
        headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
        for section in SECTIONS:
            assert section in headings, (section, headings)
        images = driver.find_elements(By.TAG_NAME, "img")
        assert images and all(driver.execute_script("return arguments[0].naturalWidth", im) > 0 for im in images)
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
