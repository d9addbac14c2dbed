"""Headless Chromium for the tests that look at Graft's pages (Debian: apt-get install chromium chromium-driver)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)",
)


def headless_chromium(width: int, height: int) -> Any:
    """A selenium driver of headless Chromium with a ``width`` x ``height`` window; the caller quits it."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
