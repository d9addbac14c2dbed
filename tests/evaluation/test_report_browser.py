"""report.html renders in headless Chromium with every section (a screenshot is taken): a clinical image run, a text
run with its most confidently wrong examples, and `graft report` of a run with Choices, Rank and Compare results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _look(path: Path, sections: tuple[str, ...], shot: Path) -> list[str]:
    """Open ``path`` in headless Chromium: every heading of ``sections`` is there, every image decodes, and a
    screenshot is taken. Returns the texts of the table cells."""
    from selenium.webdriver.common.by import By

    driver = headless_chromium(1100, 900)
    try:
        driver.get(path.as_uri())
        headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
        for section in sections:
            assert section in headings, (section, headings)
        images = driver.find_elements(By.TAG_NAME, "img")
        assert images and all(driver.execute_script("return arguments[0].naturalWidth", im) > 0 for im in images)
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        return [td.text for td in driver.find_elements(By.TAG_NAME, "td")]
    finally:
        driver.quit()


@pytest.mark.slow
@needs_chromium
def test_text_and_choices_compare_reports_render_in_chromium(text_helpers: Any, tmp_path: Path) -> None:
    from tests.evaluation.test_report_sections import AUTO, COMPARE
    from typer.testing import CliRunner

    from graft.cli import app

    texts, labels = text_helpers.sentiment(40, seed=1)
    run = tmp_path / "run"
    text_helpers.tiny("bert", "feature-extraction", output_dir=run, epochs=1).fit(texts, labels)
    wrong = json.loads((run / "confident_errors.json").read_text())["examples"]
    cells = _look(
        run / "report.html",
        ("Run", "Metrics", "Training curves", "Calibration (validation)", "Most confidently wrong validation examples"),
        tmp_path / "text.png",
    )
    for example in wrong:  # the texts as written, not as markup
        assert example["text"] in cells

    manifest = json.loads((run / "graft.json").read_text())
    (run / "graft.json").write_text(json.dumps({**manifest, "auto": AUTO}))
    (run / "compare.json").write_text(json.dumps(COMPARE))
    (run / "rank.json").write_text(json.dumps(AUTO["rank"]))
    result = CliRunner().invoke(app, ["report", str(run), "-o", str(tmp_path / "choices.html")])
    assert result.exit_code == 0, result.output
    cells = _look(
        tmp_path / "choices.html",
        ("Run", "Metrics", "Training curves", "Choices", "Rank", "Compare"),
        tmp_path / "choices.png",
    )
    assert "<enough> labels & time" in cells and "efficientnet_lite1" in cells
