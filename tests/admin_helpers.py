"""Reusable pieces for admin tests: factories, a browser-like form reader, smoke mixin.

``AdminPagesTests`` turns "the changelist, add and change pages of this model work" into a
declaration (NetBox style)::

    class TestProviderPages(AdminPagesTests):
        model = Provider

        def make(self):
            return make_provider_row()
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any, ClassVar

from django.db.models import Model
from django.test import Client
from django.urls import reverse

# --- reading a rendered admin form the way a browser submits it --------------------------


class _FormReader(HTMLParser):
    """Collect the successful controls of one ``<form id=...>``: what a browser would post."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.in_form = False
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._select_multiple = False
        self._select_chosen: list[str] = []
        self._select_first: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def _add(self, name: str, value: str) -> None:
        if "__prefix__" in name:  # the inline "add another" template row
            return
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.in_form = a.get("id") == self.form_id
            return
        if not self.in_form or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._add(name, a.get("value", "on"))
                return
            self._add(name, a.get("value", ""))
        elif tag == "select" and name:
            self._select, self._select_multiple = name, "multiple" in a
            self._select_chosen, self._select_first = [], None
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._select_chosen.append(value)
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "select" and self._select is not None:
            chosen = self._select_chosen
            if not chosen and not self._select_multiple and self._select_first is not None:
                chosen = [self._select_first]
            for value in chosen:
                self._add(self._select, value)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            # Browsers drop the newline that directly follows <textarea>.
            self._add(self._textarea, text.removeprefix("\r\n").removeprefix("\n"))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def form_data(html: str, form_id: str) -> dict[str, Any]:
    """The POST data a browser would send for ``<form id=form_id>`` as rendered.

    Values are strings, or lists for names given more than once; change entries and post.
    """
    reader = _FormReader(form_id)
    reader.feed(html)
    return {k: v[0] if len(v) == 1 else v for k, v in reader.data.items()}


def admin_form_data(client: Client, url: str, model: type[Model]) -> dict[str, Any]:
    """GET an admin add/change page and return its form's data, ready to edit and post."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return form_data(response.content.decode(), f"{model._meta.model_name}_form")


def admin_url(model: type[Model], view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def page_errors(response: Any) -> dict[str, list[str]]:
    """Field errors of the admin form and its inlines in a re-rendered (invalid) page."""
    errors: dict[str, list[str]] = {}
    adminform = response.context.get("adminform")
    if adminform is not None:
        for field, errs in adminform.form.errors.items():
            errors.setdefault(field, []).extend(errs)
    for inline in response.context.get("inline_admin_formsets", []):
        for form in inline.formset.forms:
            for field, errs in form.errors.items():
                errors.setdefault(f"{inline.formset.prefix}.{field}", []).extend(errs)
        for err in inline.formset.non_form_errors():
            errors.setdefault(f"{inline.formset.prefix}.__all__", []).append(err)
    return errors


# --- declarative smoke tests --------------------------------------------------------------


class AdminPagesTests:
    """Declare ``model`` and ``make()``; get changelist, add and change page tests.

    ``can_add = False`` for models the admin must refuse to add (403 expected);
    ``changelist_redirects = True`` for singletons whose list goes straight to the object.
    """

    model: ClassVar[type[Model]]
    can_add: ClassVar[bool] = True
    changelist_redirects: ClassVar[bool] = False

    def make(self) -> Model:
        raise NotImplementedError

    def test_changelist(self, admin_client: Client) -> None:
        obj = self.make()
        response = admin_client.get(admin_url(self.model, "changelist"), follow=True)
        assert response.status_code == 200
        if self.changelist_redirects:
            assert response.redirect_chain[-1][0] == admin_url(self.model, "change", obj.pk)
        else:
            assert response.context["cl"].result_count == 1
            assert admin_url(self.model, "change", obj.pk) in response.content.decode()

    def test_add_page(self, admin_client: Client) -> None:
        if not self.can_add:
            self.make()
        response = admin_client.get(admin_url(self.model, "add"))
        assert response.status_code == (200 if self.can_add else 403)
        if self.can_add:
            assert response.context["add"] is True

    def test_change_page(self, admin_client: Client) -> None:
        obj = self.make()
        response = admin_client.get(admin_url(self.model, "change", obj.pk))
        assert response.status_code == 200
        assert response.context["original"] == obj


# --- headless Chromium ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium(width: int = 1400, height: int = 1000) -> Any:
    """A headless Chromium WebDriver (the caller quits it); skips/fails like other services.

    An explicit driver path: Selenium Manager never runs (and never downloads anything).
    """
    import shutil
    from pathlib import Path

    from tests.conftest import missing_service

    if not (Path(CHROMIUM).exists() or shutil.which("chromium")) or not Path(CHROMEDRIVER).exists():
        missing_service(f"headless Chromium ({CHROMIUM} and {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # Headless Chromium keeps windows at least 500 px wide: the viewport is set explicitly, so
    # a phone width is what the page sees (window.innerWidth).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.implicitly_wait(5)
    return driver


def browser_login(driver: Any, base_url: str, username: str, password: str) -> None:
    """Log in through the admin's login page; returns once the logged-in page has loaded."""
    from selenium.webdriver.common.by import By

    driver.get(base_url + "/admin/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The next get() would otherwise race the form's submission (and its session cookie).
    driver.find_element(By.ID, "user-tools")
