"""The admin in headless Chromium at desktop and phone widths: "Check now" shows the new
status, price list rows stay short, the index lists Providers first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from providers import circuit
from providers.models import HealthCheck
from tests.admin_helpers import browser_login, chromium
from tests.factories import make_mapping_row, make_mock_provider, make_price

pytestmark = [pytest.mark.browser]
WIDTHS = [1400, 400]
PASSWORD = "admin-pass-9876"


@pytest.fixture(scope="module", params=WIDTHS, ids=lambda w: f"{w}px")
def driver(request: Any) -> Iterator[Any]:
    """One Chromium per width for the module (starting one costs seconds)."""
    driver = chromium(width=request.param, height=900)
    driver.get("about:blank")
    assert driver.execute_script("return window.innerWidth") == request.param
    yield driver
    driver.quit()


@pytest.fixture
def admin_browser(driver: Any, live_server: Any, transactional_db: None) -> Iterator[Any]:
    """The browser, logged in as a fresh superuser (the database is new for each test)."""
    circuit.local_state_clear()
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    driver.delete_all_cookies()
    browser_login(driver, live_server.url, "root", PASSWORD)
    yield driver
    circuit.local_state_clear()


def test_check_now_shows_the_new_status(admin_browser: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By

    provider = make_mock_provider("in-process")
    admin_browser.get(f"{live_server.url}/admin/providers/provider/{provider.pk}/change/")
    status = admin_browser.find_element(By.CSS_SELECTOR, ".field-health_status .readonly")
    assert status.text == "not probed yet"

    admin_browser.find_element(By.ID, "check-now").click()

    assert admin_browser.current_url.endswith(f"/admin/providers/provider/{provider.pk}/change/")
    message = admin_browser.find_element(By.CSS_SELECTOR, "ul.messagelist li").text
    assert message.startswith("Checked now: “in-process”: healthy")
    status = admin_browser.find_element(By.CSS_SELECTOR, ".field-health_status .readonly")
    assert status.text == "healthy"
    probe = admin_browser.find_element(By.CSS_SELECTOR, ".field-last_probe .readonly").text
    assert probe.endswith(" UTC")
    assert HealthCheck.objects.filter(provider=provider, status="healthy").count() == 1


def test_price_list_rows_are_short(admin_browser: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By

    now = timezone.now()
    for alias in ("gpt-4o", "gpt-4o-mini", "claude-sonnet"):
        mapping = make_mapping_row(alias=alias, model=alias)
        make_price(mapping, effective_from=now - timedelta(days=3))
        make_price(mapping, effective_from=now + timedelta(days=3))

    admin_browser.get(f"{live_server.url}/admin/mappings/modelprice/")
    rows = admin_browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 6
    heights = [row.size["height"] for row in rows]
    assert max(heights) < 60, heights
    statuses = {
        cell.text for cell in admin_browser.find_elements(By.CSS_SELECTOR, "td.field-status_short")
    }
    assert statuses == {"in effect (locked)", "scheduled"}


def test_index_lists_providers_first(admin_browser: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By

    admin_browser.get(f"{live_server.url}/admin/")
    modules = admin_browser.find_elements(
        By.CSS_SELECTOR, "#content-main div.module[class*='app-']"
    )
    apps = [
        next(c for c in m.get_attribute("class").split() if c.startswith("app-")) for m in modules
    ]
    configuration = [a for a in apps if a != "app-operations"]
    assert configuration[0] == "app-providers", apps
    assert configuration.index("app-django_celery_beat") > configuration.index("app-usage")
    providers = admin_browser.find_element(By.CSS_SELECTOR, "div.app-providers")
    beat = admin_browser.find_element(By.CSS_SELECTOR, "div.app-django_celery_beat")
    assert providers.location["y"] < beat.location["y"]
    view_site = admin_browser.find_element(By.LINK_TEXT, "VIEW SITE")
    assert view_site.get_attribute("href") == f"{live_server.url}/ops/costs/"


def test_index_operations_block_fits_the_width(admin_browser: Any, live_server: Any) -> None:
    from selenium.webdriver.common.by import By

    admin_browser.get(f"{live_server.url}/admin/")
    link = admin_browser.find_element(By.LINK_TEXT, "Cost report")
    line = admin_browser.execute_script(
        "return parseFloat(getComputedStyle(arguments[0]).lineHeight)", link
    )
    assert link.size["height"] <= line * 1.5  # one line, not a letter per line
    width = admin_browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= admin_browser.execute_script("return window.innerWidth")
