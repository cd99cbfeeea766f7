"""The cost report in headless Chromium: log in as staff, see the total and the chart, switch
the grouping, keep a screenshot (test-artifacts/, gitignored)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from gateway.reports.selectors import ReportFilters, cost_report, preset_range
from gateway.reports.services import rollups_update
from gateway.reports.templatetags.ops import usd
from tests.conftest import missing_service
from tests.reports.helpers import seed_usage

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")) or not Path(CHROMEDRIVER).exists():
        missing_service(f"headless Chromium ({CHROMIUM} and {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1400,1100",
    ):
        options.add_argument(arg)
    # An explicit driver path: Selenium Manager never runs (and never downloads anything).
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def test_cost_report_in_a_browser(live_server: Any, browser: Any, transactional_db: None) -> None:
    from selenium.webdriver.common.by import By

    seed_usage(days=5, per_day=15)
    rollups_update(days_back=4)
    start, end = preset_range("30d")
    expected = cost_report(filters=ReportFilters(start=start, end=end), group_by="provider")
    get_user_model().objects.create_user(username="ops", password="ops-pass-9876", is_staff=True)

    browser.get(live_server.url + "/ops/costs/")
    assert "/admin/login/" in browser.current_url  # staff login first
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("ops-pass-9876")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert browser.current_url.endswith("/ops/costs/")

    total = browser.find_element(By.ID, "total-cost").text
    assert total == usd(expected.total.cost_rounded)
    assert browser.find_element(By.ID, "total-requests").text == f"{expected.total.requests:,}"
    chart = browser.find_element(By.ID, "cost-chart")
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.seg")
    assert bars and all(float(b.get_attribute("height")) > 0 for b in bars)
    assert chart.size["height"] > 100  # rendered, not collapsed

    browser.find_element(By.CSS_SELECTOR, '#group-tabs a[data-group="alias"]').click()
    assert "group_by=alias" in browser.current_url
    keys = [
        tr.get_attribute("data-key")
        for tr in browser.find_elements(By.CSS_SELECTOR, "#report-table tbody tr[data-key]")
    ]
    assert sorted(keys) == ["claude", "gpt-4o", "gpt-4o-mini"]
    assert browser.find_element(By.ID, "total-cost").text == total  # same money, regrouped
    assert browser.find_elements(By.CSS_SELECTOR, "#cost-chart rect.seg")

    ARTIFACTS.mkdir(exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, max(int(height) + 40, 800))
    path = ARTIFACTS / "cost_report_by_alias.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
