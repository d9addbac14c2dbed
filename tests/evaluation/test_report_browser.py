"""report.html of a clinical image run renders in headless Chromium with every section (a screenshot is taken)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")

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
@pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)",
)
def test_report_renders_in_chromium_with_every_section(tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from tests.conftest import tiny_classifier, write_class_folder

    data = write_class_folder(tmp_path / "data", 2, 8, seed=5)
    tiny_classifier("fine-tune", epochs=1, clinical=True, output_dir=tmp_path / "run").fit(data)
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
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
