"""Every /ops page (and the admin's provider, key and mapping pages) in headless Chromium,
served by the real ASGI server (``manage.py serve``) so the playground streams as in
production: no page overflows a 400 px phone, axe-core finds no serious or critical
violation in light and dark, the request log's filters narrow the rows, the playground streams
an answer from the loopback fake upstream. Screenshots (light, dark, phone) go to
``test-artifacts/screenshots``, or to ``OPS_SCREENSHOTS_DIR`` (``make screenshots``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from gateway.keys.models import VirtualKey
from gateway.reports.services import rollups_update
from mappings.models import ModelProviderMapping
from providers.models import HealthCheck, Provider
from tests.conftest import missing_service
from tests.e2e.conftest import GatewayServer, publish, start_gateway
from tests.factories import make_mapping, make_price, make_provider, make_usage
from tests.fakes.upstream import FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401
from tests.reports.helpers import seed_usage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(
    os.environ.get("OPS_SCREENSHOTS_DIR")
    or Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
)
WIDE, PHONE = 1400, 400
PHONE_MAX_HEIGHT = 2600
BLOCKING = ("serious", "critical")


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        missing_service(f"headless Chromium ({CHROMIUM} and {CHROMEDRIVER})")
    if not AXE.exists():
        missing_service(f"axe-core ({AXE}; npm ci)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        f"--window-size={WIDE},900",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(3)
    yield driver
    driver.quit()


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[GatewayServer]:
    # Usage written by the server itself, so the playground's run lands in the request log.
    gw = start_gateway(
        tmp_path / "server.log", GATEWAY_USAGE_QUEUE="gateway.usage.queues.DatabaseUsageQueue"
    )
    yield gw
    gw.stop()


def _login(browser: Any, server: GatewayServer) -> None:
    client = Client()
    # A superuser: the admin's change pages need model permissions, the ops pages staff only.
    client.force_login(get_user_model().objects.create_superuser("ops", password="pw-0123456789"))
    browser.get(server.url + "/health/live")
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": session, "path": "/"})


def _theme(browser: Any, theme: str) -> None:
    browser.execute_script("localStorage.setItem('theme', arguments[0])", theme)


def _axe(browser: Any) -> list[str]:
    browser.execute_script(AXE.read_text())
    violations = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations));"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in BLOCKING
    ]


def _overflow(browser: Any) -> tuple[int, int]:
    return browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )


def _shot(browser: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 5_000


def _seed(fake: FakeUpstream) -> dict[str, Any]:
    world = seed_usage(days=8, per_day=20)
    rollups_update(days_back=7)
    now = timezone.now()
    down_error = "HTTP 401: invalid api key [redacted]"
    for provider, status, error in (
        (world.providers[0], "healthy", ""),
        (world.providers[1], "down", down_error),
    ):
        HealthCheck.objects.bulk_create(
            HealthCheck(
                provider=provider,
                status=status if i % 5 else "degraded",
                probe="models",
                latency_ms=100 + (i * 37) % 400,
                error_message=error,
                checked_at=now - timedelta(hours=1 + i * 3),
            )
            for i in range(50)
        )
    live = make_provider("fake-openai", "openai", upstream_url=fake.url)
    mapping = make_mapping("demo-chat", live, "fake-gpt")
    make_price(mapping)
    return {"world": world, "mapping": mapping}


def test_ops_pages_in_a_browser(
    server: GatewayServer,
    browser: Any,
    fake_upstream: FakeUpstream,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    seeded = _seed(fake_upstream)
    publish(server, expect={"demo-chat"})
    _login(browser, server)
    world = seeded["world"]
    record = world.records[-1]
    pages = {
        "costs": "/ops/costs/",
        "requests": "/ops/requests/",
        "request-detail": f"/ops/requests/{record.pk}/",
        "health": "/ops/health/",
        "health-7d": "/ops/health/?window=7d",
        "playground": "/ops/playground/",
    }
    vkey = VirtualKey.objects.order_by("pk").first()
    mapping = ModelProviderMapping.objects.order_by("pk").first()
    assert vkey is not None and mapping is not None
    admin_pages = {
        "admin-index": "/admin/",
        "admin-provider": f"/admin/providers/provider/{world.providers[0].pk}/change/",
        "admin-virtual-key": f"/admin/gateway/virtualkey/{vkey.pk}/change/",
        "admin-mapping": f"/admin/mappings/modelprovidermapping/{mapping.pk}/change/",
    }
    problems: list[str] = []
    for name, path in {**pages, **admin_pages}.items():
        for theme in ("light", "dark"):
            browser.set_window_size(WIDE, 900)
            browser.get(server.url + path)
            _theme(browser, theme)
            browser.refresh()
            assert "/admin/login/" not in browser.current_url, name
            assert "Forbidden" not in browser.title and "Not Found" not in browser.title, name
            assert browser.find_elements("css selector", "main, #content"), name
            problems += [f"{name} [{theme}] {v}" for v in _axe(browser)]
            if name in pages or name == "admin-index":
                _shot(browser, f"{name}-{theme}")
        if name in pages:
            _theme(browser, "light")
            browser.set_window_size(PHONE, 860)
            browser.get(server.url + path)
            width, viewport = _overflow(browser)
            if width > viewport:
                problems.append(f"{name}: {width}px wide in a {viewport}px viewport")
            # The whole page (up to a limit): on a phone the cost chart becomes a list far down.
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(PHONE, min(int(height), PHONE_MAX_HEIGHT))
            _shot(browser, f"{name}-phone")
    assert not problems, "\n".join(problems)

    # The OS preference alone (theme "auto") turns the ops pages dark.
    browser.set_window_size(WIDE, 900)
    browser.get(server.url + "/ops/costs/")
    _theme(browser, "auto")
    dark = [{"name": "prefers-color-scheme", "value": "dark"}]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": dark})
    browser.refresh()
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(11, 17, 32)", background
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    # The header's toggle cycles auto -> light -> dark and shares the admin's setting.
    browser.find_element(By.ID, "theme-toggle").click()
    browser.find_element(By.ID, "theme-toggle").click()
    assert browser.execute_script("return localStorage.getItem('theme')") == "dark"
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(11, 17, 32)", background
    _theme(browser, "light")

    # The request log's filters narrow the rows.
    browser.get(server.url + "/ops/requests/")
    before = len(browser.find_elements(By.CSS_SELECTOR, "#log-rows tr[data-id]"))
    Select(browser.find_element(By.NAME, "instance")).select_by_visible_text(
        world.providers[2].name
    )
    Select(browser.find_element(By.NAME, "status")).select_by_visible_text("5xx")
    browser.find_element(By.CSS_SELECTOR, "#log-filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "status=5xx" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#log-rows tr[data-id]")
    expected = [
        r for r in world.records if r.provider == world.providers[2] and r.status_code >= 500
    ]
    assert before == 50 and 0 < len(rows) == len(expected) < before
    assert {r.get_attribute("data-status") for r in rows} == {"502"}
    assert all(r.find_elements(By.TAG_NAME, "td")[3].text == world.providers[2].name for r in rows)

    # Live tail: a record written after the page loaded appears without a reload.
    browser.get(server.url + "/ops/requests/")
    browser.find_element(By.ID, "live-tail").click()
    fresh = make_usage(world.providers[2], model_alias="tail-me")
    WebDriverWait(browser, 10).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, f'#log-rows tr[data-id="{fresh.pk}"]')
    )
    assert browser.find_element(By.CSS_SELECTOR, "#log-rows tr").get_attribute("data-id") == str(
        fresh.pk
    )

    # The playground streams an answer from the fake upstream and shows the route and cost.
    browser.get(server.url + "/ops/playground/")
    Select(browser.find_element(By.ID, "pg-alias")).select_by_value("demo-chat")
    browser.find_element(By.ID, "pg-prompt").send_keys("hello from the playground")
    browser.find_element(By.ID, "pg-send").click()
    wait = WebDriverWait(browser, 15)
    wait.until(lambda b: b.find_element(By.ID, "pg-status").text == "done")
    assert browser.find_element(By.ID, "pg-answer").text == "Echo: hello from the playground"
    assert browser.find_element(By.ID, "pg-instance-used").text == "fake-openai"
    wait.until(lambda b: b.find_element(By.ID, "pg-cost").text.startswith("$"))
    assert "fake-openai" in browser.find_element(By.ID, "pg-attempts").text
    _shot(browser, "playground-answer")
    browser.get(server.url + "/ops/requests/?origin=playground")
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#log-rows tr[data-id]")
    assert "playground" in row.text and "fake-openai" in row.text
    assert Provider.objects.filter(name="fake-openai").exists()
